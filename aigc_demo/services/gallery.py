"""The gallery's data: the catalog, filtered, as plain values the UI renders."""

from __future__ import annotations

import base64
import io
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from aigc_demo.catalog import SOURCES, TASKS, ModelSpec, add_hub_model, build_catalog
from aigc_demo.errors import UserError
from aigc_demo.services.validate import shown
from aigc_demo.services.model_ids import listed_id

MAX_SAMPLE_BYTES = 2 * 2**20  # larger sample images are left out of the JSON

ALL = "all"
REMOTE_TABS = ("text", "code")  # the tabs whose pickers list remote engines' models
THUMBNAIL_SIDE = 240  # px: a card shows its sample at most this big


def list_models(weights_dir: str | Path, task: str = ALL, source: str = ALL,
                user_dirs: list[str | Path] | None = None) -> list[ModelSpec]:
    """The catalog's specs for one task and source (`"all"` for no filter)."""
    if task is None:
        task = ALL
    if source is None:
        source = ALL
    if not isinstance(task, str) or task != ALL and task not in TASKS:
        raise UserError(f"unknown task {shown(task)}: choose one of {', '.join(TASKS)}")
    if not isinstance(source, str) or source != ALL and source not in SOURCES:
        raise UserError(f"unknown source {shown(source)}: choose one of {', '.join(SOURCES)}")
    specs = build_catalog(weights_dir, user_dirs)
    return [s for s in specs if (task == ALL or s.task == task) and (source == ALL or s.source == source)]


def filter_keys() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys the gallery filters by: (tasks, sources), in display order."""
    return tuple(TASKS), tuple(SOURCES)


def add_hub_id(repo_id: str, task: str) -> str:
    """Add a Hugging Face model id to the catalog for `task` (checked like any visitor's id);
    the id as the pickers list it."""
    return add_hub_model(repo_id, task).repo_id


def _session_of(user_dirs: Any, session: str | None) -> str | None:
    return session if session is not None else getattr(user_dirs, "session", None)


def models_for_tab(weights_dir: str | Path, tab: str, user_dirs: list[str | Path] | None = None,
                   families: tuple[str, ...] | None = None, session: str | None = None) -> list[tuple[str, str]]:
    """(label, id) pairs for a tab's model picker: local models first, then hub ids, then the
    models of remote engines (`remote:<host:port>/<model id>`, in both the Text and Code pickers).

    The id is never a server path: a shipped model's folder name, `yours/<name>` for the
    visitor's own (services/model_ids.py turns ids back into folders). `session` defaults to
    the one `user_dirs` belongs to. Entries whose card is broken are left out (the gallery shows why).
    """
    session = _session_of(user_dirs, session)
    choices = []
    for spec in build_catalog(weights_dir, user_dirs):
        remote = spec.source == "remote" and tab in REMOTE_TABS  # any served LM writes text and code
        if (spec.tab != tab and not remote) or spec.error or (families and spec.family not in families):
            continue
        label = {"hub": f"{spec.title} (Hub)", "remote": f"{spec.title} ({spec.server})"}.get(
            spec.source, spec.title)
        choices.append((label, listed_id(spec, session)))
    return choices


def sample_data_uri(spec: ModelSpec) -> str | None:
    """The card's sample image as a `data:` URI (no server path, nothing to fetch by URL)."""
    if not spec.sample_image:
        return None
    path = Path(spec.sample_image)
    try:
        if path.stat().st_size > MAX_SAMPLE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
            ".webp": "image/webp"}.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def public_model(spec: ModelSpec, session: str | None = None) -> dict[str, Any]:
    """A catalog entry as JSON for anyone: its listed id, no folder, the sample image inline."""
    data = asdict(spec)
    data["id"] = listed_id(spec, session) if spec.source != "hub" or spec.repo_id else spec.id
    data.pop("folder", None)
    data["sample_image"] = sample_data_uri(spec)
    if spec.error and spec.folder:
        data["error"] = spec.error.replace(str(Path(spec.folder).parent), "…")
    return data


def picker_specs(weights_dir: str | Path, tab: str, user_dirs: list[str | Path] | None = None,
                 families: tuple[str, ...] | None = None) -> list[ModelSpec]:
    """The usable catalog entries of one tab, in picker order (local models first, then hub ids).

    Entries whose card is broken are left out (the gallery shows why)."""
    return [spec for spec in build_catalog(weights_dir, user_dirs)
            if (spec.tab == tab or (spec.source == "remote" and tab in REMOTE_TABS)) and not spec.error
            and (not families or spec.family in families)]


def picker_ref(spec: ModelSpec, user_dirs: Any = None, session: str | None = None) -> str:
    """The id a picker lists for `spec`: never a server path (services/model_ids.py)."""
    return listed_id(spec, _session_of(user_dirs, session))


def thumbnail_data_uri(path: str | Path, side: int = THUMBNAIL_SIDE) -> str | None:
    """A card's sample image as a small `data:image/webp` URI (no server path reaches the page);
    None when the file cannot be read. Cached per file version, so a refresh re-encodes nothing."""
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
