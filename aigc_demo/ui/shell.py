"""Assemble the page: a header, then one tab per module, each built by its `build_<tab>_tab`."""

from __future__ import annotations

from typing import Callable

import gradio as gr

from aigc_demo.settings import ServeSettings
from aigc_demo.settings import current as current_settings
from aigc_demo.ui import files, inline_processing, mcp_tools, model_refs, sessions, share
from aigc_demo.ui.code import build_code_tab
from aigc_demo.ui.compare import CSS as COMPARE_CSS
from aigc_demo.ui.compare import build_compare_tab
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.digits import build_digits_tab
from aigc_demo.ui.finetune import build_finetune_tab
from aigc_demo.ui.gallery import build_gallery_tab
from aigc_demo.ui.inputs import check_inputs
from aigc_demo.ui.lab import CSS as LAB_CSS
from aigc_demo.ui.lab import build_lab_tab
from aigc_demo.ui.image import build_image_tab
from aigc_demo.ui.strings import t
from aigc_demo.ui.system import build_system_tab, device_badge
from aigc_demo.ui.text import build_text_tab

# (tab id, builder) in page order; a tab is listed here only once it is real.
TABS: list[tuple[str, Callable[[AppContext], None]]] = [
    ("gallery", build_gallery_tab),
    ("digits", build_digits_tab),
    ("text", build_text_tab),
    ("code", build_code_tab),
    ("image", build_image_tab),
    ("compare", build_compare_tab),
    ("finetune", build_finetune_tab),
    ("lab", build_lab_tab),
    ("system", build_system_tab),
]

CSS = """
#app-header { align-items: center; gap: 0 16px; }
#app-header h1 { margin: 0; }
#app-header p { margin: 2px 0 0; }
#device-badge { flex: 0 1 auto !important; min-width: fit-content !important; }
.tab-lead p { font-size: 1.05em; margin: 0; }
.how-it-works { margin-top: 0; }
.metric-badge { display: inline-block; padding: 2px 8px; margin: 2px; border-radius: 999px;
                background: var(--color-accent-soft); font-size: 0.85em; }
#gallery-count { margin: 4px 0 8px; font-weight: 600; }
#gallery-cards { display: grid; gap: 12px; align-items: start;
                 grid-template-columns: repeat(auto-fill, minmax(min(300px, 100%), 1fr)); }
.model-card { border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 10px 12px;
              background: var(--block-background-fill); }
.model-card > summary { list-style: none; cursor: pointer; display: flex; flex-direction: column; gap: 4px; }
.model-card > summary::-webkit-details-marker { display: none; }
.model-card .card-title { font-weight: 600; font-size: 1.1em; }
.model-card .card-title::before { content: "▸ "; color: var(--body-text-color-subdued); }
.model-card[open] .card-title::before { content: "▾ "; }
.model-card .card-kind { font-size: 0.9em; color: var(--body-text-color-subdued); }
.model-card .card-body { margin-top: 6px; }
.model-card .card-body p { margin: 4px 0; }
.model-card .card-error { color: var(--error-text-color); }
.model-card .card-sample { display: block; width: min(220px, 100%); height: auto; margin: 8px auto;
                           border-radius: 8px; image-rendering: pixelated; }
.model-card .card-code { max-height: 11em; overflow: auto; font-size: 0.85em; padding: 8px; margin: 6px 0;
                         border-radius: 8px; background: var(--background-fill-secondary); white-space: pre-wrap; }
.avail { display: inline-block; width: fit-content; padding: 1px 8px; border-radius: 999px; font-size: 0.85em; }
.avail-ready { background: #e3f6e8; color: #17592b; }
.avail-missing { background: #fff1dc; color: #7a4100; }
.card-open { align-self: flex-start; margin-top: 4px; padding: 4px 12px; border-radius: var(--button-small-radius);
             background: var(--button-primary-background-fill); color: var(--button-primary-text-color);
             font-size: var(--button-small-text-size); cursor: pointer; }
.card-open:hover { background: var(--button-primary-background-fill-hover); }
.avail-note p { margin: 0; font-size: 0.9em; }
.compact-buttons { flex-wrap: nowrap !important; gap: 6px !important; }
.compact-buttons > * { min-width: 0 !important; flex: 1 1 0 !important; }
@media (max-width: 640px) {
  #app-header { gap: 0 8px; }
  #app-header h1 { font-size: 1.35rem; }
  #app-header p { font-size: 0.82rem; line-height: 1.3; }
  #app-header > * { min-width: 0 !important; }
  .compact-buttons > button { padding: 6px 4px !important; font-size: 0.9em !important; }
  #gallery-source { --checkbox-label-padding: 3px 8px; --checkbox-label-text-size: 0.85rem; }
  #gallery-source .wrap { gap: 6px !important; }
}
.share-row { align-items: center; }
"""

# ---- issue #10 items 2, 3, 7, 8, 9 (branch ux2): sketchpad, fine-tune, glitches, look inside.
# Kept apart from the layout rules above so the phone-layout work can edit those freely.
CSS += """
.aigc-sketch { display: flex; flex-direction: column; gap: 6px; }
.aigc-sketch-label { font-size: var(--block-label-text-size); color: var(--block-label-text-color); }
.aigc-sketch canvas { display: block; width: min(100%, 300px); height: auto; aspect-ratio: 1 / 1;
    background: #ffffff; border: 1px solid var(--border-color-primary); border-radius: 8px;
    touch-action: none; cursor: crosshair; }
.aigc-sketch-bar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; max-width: 300px; }
.aigc-sketch-hint { flex: 1 1 100%; font-size: var(--text-sm); color: var(--body-text-color-subdued); }
.aigc-sketch-bar button { padding: 2px 12px; border-radius: var(--button-small-radius);
    border: 1px solid var(--button-secondary-border-color); background: var(--button-secondary-background-fill);
    color: var(--button-secondary-text-color); font-size: var(--text-sm); }
/* Output images: the label sits above the picture instead of covering its top-left corner. */
.aigc-out [data-testid="block-label"] { position: static; margin: 0 0 4px 0; width: fit-content; }
#digits-walk-gif img, #digits-walk-strip img { image-rendering: pixelated; }
/* Progress bars in status text follow the theme's accent colour. */
.aigc-progress { width: 100%; height: 10px; accent-color: var(--color-accent); }
.aigc-progress::-webkit-progress-bar { background: var(--neutral-200); border-radius: 5px; }
.aigc-progress::-webkit-progress-value { background: var(--color-accent); border-radius: 5px; }
.aigc-progress::-moz-progress-bar { background: var(--color-accent); }
/* Code tab: a parse badge in plain glyphs (no emoji font needed). */
.parse-badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: var(--text-sm);
    font-weight: 600; }
.parse-badge.ok { background: var(--color-accent-soft); color: var(--color-accent); }
.parse-badge.bad { background: var(--error-background-fill); color: var(--error-text-color); }
/* Look inside: the text as clickable tokens. */
.inside-tokens .token { cursor: pointer; }
#finetune-estimate { min-height: 1.5em; }
"""
CSS += COMPARE_CSS  # issue #15: the Compare tab's columns
CSS += LAB_CSS  # issue 23: the Lab tab's grids side by side


def theme() -> gr.themes.Base:
    """A theme with system fonts only, so the page asks no font server for anything."""
    return gr.themes.Soft(
        primary_hue="indigo",
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def build_app(settings: ServeSettings | None = None) -> gr.Blocks:
    settings = settings or current_settings().serve
    model_refs.install(settings)
    ctx = AppContext(settings=settings, tab_ids=[tab_id for tab_id, _ in TABS], user_dirs=sessions.SessionDirs())
    ttl = int(settings.public.ttl_seconds)  # Gradio deletes cached uploads and downloads this old
    with gr.Blocks(title=t("app.title"), analytics_enabled=False,
                   delete_cache=(int(min(settings.public.sweep_interval_s, ttl)), ttl)) as demo:
        with gr.Row(elem_id="app-header"):
            gr.Markdown(f"# {t('app.title')}\n{t('app.tagline')}")
            badge = gr.Markdown(t("app.device_loading"), elem_id="device-badge")
        ctx.session = sessions.browser_session()
        ctx.models_changed = gr.State(0)
        with gr.Tabs(overflow_behavior="wrap", elem_id="app-tabs") as tabs:
            ctx.tabs = tabs
            for tab_id, build in TABS:
                with gr.Tab(t(f"tab.{tab_id}"), id=tab_id, elem_id=f"tab-{tab_id}"):
                    build(ctx)
        demo.load(device_badge, outputs=badge, show_progress="hidden")
        sessions.attach(demo, ctx)
        share.attach(demo, ctx)  # ?tab=…&…&run=1 opens the page in a shared state
        tools = mcp_tools.register(ctx) if settings.mcp else {}  # the generators as MCP tools
    demo.aigc_ctx = ctx  # type: ignore[attr-defined]  # what model_refs.app_context() finds in an event
    inline_processing.install()  # simple inputs and outputs converted in place, not one thread each
    return mcp_tools.restrict(check_inputs(sessions.track_batches(files.guard(demo))), tools)
