"""Model references as text (a hub id, a folder, a job id): the first check every one passes.

Why below services: hub.resolve checks the references it is given (from the CLI and training as
well as from the page) the same way services/validate.py checks what visitors send, so the check
lives where both can import it.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any

from aigc_demo.errors import UserError

MAX_ID_CHARS = 255  # a model id or a folder name: longer is never valid (file systems refuse it)
MAX_JOB_ID_CHARS = 64
_SHOWN = 60  # characters of a bad value repeated in a message


def shown(value: Any) -> str:
    """A bad value as a short, printable excerpt for a message."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"... ({len(text):,} characters)"


def has_control(text: str, allow_newlines: bool) -> bool:
    allowed = "\n\r\t" if allow_newlines else ""
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text)


def identifier(value: Any, name: str = "The model", *, max_chars: int = MAX_ID_CHARS,
               required: bool = True) -> str:
    """A model id / folder reference / job id: one line of text, not a list or a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise UserError(f"{name} is missing: pick one from the list first.")
        return ""
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # a one-item list from a multi-select widget: its item
    if isinstance(value, os.PathLike):  # a folder given by code (CLI, tests), not by a visitor
        value = os.fspath(value)
    if not isinstance(value, str):
        raise UserError(f"{name} must be an id from the list (text), not {type(value).__name__} "
                        f"({shown(value)}).")
    value = value.strip()
    if len(value) > max_chars:
        raise UserError(f"{name} id is {len(value):,} characters long; ids are at most {max_chars}: "
                        "pick one from the list.")
    if has_control(value, allow_newlines=False) or "\n" in value:
        raise UserError(f"{name} id contains control characters: pick one from the list.")
    return value
