"""Hub models: turn a repo id (or a local folder) into local files that are safe to load.

Why one module: every hub model (causal LMs and diffusers pipelines) goes through the same
checks, so the rules hold everywhere:
- Offline first: a cached snapshot is used without a network call. When the files are not
  cached and the Hub is offline or unreachable (aigc_demo/environment.py sets HF_HUB_OFFLINE=1
  when it cannot reach the Hub), `HubModelMissing` says at once which model is missing, its
  size, and how to get it; nothing retries for half a minute.
- Only safetensors: pickle-only weights are refused with a clear message, and downloads skip
  pickle files. `trust_remote_code` is never enabled: a repo that needs custom code is refused.
- The kind (causal LM / text-to-image pipeline) is read from config.json / model_index.json.
- Downloads report bytes and ETA through a callback (a tqdm class given to snapshot_download).
torch, transformers and diffusers are imported only inside the load functions.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aigc_demo.catalog import _REPO_ID, HubEntry, hub_entry, validate_repo_id

CAUSAL_LM = "causal-lm"
TEXT_TO_IMAGE = "text-to-image"
KIND_LABELS = {CAUSAL_LM: "a transformers causal language model",
               TEXT_TO_IMAGE: "a diffusers text-to-image pipeline"}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
DOWNLOAD_IGNORE = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle", "*.msgpack", "*.h5",
                   "*.onnx", "*.onnx_data", "*.tflite", "*.ot", "*.gguf", "*.mlmodel", "*.pb"]
ETAG_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 2.0
# Used when diffusers cannot be imported to list them (the names seen on the Hub's t2i repos).
_KNOWN_T2I = {"StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline",
              "FluxPipeline", "PixArtAlphaPipeline", "PixArtSigmaPipeline", "SanaPipeline",
              "LatentConsistencyModelPipeline", "KandinskyV22CombinedPipeline", "AuraFlowPipeline"}


class HubModelMissing(ValueError):
    """The model's files are not here and cannot be fetched now (the message says how to fix it)."""


@dataclass
class ModelSource:
    """Where a model's files are, and what it is."""

    ref: str  # what the user picked: a folder path or a repo id
    path: Path  # a local folder (a cache snapshot for hub models)
    kind: str  # CAUSAL_LM or TEXT_TO_IMAGE
    repo_id: str | None = None
    revision: str | None = None  # the commit of a cached snapshot

    @property
    def label(self) -> str:
        return self.repo_id or self.path.name


@dataclass
class DownloadProgress:
    done_bytes: int
    total_bytes: int
    bytes_per_s: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return min(self.done_bytes / self.total_bytes, 1.0) if self.total_bytes else 0.0

    def text(self) -> str:
        """'312 MB of 1.2 GB, 45 MB/s, about 20 s left'."""
        line = f"{_human(self.done_bytes)} of {_human(self.total_bytes)}"
        if self.bytes_per_s > 0:
            line += f", {_human(self.bytes_per_s)}/s"
        if self.eta_s is not None:
            line += f", about {self.eta_s:.0f} s left"
        return line


ProgressCallback = Callable[[DownloadProgress], None]


def _human(count: float) -> str:
    for size, unit in ((2**30, "GB"), (2**20, "MB"), (2**10, "KB")):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


# ---- offline state and the missing-model message ---------------------------------------------

def hub_offline() -> bool:
    """True when the Hub libraries are in offline mode (set by the user or by our start-up probe)."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().lower() in ("1", "true", "yes", "on")
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """A TCP connect to the Hub endpoint, bounded in time even when DNS hangs.

    huggingface_hub retries a failed request five times with back-off (about 25 s); this probe
    runs first, so a machine that lost its network gets the missing-model message at once.
    """
    from urllib.parse import urlparse

    url = urlparse(hub_endpoint())
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    result: list[tuple[bool, str]] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append((True, f"{host}:{port} answered"))
        except OSError as err:
            result.append((False, f"{host}:{port} unreachable ({type(err).__name__}: {err})"))

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return result[0] if result else (False, f"{host}:{port} gave no answer in {timeout:g} s")


def describe_size(entry: HubEntry | None) -> str:
    """'~1.3B parameters, about 5.2 GB to download, needs about 5.2 GB of memory' for a catalog entry."""
    if entry is None:
        return "size unknown: not in this app's catalog"
    from aigc_demo.services.gallery import format_parameters

    parts = [f"~{format_parameters(entry.parameters)} parameters"]
    if entry.download_gb:
        parts.append(f"about {entry.download_gb:g} GB to download")
    if entry.memory_gb:
        parts.append(f"needs about {entry.memory_gb:g} GB of memory")
    return ", ".join(parts)


def missing_message(repo_id: str, reason: str, revision: str | None = None) -> str:
    """Which model is missing, how big it is, and the three ways to get it."""
    at = f" (revision {revision})" if revision else ""
    rev_flag = f" --revision {revision}" if revision else ""
    return (f"The model {repo_id}{at} ({describe_size(hub_entry(repo_id))}) is not downloaded, and {reason}. "
            f"To get it: connect this machine to the internet and try again (it downloads on first use); "
            f"or run `hf download {repo_id}{rev_flag}` on a machine with internet and copy its "
            f"Hugging Face cache (~/.cache/huggingface) here; or download the repo into a folder and "
            f"pick that local folder instead.")


# ---- kinds and weights checks -----------------------------------------------------------------

def _t2i_pipeline_names() -> set[str]:
    try:
        from diffusers.pipelines.auto_pipeline import AUTO_TEXT2IMAGE_PIPELINES_MAPPING

        return {cls.__name__ for cls in AUTO_TEXT2IMAGE_PIPELINES_MAPPING.values()} | _KNOWN_T2I
    except ImportError:
        return set(_KNOWN_T2I)


def _is_causal_lm(config: dict[str, Any]) -> bool:
    archs = config.get("architectures") or []
    if any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return True
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:
        return False
    return config.get("model_type") in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def detect_kind(folder: Path, name: str) -> str:
    """CAUSAL_LM or TEXT_TO_IMAGE from the folder's config; ValueError for anything else."""
    index, config = folder / "model_index.json", folder / "config.json"
    if index.is_file():
        meta = json.loads(index.read_text())
        cls = str(meta.get("_class_name", ""))
        if cls not in _t2i_pipeline_names():
            raise ValueError(f"{name} is a diffusers `{cls}`, not a text-to-image pipeline this app can run.")
        return TEXT_TO_IMAGE
    if config.is_file():
        meta = json.loads(config.read_text())
        if meta.get("auto_map"):
            raise ValueError(f"{name} needs its own Python code from the repo (`trust_remote_code`), "
                             "which this app never runs. Pick a model of a standard architecture.")
        if _is_causal_lm(meta):
            return CAUSAL_LM
        raise ValueError(f"{name} is a `{meta.get('model_type', '?')}` model "
                         f"({', '.join(meta.get('architectures') or ['no architecture'])}), not a causal "
                         "language model or a text-to-image pipeline, the two kinds this app runs.")
    raise ValueError(f"{name} has neither config.json nor model_index.json: it is not a Hugging Face "
                     "model folder.")


def _weight_dirs(folder: Path, kind: str) -> dict[str, Path]:
    """name -> folder that must hold weights: the model itself, or each pipeline component."""
    if kind == CAUSAL_LM:
        return {"the model": folder}
    meta = json.loads((folder / "model_index.json").read_text())
    dirs = {}
    for name, value in meta.items():
        sub = folder / name
        if name.startswith("_") or not isinstance(value, list) or not sub.is_dir():
            continue
        if (sub / "config.json").is_file():  # a model (tokenizers and schedulers have no weights)
            dirs[f"the `{name}` component"] = sub
    return dirs


def check_safetensors(folder: Path, kind: str, name: str) -> None:
    """ValueError unless every part with weights has them as safetensors (pickle is never loaded)."""
    for part, sub in _weight_dirs(folder, kind).items():
        files = [p.name for p in sub.iterdir() if p.is_file()]
        if any(f.endswith(".safetensors") for f in files):
            continue
        pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise ValueError(f"{name}: {part} has only pickle weights ({', '.join(sorted(pickles)[:3])}). "
                             "This app loads safetensors only, because a pickle file can run code "
                             "when it is opened. Use a revision of the repo that has .safetensors "
                             "files, or convert the weights to safetensors yourself.")
        raise ValueError(f"{name}: {part} has no weights file (.safetensors).")


# ---- resolving a reference to files ------------------------------------------------------------

def is_local_ref(ref: str) -> bool:
    """A folder path (absolute, ./, ~ or an existing folder) rather than a hub id. Text of the hub's
    `owner/name` form is a hub id even when a folder of that name exists in the working directory,
    so a typed id never reads the server's disk (write `./owner/name` for such a folder)."""
    text = ref.strip()
    if text.startswith(("/", ".", "~")) or os.path.isabs(text):
        return True
    if _REPO_ID.match(text):
        return False
    return Path(text).expanduser().is_dir()


def _snapshot_revision(path: Path) -> str | None:
    return path.name if path.parent.name == "snapshots" else None


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of `repo_id` (no network call), or None when not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None
    if not ((path / "config.json").is_file() or (path / "model_index.json").is_file()):
        return None  # an interrupted download left a snapshot folder without its config
    return path


def _checked(source: ModelSource, kind: str | None) -> ModelSource:
    found = detect_kind(source.path, source.label)
    if kind is not None and found != kind:
        raise ValueError(f"{source.label} is {KIND_LABELS[found]}, but this tab needs {KIND_LABELS[kind]}.")
    source.kind = found
    check_safetensors(source.path, found, source.label)
    return source


def resolve(ref: str, *, kind: str | None = None, revision: str | None = None,
            on_progress: ProgressCallback | None = None, download: bool = True) -> ModelSource:
    """Local files for `ref` (a folder path or a hub id), checked for kind and safetensors.

    A hub id that is not cached is downloaded when the Hub is online and `download` is set;
    otherwise `HubModelMissing` is raised at once.
    """
    ref = (ref or "").strip()
    if not ref:
        raise ValueError("Pick a model first.")
    if is_local_ref(ref):
        path = Path(ref).expanduser()
        if not path.is_dir():
            raise ValueError(f"The folder {ref} does not exist.")
        return _checked(ModelSource(ref, path, kind or "", None, None), kind)
    repo_id = validate_repo_id(ref)
    entry = hub_entry(repo_id)
    revision = revision or (entry.revision if entry else None)
    path = cached_snapshot(repo_id, revision)
    if path is None:
        if hub_offline():
            raise HubModelMissing(missing_message(
                repo_id, "this machine is offline (HF_HUB_OFFLINE=1: the Hugging Face Hub could not "
                "be reached when the app started, or offline mode was set)", revision))
        if not download:
            raise HubModelMissing(missing_message(repo_id, "downloads are off for this call", revision))
        path = download_model(repo_id, revision=revision, kind=kind, on_progress=on_progress)
    return _checked(ModelSource(ref, path, kind or "", repo_id, _snapshot_revision(path)), kind)


# ---- downloading with progress -----------------------------------------------------------------

def progress_tqdm(callback: ProgressCallback) -> type:
    """A tqdm class for `snapshot_download(tqdm_class=...)` that reports bytes and ETA to `callback`.

    snapshot_download makes three bars with it: a file counter, and two byte bars
    ("Downloading bytes" for network transfer, "Reconstructing" / "Fetching" bytes written).
    Only byte bars written to disk are reported: they grow for every kind of download.
    """
    from tqdm.auto import tqdm

    class CallbackTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = False
            kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
            super().__init__(*args, **kwargs)
            self._reports = self.unit == "B" and not str(self.desc).startswith("Downloading bytes")
            self._started = time.perf_counter()

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if self._reports:
                elapsed = max(time.perf_counter() - self._started, 1e-6)
                rate = self.n / elapsed
                total = int(self.total or 0)
                eta = (total - self.n) / rate if rate > 0 and total >= self.n else None
                callback(DownloadProgress(int(self.n), total, rate, eta))
            return shown

        def close(self) -> None:
            file = self.fp if hasattr(self, "fp") else None
            super().close()
            if file is not None and not file.closed and file.name == os.devnull:
                file.close()

    return CallbackTqdm


def _probe_file(repo_id: str, kind: str | None) -> str:
    if kind == TEXT_TO_IMAGE:
        return "model_index.json"
    if kind == CAUSAL_LM:
        return "config.json"
    entry = hub_entry(repo_id)
    return entry.probe_file if entry else "config.json"


def download_patterns(kind: str, variant: str | None) -> dict[str, Any]:
    """What to fetch: safetensors and configs only; for pipelines, the component folders only
    (not the single-file checkpoints many repos also carry at their root)."""
    if kind == TEXT_TO_IMAGE:
        weights = f"*/*.{variant}.safetensors" if variant else "*/*.safetensors"
        ignore = list(DOWNLOAD_IGNORE) + ([] if variant else ["*.fp16.safetensors", "*.non_ema.*"])
        return {"allow_patterns": ["model_index.json", "*/*.json", "*/*.txt", "*/*.model", weights],
                "ignore_patterns": ignore}
    return {"ignore_patterns": list(DOWNLOAD_IGNORE)}


def download_model(repo_id: str, *, revision: str | None = None, kind: str | None = None,
                   on_progress: ProgressCallback | None = None, variant: str | None = None) -> Path:
    """Fetch a hub model into the HF cache (its config first, to check the kind, then the weights).

    Network failures become `HubModelMissing` quickly: a short etag timeout, no retry loop.
    """
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError

    reachable, detail = hub_reachable()
    if not reachable:
        raise HubModelMissing(missing_message(
            repo_id, f"the Hugging Face Hub cannot be reached ({detail})", revision))
    endpoint = hub_endpoint()
    try:
        probe = _probe_file(repo_id, kind)
        try:
            config = Path(huggingface_hub.hf_hub_download(repo_id, probe, revision=revision, endpoint=endpoint,
                                                          etag_timeout=ETAG_TIMEOUT_S))
        except RemoteEntryNotFoundError as err:
            wanted = KIND_LABELS.get(kind or "", "a supported model")
            raise ValueError(f"{repo_id} has no {probe}: it is not {wanted}.") from err
        found = detect_kind(config.parent, repo_id)
        if kind is not None and found != kind:
            raise ValueError(f"{repo_id} is {KIND_LABELS[found]}, but this tab needs {KIND_LABELS[kind]}.")
        if variant is None:
            entry = hub_entry(repo_id)
            variant = entry.variant if entry and _on_cuda() else None
        tqdm_class = progress_tqdm(on_progress) if on_progress else None
        path = huggingface_hub.snapshot_download(repo_id, revision=revision, endpoint=endpoint,
                                                 etag_timeout=ETAG_TIMEOUT_S, tqdm_class=tqdm_class,
                                                 **download_patterns(found, variant))
    except HfHubHTTPError as err:  # the Hub answered: no such repo, gated, or a server error
        raise ValueError(f"The Hub refused {repo_id}: {' '.join(str(err).split())[:300]} "
                         "(check the id; gated models need `hf auth login`).") from err
    except OSError as err:  # no connection, DNS, timeout, offline mode switched on meanwhile
        raise HubModelMissing(missing_message(
            repo_id, f"the Hugging Face Hub could not be reached ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]})", revision)) from err
    return Path(path)


def _on_cuda() -> bool:
    try:
        from aigc_demo.device import pick_device

        return pick_device().name == "cuda"
    except Exception:  # noqa: BLE001 - no torch: not CUDA
        return False


# ---- loading ----------------------------------------------------------------------------------

SAFE_KWARGS: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}


def load_causal_lm(source: ModelSource, dtype: Any = None, device: str = "cpu",
                   device_map_auto: bool = False, attention: str = "sdpa") -> tuple[Any, Any]:
    """(model, tokenizer) from checked files; SDPA attention where the architecture has it;
    `device_map="auto"` spreads a model over the GPUs present when the catalog asks for it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source.kind != CAUSAL_LM:
        raise ValueError(f"{source.label} is {KIND_LABELS.get(source.kind, source.kind)}, not a causal LM.")
    tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)
    kwargs: dict[str, Any] = dict(SAFE_KWARGS, dtype=dtype)
    if device_map_auto and device == "cuda":
        kwargs["device_map"] = "auto"
    try:
        model = AutoModelForCausalLM.from_pretrained(source.path, attn_implementation=attention, **kwargs)
    except (ValueError, ImportError):  # an architecture without SDPA support
        model = AutoModelForCausalLM.from_pretrained(source.path, **kwargs)
    if "device_map" not in kwargs:
        model.to(device)
    return model.eval(), tokenizer


def load_text_to_image(source: ModelSource, dtype: Any = None) -> Any:
    """A diffusers text-to-image pipeline from checked files (safetensors only, no custom code).
    A weights variant ("fp16") is used when the folder has it and the dtype is half precision."""
    import torch
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # progress is reported per step by the service

    if source.kind != TEXT_TO_IMAGE:
        raise ValueError(f"{source.label} is {KIND_LABELS.get(source.kind, source.kind)}, not a "
                         "text-to-image pipeline.")
    kwargs: dict[str, Any] = {"use_safetensors": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if dtype in (torch.float16, torch.bfloat16) and any(source.path.glob("*/*.fp16.safetensors")):
        kwargs["variant"] = "fp16"
    pipe = AutoPipelineForText2Image.from_pretrained(source.path, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe
