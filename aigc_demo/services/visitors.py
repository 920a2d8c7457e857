"""Who a visitor is on disk: a session id safe to use as a folder name.

Jobs, drawings and saved models live under one folder per session; this is the one place that
says what such an id looks like, so the UI (which keeps the id in the browser) and the services
(which turn it into paths) agree.
"""

from __future__ import annotations

import re
import secrets

from aigc_demo.errors import UserError

_SESSION = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
NO_SESSION = "This page has no session yet: reload the page and try again."


def is_session_id(value: object) -> bool:
    """True when `value` is a session id this server could have made (safe in a path)."""
    return isinstance(value, str) and bool(_SESSION.match(value))


def check_session(session: str | None) -> str:
    """A session id safe to use in a path; UserError otherwise."""
    if not is_session_id(session):
        raise UserError(NO_SESSION)
    return str(session)


def new_session_id() -> str:
    return secrets.token_urlsafe(18)
