"""Process-wide hygiene, applied before gradio or huggingface_hub is imported.

No outside network call unless the user asks for one: analytics and telemetry are off, and when
the Hub cannot be reached within a second the Hub libraries are put in offline mode, so a model
that is not cached fails at once with a clear message instead of after 30-50 s of retries.
This module and aigc_demo/settings.py are the only ones that touch os.environ: here for the
process itself (quiet defaults, HF_HUB_OFFLINE, proxy headers, child processes' environment),
there for the app's own AIGC_* settings.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Mapping

from aigc_demo.settings import switched_on

HUB_HOST = "huggingface.co"
PROBE_TIMEOUT_S = 1.0

_QUIET_DEFAULTS = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@dataclass
class HubStatus:
    """Whether the Hub answered, and whether we switched the Hub libraries to offline mode."""

    reachable: bool | None  # None: not probed (the user set HF_HUB_OFFLINE)
    offline_mode: bool
    detail: str


_status: HubStatus | None = None


def probe(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """A TCP connect to host:port, bounded in time even when DNS hangs (the one Hub probe: at
    start-up here, and before a download in hub_download.py)."""
    result: list[tuple[bool, str]] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append((True, f"{host}:{port} answered"))
        except OSError as err:
            result.append((False, f"{host}:{port} unreachable ({type(err).__name__}: {err})"))

    started = time.perf_counter()
    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        return False, f"{host}:{port} gave no answer in {time.perf_counter() - started:.1f} s"
    return result[0]


def hub_offline_setting() -> bool | None:
    """HF_HUB_OFFLINE as the process has it now (set by the user or by our start-up probe);
    None when unset."""
    value = os.environ.get("HF_HUB_OFFLINE")
    return None if value is None else switched_on(value)


def set_quiet_defaults() -> None:
    """Analytics, telemetry and progress bars off unless the user's environment says otherwise."""
    for key, value in _QUIET_DEFAULTS.items():
        os.environ.setdefault(key, value)


def child_env(overrides: Mapping[str, str] | None = None, defaults: Mapping[str, str] | None = None,
              python_path: str | None = None) -> dict[str, str]:
    """The environment for a child process: this one's, with `defaults` where unset, then
    `overrides`, and `python_path` put first on PYTHONPATH."""
    env = {**(defaults or {}), **os.environ, **(overrides or {})}
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [python_path, os.environ.get("PYTHONPATH")]))
    return env


MALLOC_ARENAS = 2  # glibc's malloc arenas per process; its default is 8 per core
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def cap_malloc_arenas() -> bool:
    """At most `MALLOC_ARENAS` malloc arenas, here (mallopt) and in every process started later
    (MALLOC_ARENA_MAX). Why: glibc gives threads arenas of their own, and the pages freed in
    each stay held; a server with dozens of request threads kept tens of MB more that way.
    Whether mallopt took it (False off glibc); a user's own MALLOC_ARENA_MAX wins."""
    os.environ.setdefault("MALLOC_ARENA_MAX", str(MALLOC_ARENAS))
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, int(os.environ["MALLOC_ARENA_MAX"])))
    except (OSError, AttributeError, ValueError):  # not glibc, or not a number
        return False


def configure_environment(probe_host: str = HUB_HOST, timeout: float = PROBE_TIMEOUT_S) -> HubStatus:
    """Set quiet defaults and decide offline mode once per process; the user's own env wins."""
    global _status
    if _status is not None:
        return _status
    set_quiet_defaults()
    cap_malloc_arenas()
    user_offline = os.environ.get("HF_HUB_OFFLINE")
    if user_offline is not None:
        _status = HubStatus(None, switched_on(user_offline), f"HF_HUB_OFFLINE={user_offline} set by the user")
        return _status
    reachable, detail = probe(probe_host, 443, timeout)
    if not reachable:
        os.environ["HF_HUB_OFFLINE"] = "1"
    _status = HubStatus(reachable, not reachable, detail)
    return _status


def distrust_proxy_headers() -> None:
    """Let no proxy header change a request's client address inside uvicorn.

    Why: uvicorn rewrites the client address from X-Forwarded-For for every connection from
    127.0.0.1, so any local client could pose as any address and dodge the per-address limits.
    The app reads that header itself, and only when the operator trusts a proxy
    (AIGC_TRUST_PROXY=1). An operator's own FORWARDED_ALLOW_IPS wins."""
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "")


def hub_status() -> HubStatus:
    """The decision made at start-up (made now if it was not yet)."""
    return _status or configure_environment()
