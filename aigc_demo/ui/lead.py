"""A tab's opening: one line saying what the tab does, the explanation folded under "How it works".

Keys: `<tab>.lead` (the line) and `<tab>.intro` (the explanation), both in the string table.
"""

from __future__ import annotations

import gradio as gr

from aigc_demo.ui.strings import t


def build_lead(tab: str, **values: object) -> None:
    """The one-line lead of `tab` and its closed "How it works" accordion."""
    gr.Markdown(t(f"{tab}.lead", **values), elem_classes="tab-lead", elem_id=f"{tab}-lead")
    with gr.Accordion(t("common.how_it_works"), open=False, elem_classes="how-it-works",
                      elem_id=f"{tab}-how"):
        gr.Markdown(t(f"{tab}.intro", **values))


def build_help(lead_key: str, help_key: str, elem_id: str | None = None) -> None:
    """The same for a sub-tab: its lead line, then its explanation folded under "How it works"."""
    gr.Markdown(t(lead_key), elem_classes="tab-lead", elem_id=elem_id and f"{elem_id}-lead")
    with gr.Accordion(t("common.how_it_works"), open=False, elem_classes="how-it-works",
                      elem_id=elem_id and f"{elem_id}-how"):
        gr.Markdown(t(help_key))
