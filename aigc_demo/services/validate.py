"""Checks for every value a visitor sends, at the service boundary, each with a clear message.

Why one module: an API client can send anything a JSON document holds (a list where a model id
belongs, NaN for a seed, a megabyte of text, a path to /etc/passwd), and every service must
answer it the same way: a `UserError` the page shows as is, never a crash deep in a library.
Nothing here imports gradio or torch. The check of ids (`identifier`) lives in aigc_demo/refs.py,
below hub, which checks the references it is given the same way; it is part of this module's API.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Iterable

from aigc_demo.errors import UserError
from aigc_demo.refs import MAX_ID_CHARS, MAX_JOB_ID_CHARS, has_control, identifier, shown
from aigc_demo.settings import operator_settings

__all__ = ["MAX_ID_CHARS", "MAX_JOB_ID_CHARS", "identifier", "shown", "text", "number", "integer",
           "choice", "flag", "open_image", "err_size", "limit_images"]

def text(value: Any, name: str, *, max_chars: int | None = None, allow_empty: bool = True,
         strip_controls: bool = True) -> str:
    """A text field: None is empty; other types are refused; longer than `max_chars` (default
    AIGC_MAX_TEXT_CHARS) is refused; control characters other than newlines and tabs are removed."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError(f"{name} must be text (got {type(value).__name__}: {shown(value)}).")
    limit = max_chars if max_chars is not None else operator_settings().max_text_chars
    if len(value) > limit:
        raise UserError(f"{name} is {len(value):,} characters long; this server takes at most {limit:,}.")
    if strip_controls and has_control(value, allow_newlines=True):
        value = "".join(ch for ch in value if unicodedata.category(ch) != "Cc" or ch in "\n\r\t")
    if not allow_empty and not value.strip():
        raise UserError(f"{name} is empty: type something first.")
    return value


def number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
           integer: bool = False, default: float | None = None) -> float:
    """A finite number (int or float; a numeric string is read), within [low, high].

    None takes `default` when one is given; lists, dicts and booleans are refused."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not None:
            return int(default) if integer else default
        raise UserError(f"{name} is missing: give a number.")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{name} must be a number (got {type(value).__name__}: {shown(value)}).")
    if isinstance(value, str):
        if len(value) > 64:
            raise UserError(f"{name} must be a number (got {shown(value)}).")
        try:
            value = float(value)
        except ValueError:
            raise UserError(f"{name} must be a number (got {shown(value)}).") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number (got {value}).")
    if integer:
        if value != int(value):
            raise UserError(f"{name} must be a whole number (got {value:g}).")
        value = int(value)
    if low is not None and value < low or high is not None and value > high:
        lo = "" if low is None else f"{low:g}"
        hi = "" if high is None else f"{high:g}"
        where = f"between {lo} and {hi}" if low is not None and high is not None else (
            f"at least {lo}" if low is not None else f"at most {hi}")
        raise UserError(f"{name} must be {where} (got {value:g}).")
    return value


def integer(value: Any, name: str, *, low: int | None = None, high: int | None = None,
            default: int | None = None) -> int:
    return int(number(value, name, low=low, high=high, integer=True, default=default))


def choice(value: Any, name: str, options: Iterable[str], *, default: str | None = None) -> str:
    """One of `options` (text); None takes `default` when one is given."""
    options = tuple(options)
    if value is None or value == "":
        if default is not None:
            return default
        raise UserError(f"{name} is missing: choose one of {', '.join(options)}.")
    if not isinstance(value, str) or value not in options:
        raise UserError(f"{name} must be one of {', '.join(options)} (got {shown(value)}).")
    return value


def flag(value: Any, name: str, *, default: bool = False) -> bool:
    """A checkbox: True/False (None takes `default`); 0/1 are read as False/True."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise UserError(f"{name} must be true or false (got {shown(value)}).")


def open_image(path: Any, name: str = "The image") -> Any:
    """A PIL image from an uploaded file, refusing decompression bombs and corrupt files."""
    from PIL import Image, UnidentifiedImageError

    limit_images()
    try:
        image = Image.open(path)
        image.load()
    except Image.DecompressionBombError as err:
        raise UserError(f"{name} is too large: {err_size(err)}; images of at most "
                         f"{operator_settings().max_image_pixels:,} pixels are accepted.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{name} could not be read as an image ({type(err).__name__}): upload a "
                         "PNG or JPEG file.") from None
    return image


def err_size(err: BaseException) -> str:
    """'100000 x 100000 pixels' from PIL's DecompressionBombError text when it says so."""
    found = re.search(r"\((\d+) pixels\)", str(err))
    return f"{int(found.group(1)):,} pixels" if found else "it claims more pixels than allowed"


def limit_images() -> None:
    """Make PIL refuse images far above AIGC_MAX_IMAGE_PIXELS (it warns above the limit and
    raises DecompressionBombError above twice it, before decoding a single pixel)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = operator_settings().max_image_pixels
