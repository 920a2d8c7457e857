"""The gallery's data: the catalog, filtered, as plain values the UI renders."""

from __future__ import annotations

from pathlib import Path

from aigc_demo.catalog import SOURCES, TASKS, ModelSpec, build_catalog
from aigc_demo.services.validate import shown

ALL = "all"


def list_models(weights_dir: str | Path, task: str = ALL, source: str = ALL,
                user_dirs: list[str | Path] | None = None) -> list[ModelSpec]:
    """The catalog's specs for one task and source (`"all"` for no filter)."""
    if task is None:
        task = ALL
    if source is None:
        source = ALL
    if not isinstance(task, str) or task != ALL and task not in TASKS:
        raise ValueError(f"unknown task {shown(task)}: choose one of {', '.join(TASKS)}")
    if not isinstance(source, str) or source != ALL and source not in SOURCES:
        raise ValueError(f"unknown source {shown(source)}: choose one of {', '.join(SOURCES)}")
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


def models_for_tab(weights_dir: str | Path, tab: str, user_dirs: list[str | Path] | None = None,
                   families: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(label, reference) pairs for a tab's model picker: local folders first, then hub ids.

    The reference is what the services load: a folder path for local models, a repo id for hub
    models. Entries whose card is broken are left out (the gallery shows why).
    """
    choices = []
    for spec in build_catalog(weights_dir, user_dirs):
        if spec.tab != tab or spec.error or (families and spec.family not in families):
            continue
        ref = spec.folder if spec.source != "hub" else spec.repo_id
        label = spec.title if spec.source != "hub" else f"{spec.title} (Hub)"
        choices.append((label, str(ref)))
    return choices
