"""Launch the app with the theme, CSS and paths it needs (gradio 6: these go to launch())."""

from __future__ import annotations

import os

import gradio as gr

from aigc_demo import engines
from aigc_demo.services.finetune import get_manager
from aigc_demo.services.imagegen import output_dir
from aigc_demo.services.storage import Sweeper
from aigc_demo.settings import ServeSettings
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
    )


def create(settings: ServeSettings) -> gr.Blocks:
    """Build the app for `settings`; the device wish is recorded for every later model load."""
    os.environ["AIGC_DEVICE"] = settings.device
    engines.configure(settings)  # remote inference servers join the catalog
    start_sweeper(settings)
    demo = build_app(settings)
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
