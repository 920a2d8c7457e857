"""A job's events as a JSON Lines file in its folder: written by the job process, tailed by the app.

Why a file and not a queue: the file outlives both processes. A restarted app reads it again and
lists the job with its loss curve and samples; a job that crashed mid-write leaves at most one
torn last line, which readers skip.

- `EventLog` is what the job process gets as `events` (training/finetune.run_job calls `.put`):
  one JSON object per line, flushed at once. Preview images arrive as PNG bytes
  (`preview_png`); they are written as files under `samples/` beside the log and the line keeps
  only their name (`preview_file`), so neither the log nor the app's memory holds image bytes.
- `EventTail` reads the lines appended since its last read; a line without its newline yet (being
  written, or torn) is left for the next read.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"
SAMPLES_DIR = "samples"


class EventLog:
    """Appends events to `<folder>/events.jsonl`; picklable (the file opens on first use)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)
        self._file: Any = None

    @property
    def path(self) -> Path:
        return Path(self.folder) / EVENTS_FILE

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_file": None}

    def _open(self) -> Any:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = self.path.is_file() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
            if torn:  # a crashed writer left half a line: end it, so the next event is a line of its own
                self._file.write("\n")
        return self._file

    def put(self, event: dict[str, Any]) -> None:
        """Write one event as one line, its preview image (if any) as a file beside it."""
        event = dict(event)
        png = event.pop("preview_png", None)
        if png is not None:
            event["preview_file"] = self._write_sample(int(event.get("step", 0)), png, event.get("run"))
        file = self._open()
        file.write(json.dumps(event, separators=(",", ":")) + "\n")
        file.flush()

    def _write_sample(self, step: int, png: bytes, run: Any = None) -> str:
        """`samples/step-0000050.png` (a lab's runs: `step-0000050-run1.png`)."""
        suffix = f"-run{int(run)}" if isinstance(run, int) else ""
        name = f"{SAMPLES_DIR}/step-{step:07d}{suffix}.png"
        target = Path(self.folder) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".png.tmp")
        partial.write_bytes(png)
        os.replace(partial, target)  # a reader never sees half an image
        return name

    # multiprocessing.Queue's ending calls, so run_job's fast exit path treats this log the same way
    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def join_thread(self) -> None:
        """Nothing to wait for: every `put` is already written."""

    def cancel_join_thread(self) -> None:
        """Nothing buffered to abandon."""


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def _parse(line: bytes, path: Path) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        log.warning("skipped an unreadable line in %s", path)
        return None
    return event if isinstance(event, dict) else None


class EventTail:
    """Reads the complete lines appended to an event file since the last `read()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                chunk = file.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []  # nothing complete yet
        self.offset += end + 1
        return [event for line in chunk[:end].split(b"\n") if line.strip()
                if (event := _parse(line, self.path)) is not None]


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete event in a file (a torn last line is skipped)."""
    yield from EventTail(path).read()
