"""A training run's export is whole or not used: the files are written, then a manifest.

`task.export` writes config.json, model.safetensors, a tokenizer and a card straight into the
run's out/ folder; a process stopped in the middle (SIGKILL, a power cut, a second SIGTERM)
leaves some of them, or half of one. So the export first removes the manifest, writes the files,
flushes them to disk, and last writes `EXPORT_MARK` (each exported file and its size) under a
temporary name and renames it in. The app offers to save, download or push an export only
while `export_complete` holds: a half-written export is never served, after a restart either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

EXPORT_MARK = ".export-complete.json"


def _exported(out_dir: Path) -> dict[str, int]:
    files = {}
    for path in sorted(out_dir.rglob("*")):
        rel = path.relative_to(out_dir)
        if path.is_file() and not rel.parts[0].startswith(("checkpoint", ".")) and not path.name.endswith(".tmp"):
            files[rel.as_posix()] = path.stat().st_size
    return files


def export_whole(out_dir: str | Path, write: Callable[[Path], None]) -> None:
    """Run `write(out_dir)` (the task's export) so that `export_complete` holds only after it
    finished: the manifest goes first, the files are synced, the manifest comes back last."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / EXPORT_MARK).unlink(missing_ok=True)
    write(out_dir)
    files = _exported(out_dir)
    for rel in files:
        with open(out_dir / rel, "rb") as handle:
            os.fsync(handle.fileno())
    partial = out_dir / f"{EXPORT_MARK}.tmp"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump({"files": files}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, out_dir / EXPORT_MARK)


def export_complete(out_dir: str | Path) -> bool:
    """True when out_dir holds a finished export: its manifest, and every file it lists at its size."""
    out_dir = Path(out_dir)
    try:
        files = json.loads((out_dir / EXPORT_MARK).read_text(encoding="utf-8"))["files"]
        return bool(files) and "config.json" in files and all(
            (out_dir / rel).is_file() and (out_dir / rel).stat().st_size == size for rel, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
