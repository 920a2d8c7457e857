"""Launch the app with the theme, CSS and paths it needs (gradio 6: these go to launch())."""

from __future__ import annotations

import os

import gradio as gr
from starlette.middleware import Middleware

from aigc_demo.settings import ServeSettings
from aigc_demo.ui import i18n
from aigc_demo.ui.opengraph import OpenGraphMiddleware
from aigc_demo.ui.share import link_card
from aigc_demo.ui.shell import CSS, build_app, theme


def launch_kwargs(settings: ServeSettings) -> dict:
    from aigc_demo.services.finetune import get_manager

    user_models = get_manager().config.user_models_dir  # saved models' sample images in the gallery
    return dict(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        theme=theme(),
        css=CSS,
        allowed_paths=[settings.weights_dir, user_models],
        footer_links=["api", "settings"],
        i18n=i18n.i18n(),  # labels in the browser's language (ui/i18n.py); build the app first
        js=i18n.LOCALE_JS,
        app_kwargs={"middleware": [Middleware(OpenGraphMiddleware, card_for=link_card)]},
    )


def create(settings: ServeSettings) -> gr.Blocks:
    """Build the app for `settings`; the device wish is recorded for every later model load."""
    os.environ["AIGC_DEVICE"] = settings.device
    demo = build_app(settings)
    i18n.finish(demo)
    demo.queue(default_concurrency_limit=4)
    return demo


def serve(settings: ServeSettings) -> None:
    create(settings).launch(**launch_kwargs(settings))
