"""What each page session costs the server, bounded: Gradio's per-session copies trimmed, deep
links (which dump a session's values to disk for anyone holding its session id) turned off.

Measured on this app (566 blocks): a Gradio `SessionState` built a config dict for every block
(for deep links only) at creation, 0.9 MB per session, and then kept every value a visitor sent
in it (a 1 MB prompt stayed 1 MB per text box per session). Gradio keeps up to 10,000 sessions,
and every `/call/` without a session id is a new one, so a stranger could grow the process by
gigabytes. The app shares links its own way (ui/share.py) and never reads those copies, so:
- `trim_session_state()` makes SessionState skip them (its other data is as Gradio keeps it);
- `SESSION_CAPACITY` bounds how many sessions Gradio keeps (least recently used go first);
- `DeepLinkOff` answers 404 to /gradio_api/deep_link.
"""

from __future__ import annotations

from typing import Any

SESSION_CAPACITY = 2000  # page sessions whose gr.State Gradio keeps (least recently used dropped)
DEEP_LINK_ROUTE = "/gradio_api/deep_link"


class _Discard(dict):
    """A dict that keeps nothing: Gradio writes per-block config copies here."""

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


def trim_session_state() -> bool:
    """Patch Gradio's SessionState once (True when patched; False on a Gradio without the
    attributes this relies on, which then keeps its own behaviour)."""
    from copy import copy

    from gradio import state_holder

    cls = state_holder.SessionState
    if getattr(cls, "_aigc_trimmed", False):
        return True
    if not all(hasattr(cls, name) for name in ("_update_value_in_config", "_update_config", "components")):
        return False

    def __init__(self: Any, blocks: Any) -> None:
        self.blocks_config = copy(blocks.default_config)
        self.config_values = _Discard()
        self.state_data = {}
        self._state_ttl = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 3600  # Gradio's: a closed session's state is kept an hour

    cls.__init__ = __init__
    cls._update_value_in_config = lambda self, key, value: None
    cls._update_config = lambda self, key: None
    cls._aigc_trimmed = True
    return True


def bound_sessions(demo: Any, capacity: int = SESSION_CAPACITY) -> None:
    """Keep at most `capacity` page sessions (Gradio's state_session_capacity)."""
    demo.state_session_capacity = capacity
    holder = getattr(demo, "state_holder", None)
    if holder is not None and hasattr(holder, "capacity"):
        holder.capacity = capacity


class DeepLinkOff:
    """Pure ASGI: 404 for Gradio's deep-link route, everything else passes through."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and str(scope.get("path", "")).rstrip("/").endswith(DEEP_LINK_ROUTE):
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"Not found"})
            return
        await self.app(scope, receive, send)
