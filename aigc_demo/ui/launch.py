"""Launch the app with the theme, CSS and paths it needs (gradio 6: these go to launch()).

On SIGTERM (what Spaces and Docker send) or SIGINT the app stops its fine-tune jobs (each keeps
a checkpoint and what it learned), ends their processes and closes the server, within
`SHUTDOWN_BUDGET_S`; a second signal during that ends everything at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from aigc_demo import engines
from aigc_demo.environment import distrust_proxy_headers
from aigc_demo.services import jobs, text_server
from aigc_demo.services.jobs import get_manager
from aigc_demo.services.imagegen import output_dir
from aigc_demo.services.storage import Sweeper
from aigc_demo.services.validate import limit_images
from aigc_demo.settings import ServeSettings, install_serve
from aigc_demo.ui import i18n
from aigc_demo.ui.api_names import readable_api
from aigc_demo.ui.files import upload_middleware
from aigc_demo.ui.opengraph import OpenGraphMiddleware
from aigc_demo.ui.session_memory import DeepLinkOff, bound_sessions, trim_session_state
from aigc_demo.ui.share import link_card
from aigc_demo.ui.shell import CSS, build_app, theme

SHUTDOWN_BUDGET_S = 6.0  # for the jobs to save and end
HARD_EXIT_S = 9.0  # after the signal, the process ends whatever is still running
log = logging.getLogger("aigc_demo.launch")


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
        mcp_server=settings.mcp,  # streamable HTTP at /gradio_api/mcp/ (ui/mcp_tools.py)
        i18n=i18n.i18n(),  # labels in the browser's language (ui/i18n.py); build the app first
        js=i18n.LOCALE_JS,
        app_kwargs={"middleware": [Middleware(OpenGraphMiddleware, card_for=link_card,
                                              first_in_head=i18n.EARLY_LOCALE_TAG),
                                   upload_middleware(),  # uploads know their address (ui/uploads.py)
                                   Middleware(DeepLinkOff)]},  # ui/session_memory.py
    )


def create(settings: ServeSettings) -> gr.Blocks:
    """Build the app for `settings`; they become the process's (settings.install_serve), so every
    later model load uses their device and every service their folders."""
    install_serve(settings)
    distrust_proxy_headers()  # per-address limits: X-Forwarded-For only with AIGC_TRUST_PROXY=1
    engines.configure(settings)  # remote inference servers join the catalog
    limit_images()  # every image the app opens, gradio's uploads included, is size-checked
    start_sweeper(settings)
    trim_session_state()  # no per-session config copies (ui/session_memory.py)
    demo = build_app(settings)
    i18n.finish(demo)
    bound_sessions(demo)
    readable_api(demo)  # English names in view_api and the MCP schema, not translation keys
    demo.queue(default_concurrency_limit=4)
    calm_queue(demo)
    return demo


# Two costs Gradio's queue puts on every visitor, tuned down here (measured on this 2-core machine):
# - it polls for new events every 1 ms and for progress every 10 ms, even when idle: 11% of a core
#   with nobody connected, and 1,000 wake-ups a second that take the interpreter lock from the
#   decoding thread while visitors stream; 3.6% of a core after this change, and an event waits at
#   most QUEUE_POLL_S more to start;
# - after every event it rebuilds an analytics summary (a pandas DataFrame of the last 10,000
#   events, grouped, with percentiles): 7 ms per event at 200 events recorded, 20 ms at 10,000, on
#   a public server that never restarts. Here it is rebuilt every ANALYTICS_EVERY events, over at
#   most ANALYTICS_KEPT.
QUEUE_POLL_S = 0.005
PROGRESS_POLL_S = 0.05
ANALYTICS_EVERY = 200
ANALYTICS_KEPT = 2000


def calm_queue(demo: gr.Blocks) -> None:
    """Apply the settings above to the app's queue; attributes a gradio version lacks are left alone."""
    queue = getattr(demo, "_queue", None)
    if queue is None:
        return
    raise_to = {"sleep_when_free": QUEUE_POLL_S, "progress_update_sleep_when_free": PROGRESS_POLL_S,
                "ANAYLTICS_CACHE_FREQUENCY": ANALYTICS_EVERY}  # sic: gradio's own spelling
    for name, value in raise_to.items():
        if isinstance(getattr(queue, name, None), (int, float)):
            setattr(queue, name, max(getattr(queue, name), value))
    if isinstance(getattr(queue, "ANALYTICS_MAX_EVENTS", None), int):
        queue.ANALYTICS_MAX_EVENTS = min(queue.ANALYTICS_MAX_EVENTS, ANALYTICS_KEPT)


def stop_jobs(timeout: float = SHUTDOWN_BUDGET_S) -> None:
    """Stop every fine-tune job (checkpoint kept) and end its process; end the text models'
    processes (each exits as soon as its streams end; at the latest when this process ends)."""
    text_server.close_all()
    manager = jobs.current_manager()
    if manager is None:
        return
    started = time.monotonic()
    counts = manager.shutdown(timeout)
    print(f"Stopped fine-tune jobs in {time.monotonic() - started:.1f} s: {counts}", file=sys.stderr, flush=True)


def _hard_exit_after(seconds: float, code: int) -> None:
    """A last resort: end the process after `seconds` whatever is still running (a connection
    that never closes must not keep a stopped app alive)."""
    def later() -> None:
        time.sleep(seconds)
        print(f"Shutdown took over {seconds:g} s: exiting now.", file=sys.stderr, flush=True)
        os._exit(code)

    threading.Thread(target=later, name="hard-exit", daemon=True).start()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    """First signal: stop the jobs, then leave launch()'s wait (gradio closes the server on
    KeyboardInterrupt); a second one while shutting down: end the jobs and the process now."""
    if _shutdown["demo"] is None or _shutdown["started"]:
        manager = jobs.current_manager()
        if manager is not None:
            manager.shutdown(timeout=0.0)
        os._exit(128 + signum)
    _shutdown["started"] = True
    print(f"Received {signal.Signals(signum).name}: stopping jobs and closing the server.",
          file=sys.stderr, flush=True)
    _hard_exit_after(HARD_EXIT_S, 0)
    stop_jobs()
    server = getattr(_shutdown["demo"], "server", None)
    if server is not None:
        server.force_exit = True  # uvicorn: do not wait for open connections (browsers keep some)
    raise KeyboardInterrupt


_shutdown: dict[str, Any] = {"demo": None, "started": False}


def install_signal_handlers(demo: gr.Blocks) -> None:
    _shutdown["demo"] = demo
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_signal)


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


START_CHECK_S = 60.0  # how long launch() waits for its own first page before giving up


def patient_start_check() -> None:
    """gradio's launch() asks its own first page 5 times within ~3 s and closes the server when
    none answers; on a loaded machine (2 cores under a training run) the page takes longer, and
    the app exited right after start. The same check, patient for `START_CHECK_S`."""
    import httpx
    from gradio import networking

    def url_ok(url: str) -> bool:
        deadline = time.monotonic() + START_CHECK_S
        while time.monotonic() < deadline:
            try:
                if httpx.head(url, timeout=10, verify=False).status_code in (200, 401, 301, 302, 303, 307, 308):
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return False

    networking.url_ok = url_ok


def serve(settings: ServeSettings) -> None:
    patient_start_check()
    demo: Any = create(settings)
    install_signal_handlers(demo)
    text_server.warm_up()  # text models decode in processes forked from it (services/text_server.py)
    try:
        demo.launch(**launch_kwargs(settings))
    except KeyboardInterrupt:
        pass  # a signal during start-up
    finally:
        if not _shutdown["started"]:
            _shutdown["started"] = True
            _hard_exit_after(HARD_EXIT_S, 0)
            stop_jobs()
        demo.close()
        # Skip the interpreter's teardown (seconds with torch loaded): everything is saved.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
