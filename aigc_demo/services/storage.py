"""Disk that visitors fill: quotas, and a sweeper that deletes what has expired.

What a visitor creates lives in two per-session folders: `<runs>/finetune/<session>` (jobs with
their copied data and outputs, drawings) and `<user_models>/<session>` (saved models). Before a
job starts or a model is saved, the visitor's and the server's usage are checked against
AIGC_USER_QUOTA_MB and AIGC_TOTAL_QUOTA_MB. A daemon thread deletes, every
AIGC_SWEEP_INTERVAL_S, jobs, drawings, saved models and generated images untouched for longer
than AIGC_USER_TTL_HOURS (never a job that is still queued or training). Files handed out for
download live in Gradio's cache, which Gradio itself empties on the same schedule
(`gr.Blocks(delete_cache=...)`).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from aigc_demo.errors import UserError
from aigc_demo.settings import PublicSettings

log = logging.getLogger(__name__)
MB = 2**20


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder` (0 when it does not exist); links are not followed."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += stat.st_size
    return total


def last_touched(path: Path) -> float:
    """The newest modification time in `path` (a file or a folder tree)."""
    try:
        newest = path.lstat().st_mtime
    except OSError:
        return 0.0
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except OSError:
                    continue
    return newest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@dataclass
class Storage:
    """Quotas and expiry for the per-visitor folders under `roots` (each holds one folder per session)."""

    settings: PublicSettings
    roots: list[Path]
    extra_dirs: list[Path] = field(default_factory=list)  # flat folders of generated files (images)

    def usage(self, session: str | None = None) -> int:
        """Bytes used by one session (or by everyone when `session` is None)."""
        if session is None:
            return sum(folder_bytes(root) for root in self.roots)
        return sum(folder_bytes(root / session) for root in self.roots)

    def check_quota(self, session: str, adding: int = 0) -> None:
        """UserError with a clear message when `adding` more bytes would pass a quota."""
        hours = f"{self.settings.user_ttl_hours:g}"
        mine = self.usage(session)
        limit = self.settings.user_quota_mb * MB
        if mine + adding > limit:
            raise UserError(
                f"Your files on this server (jobs, drawings, saved models) take {mine / MB:.1f} MB of the "
                f"{self.settings.user_quota_mb:g} MB each visitor may use"
                + (f", and this needs {adding / MB:.1f} MB more" if adding else "")
                + f". Download what you want to keep; files are deleted {hours} hours after their last use.")
        everyone = self.usage(None)
        total = self.settings.total_quota_mb * MB
        if everyone + adding > total:
            raise UserError(
                f"This server's disk for visitors is full ({everyone / MB:.0f} MB of "
                f"{self.settings.total_quota_mb:g} MB). Try again later: files are deleted {hours} hours "
                "after their last use.")

    def expired(self, now: float | None = None, keep: Callable[[Path], bool] = lambda path: False) -> list[Path]:
        """Everything untouched for longer than the TTL: one entry per job, drawing file, saved model,
        generated image, then session folders left empty."""
        now = time.time() if now is None else now
        cutoff = now - self.settings.ttl_seconds
        found: list[Path] = []
        for item in self._items():
            if not keep(item) and last_touched(item) < cutoff:
                found.append(item)
        return found

    def _items(self) -> Iterable[Path]:
        for root in self.roots:
            if not root.is_dir():
                continue
            for session in root.iterdir():
                if not session.is_dir():
                    continue
                for item in session.iterdir():
                    if item.name == "jobs" and item.is_dir():
                        yield from item.iterdir()
                    else:
                        yield item
        for folder in self.extra_dirs:
            if folder.is_dir():
                yield from folder.iterdir()

    def sweep(self, now: float | None = None, keep: Callable[[Path], bool] = lambda path: False) -> list[Path]:
        """Delete what has expired (and session folders left empty); returns what was deleted."""
        gone = self.expired(now, keep)
        for path in gone:
            _remove(path)
        for root in self.roots:
            if not root.is_dir():
                continue
            for session in root.iterdir():
                jobs = session / "jobs"
                for folder in (jobs, session):
                    try:
                        if folder.is_dir() and not any(folder.iterdir()):
                            folder.rmdir()
                    except OSError:
                        pass
        if gone:
            log.info("swept %d expired item(s) older than %g hours", len(gone), self.settings.user_ttl_hours)
        return gone


class Sweeper:
    """A daemon thread calling `sweep()` every `interval` seconds until `stop()`."""

    def __init__(self, sweep: Callable[[], object], interval: float) -> None:
        self._sweep = sweep
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Sweeper":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True, name="aigc-sweeper")
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sweep()
            except Exception:  # noqa: BLE001 - one failed sweep must not end the thread
                log.exception("sweeping expired files failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
