"""Assemble the page: a header, then one tab per module, each built by its `build_<tab>_tab`."""

from __future__ import annotations

from typing import Callable

import gradio as gr

from aigc_demo.settings import ServeSettings
from aigc_demo.ui import files, model_refs, sessions, share
from aigc_demo.ui.code import build_code_tab
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.digits import build_digits_tab
from aigc_demo.ui.finetune import build_finetune_tab
from aigc_demo.ui.gallery import build_gallery_tab
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
    ("finetune", build_finetune_tab),
    ("system", build_system_tab),
]

CSS = """
.model-card { border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 12px; }
.model-card .card-error { color: var(--error-text-color); }
.metric-badge { display: inline-block; padding: 2px 8px; margin: 2px; border-radius: 999px;
                background: var(--color-accent-soft); font-size: 0.85em; }
#app-header h1 { margin-bottom: 0; }
.share-row { align-items: center; }
"""


def theme() -> gr.themes.Base:
    """A theme with system fonts only, so the page asks no font server for anything."""
    return gr.themes.Soft(
        primary_hue="indigo",
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def build_app(settings: ServeSettings | None = None) -> gr.Blocks:
    settings = settings or ServeSettings.from_env()
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
        with gr.Tabs() as tabs:
            ctx.tabs = tabs
            for tab_id, build in TABS:
                with gr.Tab(t(f"tab.{tab_id}"), id=tab_id, elem_id=f"tab-{tab_id}"):
                    build(ctx)
        demo.load(device_badge, outputs=badge, show_progress="hidden")
        sessions.attach(demo, ctx)
        share.attach(demo, ctx)  # ?tab=…&…&run=1 opens the page in a shared state
    return sessions.track_batches(files.guard(demo))
