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
This module is the hub layer's API: it resolves and loads; the checks live in hub_checks.py and
the download in hub_download.py, and the names callers use from them are re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from aigc_demo.catalog import REPO_ID, hub_entry, validate_repo_id
from aigc_demo.errors import UserError
from aigc_demo.loading import building
from aigc_demo.hub_checks import (CAUSAL_LM, KIND_LABELS, TEXT_TO_IMAGE, DownloadProgress, HubModelMissing,
                                  ModelSource, ProgressCallback, check_allowed, check_safetensors, detect_kind,
                                  describe_size, hub_endpoint, hub_offline, hub_reachable, missing_message)
from aigc_demo.hub_download import download_model, download_patterns, download_size, progress_tqdm
from aigc_demo.refs import identifier

__all__ = ["CAUSAL_LM", "TEXT_TO_IMAGE", "KIND_LABELS", "DownloadProgress", "HubModelMissing", "ModelSource",
           "ProgressCallback", "SAFE_KWARGS", "cached_snapshot", "check_allowed", "check_safetensors",
           "describe_size", "detect_kind", "download_model", "download_patterns", "download_size",
           "hub_endpoint", "hub_offline", "hub_reachable", "is_local_ref", "load_causal_lm", "load_tokenizer",
           "load_text_to_image", "missing_message", "progress_tqdm", "resolve"]


# ---- resolving a reference to files ------------------------------------------------------------

def is_local_ref(ref: str) -> bool:
    """A folder path (absolute, ./, ~ or an existing folder) rather than a hub id. Text of the hub's
    `owner/name` form is a hub id even when a folder of that name exists in the working directory,
    so a typed id never reads the server's disk (write `./owner/name` for such a folder)."""
    text = ref.strip()
    if text.startswith(("/", ".", "~")) or os.path.isabs(text):
        return True
    if REPO_ID.match(text):
        return False
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, ValueError):  # a name the file system refuses (too long, a NUL byte)
        return False


def _snapshot_revision(path: Path) -> str | None:
    return path.name if path.parent.name == "snapshots" else None


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of `repo_id` (no network call), or None when not cached."""
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
        raise UserError(f"{source.label} is {KIND_LABELS[found]}, but this tab needs {KIND_LABELS[kind]}.")
    source.kind = found
    check_safetensors(source.path, found, source.label)
    return source


def resolve(ref: str, *, kind: str | None = None, revision: str | None = None,
            on_progress: ProgressCallback | None = None, download: bool = True) -> ModelSource:
    """Local files for `ref` (a folder path or a hub id), checked for kind and safetensors.

    A hub id that is not cached is downloaded when the Hub is online and `download` is set;
    otherwise `HubModelMissing` is raised at once.
    """
    ref = identifier(ref, "The model", required=False)
    if not ref:
        raise UserError("Pick a model first.")
    if is_local_ref(ref):
        path = Path(ref).expanduser()
        try:
            exists = path.is_dir()
        except (OSError, ValueError):
            exists = False
        if not exists:
            raise UserError(f"The folder {ref} does not exist.")
        return _checked(ModelSource(ref, path, kind or "", None, None), kind)
    repo_id = validate_repo_id(ref)
    entry = hub_entry(repo_id)
    check_allowed(repo_id)
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


# ---- loading ----------------------------------------------------------------------------------

SAFE_KWARGS: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}


def load_tokenizer(source: ModelSource) -> Any:
    """The tokenizer of a causal LM from checked files (no remote code): what the web process keeps
    of a text model that decodes in its own process."""
    from transformers import AutoTokenizer

    if source.kind != CAUSAL_LM:
        raise UserError(f"{source.label} is {KIND_LABELS.get(source.kind, source.kind)}, not a causal LM.")
    return AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)


def load_causal_lm(source: ModelSource, dtype: Any = None, device: str = "cpu",
                   device_map_auto: bool = False, attention: str = "sdpa") -> tuple[Any, Any]:
    """(model, tokenizer) from checked files; SDPA attention where the architecture has it;
    `device_map="auto"` spreads a model over the GPUs present when the catalog asks for it."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(source)
    kwargs: dict[str, Any] = dict(SAFE_KWARGS, dtype=dtype)
    if device_map_auto and device == "cuda":
        kwargs["device_map"] = "auto"
    with building():  # one build at a time in the process (loading.building)
        try:
            model = AutoModelForCausalLM.from_pretrained(source.path, attn_implementation=attention, **kwargs)
        except (ValueError, ImportError):  # an architecture without SDPA support
            model = AutoModelForCausalLM.from_pretrained(source.path, **kwargs)
    if "device_map" not in kwargs:
        model.to(device)
    return model.eval(), tokenizer


def load_text_to_image(source: ModelSource, dtype: Any = None) -> Any:
    """A diffusers text-to-image pipeline from checked files (safetensors only, no custom code).
    In half precision the `fp16` weights variant is loaded where the folder has it, else the
    full-precision files (cast to `dtype`)."""
    import torch
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # progress is reported per step by the service

    if source.kind != TEXT_TO_IMAGE:
        raise UserError(f"{source.label} is {KIND_LABELS.get(source.kind, source.kind)}, not a "
                         "text-to-image pipeline.")
    kwargs: dict[str, Any] = {"use_safetensors": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if dtype in (torch.float16, torch.bfloat16) and any(source.path.glob("*/*.fp16.safetensors")):
        kwargs["variant"] = "fp16"
    with building():
        pipe = AutoPipelineForText2Image.from_pretrained(source.path, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe
