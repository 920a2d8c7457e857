"""Can a picked model run now, or must it be downloaded first (and can it be)?

The pickers and the gallery ask this before a visitor presses Generate, so a hub model that is
not in the local cache is shown as such (with its download size) instead of looking runnable.
Everything here looks at the disk and the offline flag only: no network call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aigc_demo.catalog import hub_entry, validate_repo_id
from aigc_demo.device import pick_device
from aigc_demo.engines.registry import is_remote_ref
from aigc_demo.hub import cached_snapshot, hub_offline, is_local_ref

HUB_PAGE = "https://huggingface.co/{repo_id}"


@dataclass(frozen=True)
class Availability:
    """Where a model reference stands on this machine."""

    ref: str
    hub: bool  # a Hugging Face id (else a local folder)
    downloaded: bool  # its files are here: Generate runs without a download
    offline: bool  # the Hub cannot be reached now, so a missing model cannot be fetched
    download_gb: float | None = None  # what a download fetches (curated hub models only)
    invalid: bool = False  # neither an existing folder nor a well-formed hub id

    @property
    def runnable(self) -> bool:
        """True when Generate can work: the files are here, or they can be downloaded now."""
        return not self.invalid and (self.downloaded or (self.hub and not self.offline))

    @property
    def hub_url(self) -> str | None:
        return hub_page(self.ref) if self.hub else None


def hub_page(repo_id: str) -> str:
    """The model's page on the Hugging Face Hub."""
    return HUB_PAGE.format(repo_id=repo_id)


def on_cuda() -> bool:
    """Whether models run on a CUDA GPU here (what decides the fp16 download)."""
    try:
        return pick_device().name == "cuda"
    except Exception:  # noqa: BLE001 - no torch: not CUDA
        return False


def hub_download_gb(repo_id: str, cuda: bool | None = None) -> float | None:
    """What a curated hub model downloads here: its fp16 files on CUDA where the repo has them
    (SD-Turbo 2.6 GB instead of 5.2 GB); None for a model not in the catalog."""
    entry = hub_entry(repo_id)
    if entry is None or not entry.download_gb:
        return None
    if cuda is None:
        cuda = on_cuda()
    return entry.variant_gb if cuda and entry.variant and entry.variant_gb else entry.download_gb


def check(ref: str | None) -> Availability | None:
    """The availability of a picker value (a folder path or a hub id); None when nothing is picked."""
    text = (ref or "").strip()
    if not text:
        return None
    offline = hub_offline()
    if is_remote_ref(text):  # served by an engine: nothing to download (a failure is said when asked)
        return Availability(text, hub=False, downloaded=True, offline=offline)
    if is_local_ref(text):
        return Availability(text, hub=False, downloaded=Path(text).expanduser().is_dir(), offline=offline)
    try:
        repo_id = validate_repo_id(text)
    except ValueError:
        return Availability(text, hub=False, downloaded=False, offline=offline, invalid=True)
    entry = hub_entry(repo_id)
    found = cached_snapshot(repo_id, entry.revision if entry else None) is not None
    return Availability(repo_id, hub=True, downloaded=found, offline=offline,
                        download_gb=hub_download_gb(repo_id) if entry else None)
