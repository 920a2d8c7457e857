"""The gallery's list of models: one ModelSpec per model, local and hub.

Local models are discovered from `weights/*/`: the model card's YAML header is the source of
truth for what a model is and what it measured; parameter count and size are read from the
safetensors header (no weights are loaded). A folder whose card cannot be read still gets a
card, carrying the error in place of its details. Hub models come from the curated list below;
whether each is in the local Hugging Face cache is checked on disk, without a network call.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id as hf_validate_repo_id

from aigc_demo.engines import registry
from aigc_demo.errors import UserError
from aigc_demo.modelcard import GALLERY_KEY, ModelCardError, read_card_metadata
from aigc_demo.settings import operator_settings

TASKS: dict[str, str] = {
    "image-generation": "Image generation",
    "text-generation": "Text generation",
    "code-generation": "Code generation",
    "text-to-image": "Text to image",
    "classification": "Classification",
}
SOURCES = ("shipped", "user", "hub", "remote")


@dataclass
class Metric:
    name: str
    value: float
    unit: str = ""
    lower_is_better: bool | None = None
    note: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Metric":
        return cls(name=str(raw["name"]), value=float(raw["value"]), unit=str(raw.get("unit", "")),
                   lower_is_better=raw.get("lower_is_better"), note=str(raw.get("note", "")))


@dataclass
class ModelSpec:
    """Everything the gallery and the tabs need to know about one model."""

    id: str  # folder name for local models, repo id for hub models
    title: str
    task: str  # a key of TASKS
    family: str  # gan | vae | gpt | classifier | diffusion | causal-lm
    source: str  # shipped | user | hub | remote
    tab: str | None = None  # id of the tab where it runs
    folder: str | None = None  # local folder
    repo_id: str | None = None
    revision: str | None = None
    license: str | None = None
    description: str = ""
    parameters: int | None = None
    size_mb: float | None = None
    sample_image: str | None = None
    sample_text: str | None = None
    metrics: list[Metric] = field(default_factory=list)
    cached: bool | None = None  # hub models: in the local HF cache?
    error: str | None = None  # why this entry cannot be used, shown in its card
    memory_gb: float | None = None  # hub models: memory needed to run, on the device it suits
    suits: str = "any"  # "any" (CPU works, GPU faster) or "cuda" (too slow or big for a CPU)
    device_map_auto: bool = False  # spread over the GPUs present (accelerate device_map="auto")
    defaults: dict[str, Any] = field(default_factory=dict)  # settings the tab starts from
    server: str | None = None  # remote models: the engine's host:port
    reachable: bool | None = None  # remote models: did the server answer its last request?

    @property
    def task_label(self) -> str:
        return TASKS.get(self.task, self.task)


@dataclass(frozen=True)
class HubEntry:
    """A curated hub model. `parameters` is the published count, rounded: not a measurement of ours.

    `memory_gb` is what the weights take on the device the entry suits (parameters x bytes per
    value at that dtype, rounded up), `download_gb` what `hf download` fetches with our file filter.
    """

    repo_id: str
    title: str
    task: str
    family: str
    tab: str
    license: str
    parameters: int
    description: str
    probe_file: str = "config.json"  # a file whose presence in the cache means "downloaded"
    memory_gb: float = 0.0
    download_gb: float = 0.0
    suits: str = "any"  # "any" or "cuda"
    device_map_auto: bool = False
    defaults: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    revision: str | None = None  # None: the repo's main branch
    variant: str | None = None  # weights variant to fetch for a GPU ("fp16"), when the repo has one
    variant_gb: float = 0.0  # what the variant's files weigh (the repo's published file sizes)


HUB_MODELS: tuple[HubEntry, ...] = (
    HubEntry("openai-community/gpt2", "GPT-2 (124M)", "text-generation", "causal-lm", "text", "mit",
             124_000_000, "The article's GPT: OpenAI's 2019 language model, base (completion) mode.",
             memory_gb=0.5, download_gb=0.55,
             defaults={"max_new_tokens": 120, "temperature": 0.8, "top_k": 50}),
    HubEntry("HuggingFaceTB/SmolLM2-360M-Instruct", "SmolLM2 360M Instruct", "text-generation",
             "causal-lm", "text", "apache-2.0", 360_000_000,
             "A small instruction-tuned chat model with a chat template.",
             memory_gb=1.5, download_gb=0.73,
             defaults={"max_new_tokens": 256, "temperature": 0.7, "top_p": 0.9}),
    HubEntry("microsoft/CodeGPT-small-py", "CodeGPT small (Python)", "code-generation", "causal-lm",
             "code", "mit", 124_000_000, "The article's CodeGPT: GPT-2 small trained on Python code.",
             memory_gb=0.5, download_gb=0.51,
             defaults={"max_new_tokens": 128, "temperature": 0.2, "top_k": 40}),
    HubEntry("Qwen/Qwen2.5-Coder-0.5B-Instruct", "Qwen2.5 Coder 0.5B Instruct", "code-generation",
             "causal-lm", "code", "apache-2.0", 494_000_000,
             "A small instruction-tuned code model with a chat template.",
             memory_gb=2.0, download_gb=1.0,
             defaults={"max_new_tokens": 256, "temperature": 0.2, "top_p": 0.9}),
    HubEntry("stabilityai/sd-turbo", "SD-Turbo", "text-to-image", "diffusion", "image",
             "other", 1_300_000_000,
             "Distilled Stable Diffusion 2.1: a 512x512 image in one to four steps.",
             probe_file="model_index.json", memory_gb=5.2, download_gb=5.2, variant="fp16", variant_gb=2.6,
             defaults={"steps": 1, "guidance": 0.0, "width": 512, "height": 512}),
    HubEntry("stabilityai/sdxl-turbo", "SDXL-Turbo", "text-to-image", "diffusion", "image",
             "other", 3_500_000_000,
             "Distilled SDXL: a 512x512 image in one to four steps; sized for a GPU.",
             probe_file="model_index.json", memory_gb=7.0, download_gb=7.0, suits="cuda",
             variant="fp16", defaults={"steps": 1, "guidance": 0.0, "width": 512, "height": 512}),
)
HUB_TASKS: dict[str, tuple[str, str]] = {  # task a user-added hub id may have -> (family, tab)
    "text-generation": ("causal-lm", "text"),
    "code-generation": ("causal-lm", "code"),
    "text-to-image": ("diffusion", "image"),
}
REPO_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/"
                      r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
# Hub ids visitors added: visitor -> (repo id -> spec), each visitor's list capped, and only the
# most recently active visitors kept. Nothing a visitor adds is seen by another visitor.
_user_hub: "OrderedDict[str, OrderedDict[str, ModelSpec]]" = OrderedDict()
_user_hub_lock = threading.Lock()
MAX_VISITORS_WITH_ADDITIONS = 5000
_visitor_of: Callable[[], str | None] = lambda: None  # noqa: E731 - set by the UI (ui/sessions.py)


def set_visitor_resolver(resolver: Callable[[], str | None]) -> None:
    """How to tell who the current visitor is (the UI knows; the CLI and tests have none)."""
    global _visitor_of
    _visitor_of = resolver


def _visitor(visitor: str | None) -> str:
    return visitor if visitor is not None else (_visitor_of() or "")


def format_parameters(count: int | None) -> str:
    """124000000 -> '124M', 1300000000 -> '1.3B', 20000 -> '20K'."""
    if count is None:
        return "?"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)


def validate_repo_id(repo_id: str) -> str:
    """`owner/name` as the Hub spells ids (huggingface_hub's own check, ASCII, one owner), stripped;
    UserError with a message saying the form otherwise."""
    text = (repo_id or "").strip() if isinstance(repo_id, str) else ""
    if not text:
        raise UserError("Type a Hugging Face model id such as `stabilityai/sd-turbo`.")
    if text.startswith(("http://", "https://")):
        raise UserError(f"{text!r} is a web address: type the model id only, e.g. `stabilityai/sd-turbo`.")
    try:
        hf_validate_repo_id(text)
        valid = bool(REPO_ID.match(text))
    except HFValidationError:  # `..`, `--`, a name over 96 characters, a trailing `.git`, ...
        valid = False
    if not valid:
        raise UserError(f"{text!r} is not a Hugging Face model id: the form is `owner/name` (letters, "
                        "digits, `-`, `_`, `.`), e.g. `stabilityai/sd-turbo`.")
    return text


def hub_entry(repo_id: str) -> HubEntry | None:
    """The curated entry for `repo_id`, if it is one of ours."""
    return next((entry for entry in HUB_MODELS if entry.repo_id == repo_id), None)


def safetensors_size(folder: Path) -> tuple[int | None, float | None]:
    """Parameter count and megabytes of the safetensors files in `folder`, from their headers
    (a diffusers pipeline keeps them one level down, a file per component)."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*/*.safetensors"))
    if not files:
        return None, None
    count = 0
    for file in files:
        with safe_open(str(file), framework="numpy") as handle:
            for name in handle.keys():
                numel = 1
                for dim in handle.get_slice(name).get_shape():
                    numel *= dim
                count += numel
    return count, round(sum(f.stat().st_size for f in files) / 2**20, 2)


def _spec_from_folder(folder: Path, source: str) -> ModelSpec:
    spec = ModelSpec(id=folder.name, title=folder.name, task="unknown", family="unknown",
                     source=source, folder=str(folder))
    try:
        meta = read_card_metadata(folder)
        gallery = meta.get(GALLERY_KEY)
        if not isinstance(gallery, dict):
            raise ModelCardError(f"{folder / 'README.md'}: the YAML header has no `{GALLERY_KEY}` block")
        missing = [key for key in ("title", "task", "family") if not gallery.get(key)]
        if missing:
            raise ModelCardError(f"{folder / 'README.md'}: `{GALLERY_KEY}` lacks {', '.join(missing)}")
        spec.title = str(gallery["title"])
        spec.task = str(gallery["task"])
        spec.family = str(gallery["family"])
        spec.tab = gallery.get("tab")
        spec.description = str(gallery.get("description", ""))
        spec.license = meta.get("license")
        spec.metrics = [Metric.from_dict(m) for m in gallery.get("metrics") or []]
        sample = gallery.get("sample")
        if sample and (folder / sample).is_file():
            spec.sample_image = str(folder / sample)
        spec.sample_text = gallery.get("sample_text")
        if isinstance(gallery.get("defaults"), dict):
            spec.defaults = dict(gallery["defaults"])
        spec.parameters, spec.size_mb = safetensors_size(folder)
    except (ModelCardError, KeyError, TypeError, ValueError, OSError) as err:
        spec.error = " ".join(str(err).split())  # one line: YAML errors span several
    return spec


def discover_local(weights_dir: str | Path, source: str = "shipped") -> list[ModelSpec]:
    """One spec per subfolder of `weights_dir` (hidden folders and plain files are skipped)."""
    root = Path(weights_dir)
    if not root.is_dir():
        return []
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))]
    specs = [_spec_from_folder(folder, source) for folder in folders]
    return sorted(specs, key=lambda s: s.error is not None)  # usable models first


def hub_specs(entries: tuple[HubEntry, ...] = HUB_MODELS) -> list[ModelSpec]:
    """The curated hub models, each marked cached or not by looking in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    specs = []
    for entry in entries:
        found = try_to_load_from_cache(entry.repo_id, entry.probe_file)
        specs.append(ModelSpec(
            id=entry.repo_id, title=entry.title, task=entry.task, family=entry.family, source="hub",
            tab=entry.tab, repo_id=entry.repo_id, license=entry.license,
            description=entry.description, parameters=entry.parameters, revision=entry.revision,
            cached=isinstance(found, str), memory_gb=entry.memory_gb, suits=entry.suits,
            device_map_auto=entry.device_map_auto, defaults=dict(entry.defaults),
        ))
    return specs


def add_hub_model(repo_id: str, task: str, revision: str | None = None,
                  visitor: str | None = None) -> ModelSpec:
    """Add a hub id of a supported kind to this visitor's catalog (its kind is checked once the
    files are local: `aigc_demo.hub.resolve`). Returns the spec; adding twice keeps one.

    Each visitor may add AIGC_HUB_MAX_ADDED ids; with AIGC_HUB_ALLOW=catalog only the app's
    curated ids are accepted."""
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(repo_id, str):
        raise UserError(f"Type a Hugging Face model id such as `stabilityai/sd-turbo` (got {type(repo_id).__name__}).")
    repo_id = validate_repo_id(repo_id)
    if task not in HUB_TASKS:
        raise UserError(f"A hub model added here must be one of: {', '.join(HUB_TASKS)} (got {task!r}).")
    entry = hub_entry(repo_id)
    if entry is not None:
        return hub_specs((entry,))[0]
    settings = operator_settings()
    if settings.hub_allow == "catalog":
        raise UserError(f"This server runs only the models of its catalog, and {repo_id} is not one of them "
                         "(the operator set AIGC_HUB_ALLOW=catalog).")
    who = _visitor(visitor)
    with _user_hub_lock:
        mine = _user_hub.get(who, OrderedDict())
        if repo_id not in mine and len(mine) >= settings.hub_additions_per_visitor:
            raise UserError(f"You have added {len(mine)} hub models, the most one visitor can add on this "
                             "server: pick one of them, or reload the page later.")
    family, tab = HUB_TASKS[task]
    probe = "model_index.json" if family == "diffusion" else "config.json"
    found = try_to_load_from_cache(repo_id, probe, revision=revision)
    spec = ModelSpec(id=repo_id, title=repo_id, task=task, family=family, source="hub", tab=tab,
                     repo_id=repo_id, revision=revision, cached=isinstance(found, str),
                     description="Added by you: its files are checked when it loads.")
    with _user_hub_lock:
        mine = _user_hub.setdefault(who, OrderedDict())
        if repo_id not in mine and len(mine) >= settings.hub_additions_per_visitor:
            raise UserError(f"You have added {len(mine)} hub models, the most one visitor can add on this "
                             "server: pick one of them, or reload the page later.")
        mine[repo_id] = spec
        _user_hub.move_to_end(who)
        while len(_user_hub) > MAX_VISITORS_WITH_ADDITIONS:
            _user_hub.popitem(last=False)
    return spec


def user_hub_specs(visitor: str | None = None) -> list[ModelSpec]:
    """The hub ids this visitor added with `add_hub_model`, in the order they were added."""
    with _user_hub_lock:
        return list(_user_hub.get(_visitor(visitor), {}).values())


def remove_hub_model(repo_id: str, visitor: str | None = None) -> bool:
    with _user_hub_lock:
        return _user_hub.get(_visitor(visitor), {}).pop(repo_id, None) is not None


def remote_specs() -> list[ModelSpec]:
    """The models of the configured inference servers (aigc_demo.engines), one spec each; a server
    that never answered gets one card carrying its error."""
    specs = []
    for model in registry.models():
        state = "reachable" if model.reachable else "unreachable"
        mode = "chat completions" if model.chat else "completions"
        description = f"Served by {model.server} ({state}) through its OpenAI-compatible API ({mode})."
        specs.append(ModelSpec(
            id=model.ref, title=model.model_id if model.error is None else f"Server {model.server}",
            task=model.task, family="causal-lm", source="remote",
            tab="code" if model.task == "code-generation" else "text", description=description,
            error=None if model.error is None else f"{model.server} is unreachable: {model.error}",
            server=model.server, reachable=model.reachable))
    return specs


def build_catalog(weights_dir: str | Path, user_dirs: list[str | Path] | None = None,
                  include_hub: bool = True, include_remote: bool = True) -> list[ModelSpec]:
    """Shipped models, then the user's saved models, then the curated hub list, then the models
    of the configured inference servers."""
    specs = discover_local(weights_dir, "shipped")
    for extra in user_dirs or []:
        specs += discover_local(extra, "user")
    if include_hub:
        specs += hub_specs() + user_hub_specs()
    if include_remote:
        specs += remote_specs()
    return specs
