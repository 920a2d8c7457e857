"""Hub models, the checks every one passes: kinds, safetensors only, what the operator allows,
and the clear message when a model is missing (hub.py resolves, hub_download.py fetches)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from huggingface_hub import constants

from aigc_demo.catalog import HubEntry, format_parameters, hub_entry
from aigc_demo.environment import hub_offline_setting, probe
from aigc_demo.errors import UserError
from aigc_demo.settings import operator_settings

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


class HubModelMissing(UserError):
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
    setting = hub_offline_setting()
    return bool(constants.HF_HUB_OFFLINE) if setting is None else setting


def hub_endpoint() -> str:
    return str(constants.ENDPOINT).rstrip("/")


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """A TCP connect to the Hub endpoint, bounded in time even when DNS hangs (environment.probe).

    huggingface_hub retries a failed request five times with back-off (about 25 s); this probe
    runs first, so a machine that lost its network gets the missing-model message at once.
    """
    url = urlparse(hub_endpoint())
    return probe(url.hostname or "", url.port or (443 if url.scheme == "https" else 80), timeout)


def describe_size(entry: HubEntry | None) -> str:
    """'~1.3B parameters, about 5.2 GB to download, needs about 5.2 GB of memory' for a catalog entry."""
    if entry is None:
        return "size unknown: not in this app's catalog"
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
            raise UserError(f"{name} is a diffusers `{cls}`, not a text-to-image pipeline this app can run.")
        return TEXT_TO_IMAGE
    if config.is_file():
        meta = json.loads(config.read_text())
        if meta.get("auto_map"):
            raise UserError(f"{name} needs its own Python code from the repo (`trust_remote_code`), "
                             "which this app never runs. Pick a model of a standard architecture.")
        if _is_causal_lm(meta):
            return CAUSAL_LM
        raise UserError(f"{name} is a `{meta.get('model_type', '?')}` model "
                         f"({', '.join(meta.get('architectures') or ['no architecture'])}), not a causal "
                         "language model or a text-to-image pipeline, the two kinds this app runs.")
    raise UserError(f"{name} has neither config.json nor model_index.json: it is not a Hugging Face "
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
            raise UserError(f"{name}: {part} has only pickle weights ({', '.join(sorted(pickles)[:3])}). "
                             "This app loads safetensors only, because a pickle file can run code "
                             "when it is opened. Use a revision of the repo that has .safetensors "
                             "files, or convert the weights to safetensors yourself.")
        raise UserError(f"{name}: {part} has no weights file (.safetensors).")


# ---- what the operator allows ------------------------------------------------------------------

def check_allowed(repo_id: str) -> None:
    """ValueError when the operator allows only catalog models (AIGC_HUB_ALLOW=catalog) and
    `repo_id` is not one of them."""
    if operator_settings().hub_allow == "catalog" and hub_entry(repo_id) is None:
        raise UserError(f"This server runs only the models of its catalog, and {repo_id} is not one of "
                         "them (the operator set AIGC_HUB_ALLOW=catalog).")
