"""Who is this visitor? A session id kept in the browser, so saved models and jobs stay theirs.

- The id lives in the browser's localStorage (gr.BrowserState, encrypted by Gradio): it survives
  a page reload (the fine-tune tab re-attaches to its job) and works inside a Space's iframe,
  where third-party cookies may be blocked. API clients without it fall back to Gradio's
  `session_hash`, which gradio_client keeps for the life of a Client.
- On each page load the page's `session_hash` is mapped to that id, so code that only sees the
  request (the gallery's render function, the model pickers) can find the visitor's models.
- `SessionDirs` is the value of `AppContext.user_dirs`: a list that, read inside an event
  handler, holds the published user-model folders plus the current visitor's own; read outside
  one (at build time) it holds only the published folders.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any, Callable, Iterator

import gradio as gr
from gradio.context import LocalContext

from aigc_demo import catalog
from aigc_demo.errors import UserError
from aigc_demo.services.jobs import get_manager
from aigc_demo.services.visitors import NO_SESSION, is_session_id, new_session_id
from aigc_demo.settings import current as current_settings
from aigc_demo.settings import operator_settings

STORAGE_KEY = "aigc-gallery-session"
_by_hash: dict[str, str] = {}
_lock = threading.Lock()
_MAX_MAPPED = 100_000


def browser_session() -> gr.BrowserState:
    """The component holding the visitor's id (create it once, inside the Blocks)."""
    return gr.BrowserState(None, storage_key=STORAGE_KEY, secret=current_settings().session_secret)


def _valid(value: Any) -> bool:
    return is_session_id(value)


def remember(session_hash: str | None, session: str) -> None:
    if not session_hash:
        return
    with _lock:
        if len(_by_hash) > _MAX_MAPPED:
            _by_hash.clear()
        _by_hash[session_hash] = session


def resolve(stored: Any, request: gr.Request | None) -> str:
    """The visitor's id: the browser's, else the one mapped to this page, else the page's own hash."""
    if _valid(stored):
        remember(getattr(request, "session_hash", None), stored)
        return stored
    session_hash = getattr(request, "session_hash", None)
    with _lock:
        mapped = _by_hash.get(session_hash or "")
    if mapped:
        return mapped
    if _valid(session_hash):
        return str(session_hash)
    raise UserError(NO_SESSION)


def current_session() -> str | None:
    """The visitor behind the event being handled now (None outside an event)."""
    return _session_of_request(LocalContext.request.get(None))


def current_address() -> str:
    """The client address behind the event being handled now ("" outside an event)."""
    return client_address(LocalContext.request.get(None))


class SessionDirs(list):
    """`AppContext.user_dirs`: published folders + the current visitor's, looked up on each read."""

    def _dirs(self) -> list[str]:
        return get_manager().user_dirs(current_session())

    @property
    def session(self) -> str | None:
        """The visitor these folders are read for (None outside an event)."""
        return current_session()

    def __iter__(self) -> Iterator[str]:
        return iter(self._dirs())

    def __len__(self) -> int:
        return len(self._dirs())

    def __bool__(self) -> bool:
        return bool(self._dirs())

    def __getitem__(self, index: Any) -> Any:
        return self._dirs()[index]

    def __contains__(self, item: object) -> bool:
        return item in self._dirs()

    def __repr__(self) -> str:
        return f"SessionDirs({self._dirs()!r})"


_batch_requests: ContextVar[list[Any] | None] = ContextVar("aigc_batch_requests", default=None)


def track_batches(demo: gr.Blocks) -> gr.Blocks:
    """Keep every request of a batched event visible to the handler (`batch_sessions`).

    Gradio hands a batch function only the first request of its batch, so a handler resolving
    `yours/<name>` would use the first visitor's session for everyone in the batch.
    """
    original = demo.call_function

    async def call_function(*args: Any, **kwargs: Any) -> Any:
        requests = kwargs.get("requests", args[3] if len(args) > 3 else None)
        token = _batch_requests.set(requests if isinstance(requests, list) else None)
        try:
            return await original(*args, **kwargs)
        finally:
            _batch_requests.reset(token)

    demo.call_function = call_function  # type: ignore[method-assign]
    return demo


def visitor_of_hash(session_hash: str | None) -> str | None:
    """The visitor id a page session was mapped to on load (None if none)."""
    if not session_hash:
        return None
    with _lock:
        return _by_hash.get(session_hash)


def _session_of_request(request: Any) -> str | None:
    session_hash = getattr(request, "session_hash", None)
    if not session_hash:
        return None
    with _lock:
        return _by_hash.get(session_hash) or (session_hash if _valid(session_hash) else None)


def batch_sessions(count: int) -> list[str | None]:
    """The visitor behind each item of the batch being handled (outside a batch: the current one)."""
    requests = _batch_requests.get()
    if requests is None:
        return [current_session()] * count
    if len(requests) != count:  # never expected: refuse visitor models rather than guess owners
        return [None] * count
    return [_session_of_request(request) for request in requests]


def on_load(stored: Any, request: gr.Request) -> str:
    """Page load: keep the browser's id (or make one) and map this page to it."""
    session = stored if _valid(stored) else new_session_id()
    remember(request.session_hash, session)
    return session


def refresh_pickers(ctx: Any) -> Callable[..., Any]:
    """A handler that recomputes every registered model picker's choices for the current visitor."""
    def handler() -> Any:
        updates = []
        for _, choices_fn in ctx.pickers:
            updates.append(gr.Dropdown(choices=choices_fn()))
        return updates if len(updates) != 1 else updates[0]
    return handler


def attach(demo: gr.Blocks, ctx: Any) -> None:
    """Wire the page load (session id, pickers) and the `models_changed` signal (after a save)."""
    load = demo.load(on_load, inputs=ctx.session, outputs=ctx.session, show_progress="hidden",
                     api_visibility="private")
    if ctx.pickers:
        outputs = [component for component, _ in ctx.pickers]
        load.then(refresh_pickers(ctx), outputs=outputs, show_progress="hidden", api_visibility="private")
        ctx.models_changed.change(refresh_pickers(ctx), outputs=outputs, show_progress="hidden",
                                  api_visibility="private")


catalog.set_visitor_resolver(current_session)  # hub ids a visitor adds are that visitor's only


def client_address(request: gr.Request | None) -> str:
    """Where a request comes from, for per-address limits. X-Forwarded-For is read only when the
    operator says a proxy sets it (AIGC_TRUST_PROXY=1): then its last entry, the address the
    proxy saw (a client can forge the entries before it, not that one)."""
    if request is None:
        return ""
    if operator_settings().trust_proxy:
        headers = getattr(request, "headers", None) or {}
        forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
        hops = [hop.strip() for hop in str(forwarded).split(",") if hop.strip()]
        if hops:
            return hops[-1][:100]
    client = getattr(request, "client", None)
    return str(getattr(client, "host", "") or "")[:100]
