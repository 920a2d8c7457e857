"""User-facing strings in the visitor's language (English and Chinese), from ui/locales/<lang>.py.

`t(key, **values)` is the one call the tabs make. What it returns depends on when it is called:
- inside an event handler (a request is being answered): the text in *that visitor's* language
  (`?lang=` of the page, else the browser's Accept-Language), so status lines, notices and
  re-rendered parts follow the visitor;
- while the page is being built (inside `gr.Blocks`, no request): a gr.I18n marker for a key
  registered in every language, so the browser translates labels itself (ui/i18n.py finishes
  this before launch);
- anywhere else (unit tests, scripts): the text in the default language (AIGC_LANG, else en).
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import json
import re
import string
from functools import lru_cache
from typing import Any

from aigc_demo.settings import current as current_settings

LANGS = ("en", "zh")
MARK = "__i18n__"
MARKER = re.compile(r'__i18n__\{"__type__": "translation_metadata", "key": "([A-Za-z0-9_]+)"\}')
_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("aigc_lang", default=None)
_registry: dict[str, dict[str, str]] = {}  # marker key -> {lang: text}, collected while building


@lru_cache(maxsize=None)
def table(lang: str) -> dict[str, str]:
    """The string table of `lang`; keys it lacks fall back to English."""
    english = importlib.import_module("aigc_demo.ui.locales.en").STRINGS
    if lang == "en":
        return english
    try:
        local = importlib.import_module(f"aigc_demo.ui.locales.{lang}").STRINGS
    except ModuleNotFoundError:
        return english
    return {**english, **local}


def default_lang() -> str:
    lang = normalize_lang(current_settings().lang)
    return lang or "en"


def normalize_lang(raw: Any) -> str | None:
    """'zh', 'zh-CN', 'zh_TW', 'ZH-hans' -> 'zh'; 'en', 'en-GB' -> 'en'; anything else -> None."""
    if not isinstance(raw, str) or len(raw) > 35:
        return None
    base = raw.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGS else None


def lang_from_accept(header: str | None) -> str | None:
    """The first supported language of an Accept-Language header, by q weight."""
    ranked = []
    for index, part in enumerate((header or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, index, tag))
    for _, _, tag in sorted(ranked):
        lang = normalize_lang(tag)
        if lang:
            return lang
    return None


def request_lang(request: Any) -> str:
    """A request's language: `?lang=` of the page, else Accept-Language, else the default."""
    if request is None:
        return default_lang()
    try:
        query = dict(getattr(request, "query_params", {}) or {})
        headers = dict(getattr(request, "headers", {}) or {})
    except Exception:  # a request without these (e.g. a bare test double)
        return default_lang()
    lowered = {str(k).lower(): v for k, v in headers.items()}
    return (normalize_lang(query.get("lang")) or lang_from_accept(lowered.get("accept-language"))
            or default_lang())


def _current_request() -> Any:
    try:
        from gradio.context import LocalContext
    except ImportError:  # pragma: no cover - gradio is always there for the UI
        return None
    return LocalContext.request.get(None)


def _building() -> bool:
    from gradio.context import Context

    return Context.root_block is not None


def current_lang() -> str:
    """The language to answer in now: a forced one (`in_lang`), the visitor's, or the default."""
    forced = _forced.get()
    if forced:
        return forced
    request = _current_request()
    return request_lang(request) if request is not None else default_lang()


class in_lang:
    """`with in_lang("zh"): ...` makes t() answer in that language (tests, link previews)."""

    def __init__(self, lang: str) -> None:
        self.lang = normalize_lang(lang) or "en"
        self._token: contextvars.Token | None = None

    def __enter__(self) -> "in_lang":
        self._token = _forced.set(self.lang)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _forced.reset(self._token)


def text(key: str, lang: str, **values: object) -> str:
    """The string for `key` in `lang`, formatted with `values`."""
    template = table(lang)[key]
    return template.format(**values) if values else template


def marker(per_lang: dict[str, str]) -> str:
    """A gr.I18n marker for a text given in every language (registered for the page's I18n)."""
    digest = hashlib.sha1(json.dumps(per_lang, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    key = f"aigc_{digest[:16]}"
    _registry[key] = per_lang
    return MARK + json.dumps({"__type__": "translation_metadata", "key": key})


def registry() -> dict[str, dict[str, str]]:
    """Every marker key made so far, with its text per language."""
    return _registry


def t(key: str, **values: object) -> str:
    """The string for `key`, formatted with `values` (see the module docstring for the language)."""
    if _forced.get() is None and _current_request() is None and _building():
        return marker({lang: text(key, lang, **values) for lang in LANGS})
    return text(key, current_lang(), **values)


def placeholders(template: str) -> set[str]:
    """The names a template formats (for the parity test): '{count} of {total:.1f}' -> {count, total}."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template)
            if name is not None}
