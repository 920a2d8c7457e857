"""Say up front whether the picked model can run: labels in the pickers, and a one-line note with
the state of the Generate button beside it (Image, Text and Code tabs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from aigc_demo.catalog import ModelSpec
from aigc_demo.services.availability import Availability, check, hub_download_gb
from aigc_demo.services.gallery import picker_ref, picker_specs
from aigc_demo.ui.strings import t


def picker_label(spec: ModelSpec) -> str:
    """'SD-Turbo (Hub · not downloaded · 5.2 GB)', 'GPT-2 (124M) (Hub · downloaded)', or the title."""
    if spec.source == "remote":
        return f"{spec.title} ({spec.server})"
    if spec.source != "hub":
        return spec.title
    if spec.cached:
        return t("avail.hub_ready", title=spec.title)
    size = hub_download_gb(spec.id)  # on CUDA, the fp16 files where the repo has them
    if size:
        return t("avail.hub_missing", title=spec.title, size=size)
    return t("avail.hub_missing_unsized", title=spec.title)


def picker_choices(weights_dir: str | Path, tab: str, user_dirs: Any,
                   families: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(label with availability, reference) for a tab's model picker."""
    return [(picker_label(spec), picker_ref(spec, user_dirs))
            for spec in picker_specs(weights_dir, tab, user_dirs, families)]


def note_text(state: Availability | None) -> str:
    """One line for a model that cannot run at once; '' when it can."""
    if state is None or (state.downloaded and not state.invalid):
        return ""
    if state.invalid:
        return t("avail.invalid", ref=state.ref)
    if not state.hub:
        return t("avail.no_folder", ref=state.ref)
    size = t("avail.size", size=state.download_gb) if state.download_gb else t("avail.size_unknown")
    return t("avail.missing_offline" if state.offline else "avail.missing_online", size=size)


@dataclass(frozen=True)
class GenerateView:
    """How the note and the Generate button look for one picked model."""

    note: str  # '' when the model runs at once
    label: str
    variant: str  # "primary" when ready, "secondary" when a download comes first
    interactive: bool  # off when the model cannot run here


def generate_view(ref: str | None, label: str) -> GenerateView:
    """Generate reads "Download and generate" when a download comes first, and is off when the
    model cannot run (not downloaded on an offline server, no such folder)."""
    from aigc_demo.ui import model_refs

    resolved = model_refs.resolve_or_none(ref) if (ref or "").strip() else None
    try:  # an id this visitor may not pick counts as invalid
        state = check(resolved) if resolved else (Availability(str(ref), False, False, False, invalid=True)
                                                  if (ref or "").strip() else None)
    except (OSError, ValueError):
        state = None
    ready = state is None or (state.downloaded and not state.invalid)
    return GenerateView(note=note_text(state), label=label if ready else t("avail.download_and_generate"),
                        variant="primary" if ready else "secondary",
                        interactive=state is None or state.runnable)


def generate_state(ref: str | None, label: str, extra: int = 0) -> tuple[Any, ...]:
    """Updates for (note, Generate, `extra` more run buttons such as Regenerate)."""
    view = generate_view(ref, label)
    return (gr.Markdown(view.note, visible=bool(view.note)),
            gr.Button(view.label, variant=view.variant, interactive=view.interactive),
            *[gr.Button(interactive=view.interactive) for _ in range(extra)])
