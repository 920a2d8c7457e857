"""The Gallery tab: a card per model, filtered by task and source, each opening its tab.

The cards are one gr.HTML (ui/cards.py): a filter change sends one string, which the browser
swaps in at once, however many models there are.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.services.gallery import ALL, filter_keys, list_models, public_model
from aigc_demo.ui import sessions, share
from aigc_demo.ui.cards import FILTER_JS, GALLERY_JS, gallery_html
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.strings import t


def build_gallery_tab(ctx: AppContext) -> None:
    build_lead("gallery")
    tasks, sources = filter_keys()
    with gr.Row(elem_classes="gallery-filters"):
        task = gr.Dropdown([(t("gallery.all"), ALL), *[(t(f"task.{key}"), key) for key in tasks]],
                           value=ALL, label=t("gallery.filter_task"), elem_id="gallery-task", min_width=160)
        source = gr.Radio([(t("gallery.all"), ALL), *[(t(f"gallery.source.{s}"), s) for s in sources]],
                          value=ALL, label=t("gallery.filter_source"), elem_id="gallery-source", min_width=200)
        refresh = gr.Button(t("gallery.refresh"), size="sm", scale=0, min_width=80)

    share.target(ctx, "gallery", {"task": task, "source": source})  # ?tab=gallery&task=…&source=…

    def cards(stored: Any = None, request: gr.Request = None) -> str:
        """Every card this visitor may see (their own saved models included); the page filters."""
        if request is not None and sessions._valid(stored):
            sessions.remember(request.session_hash, stored)  # the page load may not have mapped it yet
        return gallery_html(list_models(ctx.settings.weights_dir, ALL, ALL, ctx.user_dirs), ctx.tab_ids)

    view = gr.HTML(cards(), elem_id="gallery-view", js_on_load=GALLERY_JS, min_height=0)
    ctx.gallery_view = view  # later tabs open their own part from a card (ui/digits_diffusion.py)
    for control in (task, source):  # in the browser only: hide and show the cards already there
        control.change(None, [task, source], None, js=FILTER_JS, queue=False, api_visibility="private")
    inputs = [ctx.session] if ctx.session is not None else []
    triggers = [refresh.click] + ([ctx.models_changed.change] if ctx.models_changed is not None else [])
    gr.on(triggers, cards, inputs, view, show_progress="hidden", api_visibility="private")
    root = gr.context.Context.root_block
    if root is not None:  # the visitor's own models, once the page knows who they are
        root.load(cards, inputs, view, show_progress="hidden", api_visibility="private")

    def open_tab(event: gr.EventData) -> Any:
        tab = (getattr(event, "_data", None) or {}).get("tab")
        return gr.Tabs(selected=tab) if tab in ctx.tab_ids else gr.skip()

    if ctx.tabs is not None:
        view.click(open_tab, None, ctx.tabs, show_progress="hidden", queue=False, api_visibility="private")

    @user_errors
    def models_api(task: str = ALL, source: str = ALL) -> list[dict[str, Any]]:
        """The gallery as JSON: one dict per model (task and source filters as in the page)."""
        session = getattr(ctx.user_dirs, "session", None)
        return [public_model(s, session) for s in list_models(ctx.settings.weights_dir, task, source, ctx.user_dirs)]

    gr.api(models_api, api_name="models")
