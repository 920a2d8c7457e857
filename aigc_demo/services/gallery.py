"""The gallery's data: the catalog, filtered, as plain values the UI renders."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

from aigc_demo.catalog import SOURCES, TASKS, ModelSpec, build_catalog

ALL = "all"
THUMBNAIL_SIDE = 240  # px: a card shows its sample at most this big


def list_models(weights_dir: str | Path, task: str = ALL, source: str = ALL,
                user_dirs: list[str | Path] | None = None) -> list[ModelSpec]:
    """The catalog's specs for one task and source (`"all"` for no filter)."""
    if task != ALL and task not in TASKS:
        raise ValueError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    if source != ALL and source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
    specs = build_catalog(weights_dir, user_dirs)
    return [s for s in specs if (task == ALL or s.task == task) and (source == ALL or s.source == source)]


def format_parameters(count: int | None) -> str:
    """124000000 -> '124M', 1300000000 -> '1.3B', 20000 -> '20K'."""
    if count is None:
        return "?"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)


def picker_specs(weights_dir: str | Path, tab: str, user_dirs: list[str | Path] | None = None,
                 families: tuple[str, ...] | None = None) -> list[ModelSpec]:
    """The usable catalog entries of one tab, in picker order (local folders first, then hub ids).

    Entries whose card is broken are left out (the gallery shows why)."""
    return [spec for spec in build_catalog(weights_dir, user_dirs)
            if spec.tab == tab and not spec.error and (not families or spec.family in families)]


def picker_ref(spec: ModelSpec) -> str:
    """What the services load for `spec`: a folder path for local models, a repo id for hub models."""
    return str(spec.folder if spec.source != "hub" else spec.repo_id)


def models_for_tab(weights_dir: str | Path, tab: str, user_dirs: list[str | Path] | None = None,
                   families: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(label, reference) pairs for a tab's model picker: local folders first, then hub ids."""
    return [(spec.title if spec.source != "hub" else f"{spec.title} (Hub)", picker_ref(spec))
            for spec in picker_specs(weights_dir, tab, user_dirs, families)]


def thumbnail_data_uri(path: str | Path, side: int = THUMBNAIL_SIDE) -> str | None:
    """A card's sample image as a small `data:image/webp` URI (no server path reaches the page);
    None when the file cannot be read. Cached per file version, so a filter change re-encodes nothing."""
    file = Path(path)
    try:
        stat = file.stat()
    except OSError:
        return None
    return _thumbnail(str(file), stat.st_mtime_ns, stat.st_size, side)


@lru_cache(maxsize=512)
def _thumbnail(path: str, _mtime_ns: int, _size: int, side: int) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if image.mode in ("1", "L", "P;L") else "RGB")
            image.thumbnail((side, side), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, "WEBP", quality=85, method=4)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
