"""Look up user-facing strings in the locale chosen by AIGC_LANG (English by default)."""

from __future__ import annotations

import importlib
import os
from functools import lru_cache


@lru_cache(maxsize=None)
def _table(lang: str) -> dict[str, str]:
    english = importlib.import_module("aigc_demo.ui.locales.en").STRINGS
    if lang == "en":
        return english
    try:
        local = importlib.import_module(f"aigc_demo.ui.locales.{lang}").STRINGS
    except ModuleNotFoundError:
        return english
    return {**english, **local}  # untranslated keys fall back to English


def t(key: str, **values: object) -> str:
    """The string for `key`, formatted with `values`."""
    text = _table(os.environ.get("AIGC_LANG", "en"))[key]
    return text.format(**values) if values else text
