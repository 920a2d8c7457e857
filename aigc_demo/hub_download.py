"""Fetching a hub model into the Hugging Face cache: safetensors and configs only, its size
checked against the operator's cap before any byte, progress reported in bytes and ETA, and a
network failure turned into `HubModelMissing` at once (no half-minute retry loop)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError
from huggingface_hub.utils import filter_repo_objects
from tqdm.auto import tqdm

from aigc_demo.catalog import hub_entry
from aigc_demo.device import pick_device
from aigc_demo.errors import UserError
from aigc_demo.hub_checks import (CAUSAL_LM, DOWNLOAD_IGNORE, ETAG_TIMEOUT_S, KIND_LABELS, TEXT_TO_IMAGE,
                                  DownloadProgress, HubModelMissing, ProgressCallback, _human, check_allowed,
                                  detect_kind, hub_endpoint, hub_reachable, missing_message)
from aigc_demo.settings import operator_settings


def download_size(repo_id: str, revision: str | None, kind: str | None, variant: str | None) -> int:
    """Bytes `download_model` would fetch, from the repo's file list (one metadata request, no
    download): the files its download patterns keep. ValueError when a size is not listed."""
    info = HfApi(endpoint=hub_endpoint()).model_info(repo_id, revision=revision, files_metadata=True,
                                                     timeout=ETAG_TIMEOUT_S)
    files = list(info.siblings or [])
    names = {f.rfilename for f in files}
    found = kind or (TEXT_TO_IMAGE if "model_index.json" in names else CAUSAL_LM)
    patterns = download_patterns(found, variant)
    chosen = list(filter_repo_objects(files, allow_patterns=patterns.get("allow_patterns"),
                                      ignore_patterns=patterns.get("ignore_patterns"), key=lambda f: f.rfilename))
    unknown = [f.rfilename for f in chosen if f.size is None]
    if unknown:
        raise UserError(f"The Hub did not say how large {repo_id} is ({unknown[0]} has no size), so this "
                         "server, which limits downloads, does not download it.")
    return int(sum(f.size for f in chosen))


def check_download_size(repo_id: str, revision: str | None, kind: str | None, variant: str | None) -> None:
    """ValueError before any download when the files are over AIGC_HUB_MAX_DOWNLOAD_GB."""
    cap_gb = operator_settings().hub_max_download_gb
    if not cap_gb:
        return
    size = download_size(repo_id, revision, kind, variant)
    if size > cap_gb * 2**30:
        raise UserError(f"{repo_id} is {_human(size)} to download; this server downloads at most "
                         f"{cap_gb:g} GB per model (AIGC_HUB_MAX_DOWNLOAD_GB). Pick a smaller model.")


# ---- downloading with progress -----------------------------------------------------------------

class CallbackTqdm(tqdm):  # type: ignore[misc, valid-type]
    """A tqdm for `snapshot_download(tqdm_class=...)` that reports bytes and ETA to `callback`.

    snapshot_download makes three bars with it: a file counter, and two byte bars
    ("Downloading bytes" for network transfer, "Reconstructing" / "Fetching" bytes written).
    Only byte bars written to disk are reported: they grow for every kind of download.
    """

    callback: ProgressCallback | None = None  # bound per download by `progress_tqdm`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("name", None)
        kwargs["disable"] = False
        kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
        super().__init__(*args, **kwargs)
        self._reports = self.unit == "B" and not str(self.desc).startswith("Downloading bytes")
        self._started = time.perf_counter()

    def update(self, n: float | None = 1) -> bool | None:
        shown = super().update(n)
        report = type(self).callback
        if self._reports and report is not None:
            elapsed = max(time.perf_counter() - self._started, 1e-6)
            rate = self.n / elapsed
            total = int(self.total or 0)
            eta = (total - self.n) / rate if rate > 0 and total >= self.n else None
            report(DownloadProgress(int(self.n), total, rate, eta))
        return shown

    def close(self) -> None:
        file = self.fp if hasattr(self, "fp") else None
        super().close()
        if file is not None and not file.closed and file.name == os.devnull:
            file.close()


def progress_tqdm(callback: ProgressCallback) -> type[CallbackTqdm]:
    """CallbackTqdm reporting to `callback` (snapshot_download makes the bars itself, so the
    callback travels as an attribute of a subclass, one per download)."""
    return type("BoundCallbackTqdm", (CallbackTqdm,), {"callback": staticmethod(callback)})


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
    reachable, detail = hub_reachable()
    if not reachable:
        raise HubModelMissing(missing_message(
            repo_id, f"the Hugging Face Hub cannot be reached ({detail})", revision))
    endpoint = hub_endpoint()
    check_allowed(repo_id)
    if variant is None:
        entry = hub_entry(repo_id)
        variant = entry.variant if entry and _on_cuda() else None
    try:
        check_download_size(repo_id, revision, kind, variant)
        probe = _probe_file(repo_id, kind)
        try:
            config = Path(huggingface_hub.hf_hub_download(repo_id, probe, revision=revision, endpoint=endpoint,
                                                          etag_timeout=ETAG_TIMEOUT_S))
        except RemoteEntryNotFoundError as err:
            wanted = KIND_LABELS.get(kind or "", "a supported model")
            raise UserError(f"{repo_id} has no {probe}: it is not {wanted}.") from err
        found = detect_kind(config.parent, repo_id)
        if kind is not None and found != kind:
            raise UserError(f"{repo_id} is {KIND_LABELS[found]}, but this tab needs {KIND_LABELS[kind]}.")
        tqdm_class = progress_tqdm(on_progress) if on_progress else None
        path = huggingface_hub.snapshot_download(repo_id, revision=revision, endpoint=endpoint,
                                                 etag_timeout=ETAG_TIMEOUT_S, tqdm_class=tqdm_class,
                                                 **download_patterns(found, variant))
    except HfHubHTTPError as err:  # the Hub answered: no such repo, gated, or a server error
        raise UserError(f"The Hub refused {repo_id}: {' '.join(str(err).split())[:300]} "
                         "(check the id; gated models need `hf auth login`).") from err
    except OSError as err:  # no connection, DNS, timeout, offline mode switched on meanwhile
        raise HubModelMissing(missing_message(
            repo_id, f"the Hugging Face Hub could not be reached ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]})", revision)) from err
    return Path(path)


def _on_cuda() -> bool:
    try:
        return pick_device().name == "cuda"
    except Exception:  # noqa: BLE001 - no torch: not CUDA
        return False
