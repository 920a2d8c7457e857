"""Launch the app with the theme, CSS and paths it needs (gradio 6: these go to launch())."""

from __future__ import annotations

import os

import gradio as gr
from starlette.middleware import Middleware

from aigc_demo.services.finetune import get_manager
from aigc_demo.services.imagegen import output_dir
from aigc_demo.services.storage import Sweeper
from aigc_demo.settings import ServeSettings
from aigc_demo.ui import i18n
from aigc_demo.ui.opengraph import OpenGraphMiddleware
from aigc_demo.ui.share import link_card
from aigc_demo.ui.shell import CSS, build_app, theme


def launch_kwargs(settings: ServeSettings) -> dict:
    """Only the shipped weights are served by path; a visitor's files go out as copies in
    Gradio's cache, handed to that visitor only (ui/files.py)."""
    return dict(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        theme=theme(),
        css=CSS,
        allowed_paths=[settings.weights_dir],
        footer_links=["api", "settings"],
        i18n=i18n.i18n(),  # labels in the browser's language (ui/i18n.py); build the app first
        js=i18n.LOCALE_JS,
        app_kwargs={"middleware": [Middleware(OpenGraphMiddleware, card_for=link_card)]},
    )


def create(settings: ServeSettings) -> gr.Blocks:
    """Build the app for `settings`; the device wish is recorded for every later model load."""
    os.environ["AIGC_DEVICE"] = settings.device
    start_sweeper(settings)
    demo = build_app(settings)
    i18n.finish(demo)
    demo.queue(default_concurrency_limit=4)
    return demo


_sweeper: Sweeper | None = None


def start_sweeper(settings: ServeSettings) -> Sweeper:
    """Apply the public-server settings to the job manager and start deleting what expires."""
    global _sweeper
    manager = get_manager()
    manager.config.public = settings.public
    if _sweeper is not None:
        _sweeper.stop()
    _sweeper = Sweeper(lambda: manager.sweep(extra_dirs=[output_dir()]), settings.public.sweep_interval_s)
    return _sweeper.start()


def serve(settings: ServeSettings) -> None:
    create(settings).launch(**launch_kwargs(settings))
