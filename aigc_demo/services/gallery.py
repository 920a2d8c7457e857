"""The gallery's data: the catalog, filtered, as plain values the UI renders."""

from __future__ import annotations

from pathlib import Path

from aigc_demo.catalog import SOURCES, TASKS, ModelSpec, build_catalog

ALL = "all"
REMOTE_TABS = ("text", "code")  # the tabs whose pickers list remote engines' models


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


def models_for_tab(weights_dir: str | Path, tab: str, user_dirs: list[str | Path] | None = None,
                   families: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(label, reference) pairs for a tab's model picker: local folders first, then hub ids.

    The reference is what the services load: a folder path for local models, a repo id for hub
    models, `remote:<host:port>/<model id>` for a remote engine's models (listed in both the Text
    and the Code picker). Entries whose card is broken are left out (the gallery shows why).
    """
    choices = []
    for spec in build_catalog(weights_dir, user_dirs):
        remote = spec.source == "remote" and tab in REMOTE_TABS  # any served LM writes text and code
        if (spec.tab != tab and not remote) or spec.error or (families and spec.family not in families):
            continue
        ref = {"hub": spec.repo_id, "remote": spec.id}.get(spec.source, spec.folder)
        label = {"hub": f"{spec.title} (Hub)", "remote": f"{spec.title} ({spec.server})"}.get(
            spec.source, spec.title)
        choices.append((label, str(ref)))
    return choices
