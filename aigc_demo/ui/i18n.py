"""The page in the visitor's language: gr.I18n for what the browser translates itself.

While the page is built, `t()` leaves gr.I18n markers in labels, help texts, buttons and
Markdown. Gradio's frontend translates one marker per string, so `finish(demo)` folds every string
holding several markers (a heading plus a paragraph) or text around a marker into one marker of
its own, and returns the gr.I18n with every language. The browser then picks Chinese for zh-*
locales; `EARLY_LOCALE_JS` applies `?lang=zh|en` before Gradio starts (and maps any zh-* to our
Chinese), `LOCALE_JS` again once mounted (for a page served without the early script).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.ui.strings import LANGS, MARK, MARKER, marker, registry

# The locales Gradio's frontend knows for Chinese; ours is written in simplified Chinese.
FRONTEND_LOCALES = {"en": ("en",), "zh": ("zh-CN", "zh-TW", "zh")}
_PROPS = ("label", "info", "placeholder", "value", "title", "description")

# Runs once the app is mounted: `?lang=` overrides the browser, and any zh-* browser gets zh-CN
# (Gradio only matches zh-CN / zh-TW exactly). The frontend's own changeLocale is imported from
# the module the page already loaded, so no second copy of Gradio runs.
LOCALE_JS = """
() => {
  const params = new URLSearchParams(window.location.search);
  const asked = (params.get('lang') || '').toLowerCase();
  const browser = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  let want = null;
  if (asked.startsWith('zh')) want = 'zh-CN';
  else if (asked.startsWith('en')) want = 'en';
  else if (browser.toLowerCase().startsWith('zh') && !['zh-CN', 'zh-TW'].includes(browser)) want = 'zh-CN';
  document.documentElement.lang = want || browser;
  if (!want) return;
  const core = performance.getEntriesByType('resource').map(e => e.name)
    .find(n => /\\/assets\\/core-[^/]+\\.js(\\?.*)?$/.test(n));
  if (core) import(core).then(m => m.changeLocale && m.changeLocale(want)).catch(() => {});
}
"""


# Runs first in the page's <head>, before Gradio's frontend starts (ui/opengraph.py puts it there):
# Gradio picks its locale once, from navigator.language, and translates the tab strip and every
# component with it; a locale changed after mount (LOCALE_JS) reaches only part of the page. So
# `?lang=zh|en` (and any zh-* browser, which Gradio matches only as zh-CN / zh-TW) is applied by
# making navigator.language say it before Gradio reads it: the whole page, every tab, as a
# browser set to that language gets it.
EARLY_LOCALE_JS = """
(function () {
  var asked = (new URLSearchParams(window.location.search).get('lang') || '').toLowerCase();
  var browser = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  var want = null;
  if (asked.indexOf('zh') === 0) want = 'zh-CN';
  else if (asked.indexOf('en') === 0) want = 'en';
  else if (browser.toLowerCase().indexOf('zh') === 0 && browser !== 'zh-CN' && browser !== 'zh-TW') want = 'zh-CN';
  if (!want) return;
  try {
    Object.defineProperty(navigator, 'language', {get: function () { return want; }, configurable: true});
    Object.defineProperty(navigator, 'languages', {get: function () { return [want]; }, configurable: true});
  } catch (e) {}
  document.documentElement.lang = want;
})();
"""
EARLY_LOCALE_TAG = ("<script>" + EARLY_LOCALE_JS + "</script>").encode()


def resolve(value: str, lang: str) -> str:
    """A string with markers, in `lang` (markers replaced by their text)."""
    texts = registry()
    return MARKER.sub(lambda m: texts.get(m.group(1), {}).get(lang, m.group(0)), value)


def fold(value: str) -> str:
    """One marker for the whole string when it holds more than a single bare marker."""
    if MARK not in value or MARKER.fullmatch(value):
        return value
    return marker({lang: resolve(value, lang) for lang in LANGS})


def _fold_choices(choices: Any) -> Any:
    if not isinstance(choices, list):
        return choices
    folded = []
    for choice in choices:
        if isinstance(choice, tuple) and choice and isinstance(choice[0], str):
            folded.append((fold(choice[0]), *choice[1:]))
        else:
            folded.append(choice)
    return folded


def finish(demo: gr.Blocks) -> gr.I18n:
    """Fold composite strings into single markers; the gr.I18n holding every language."""
    for block in demo.blocks.values():
        for prop in _PROPS:
            value = getattr(block, prop, None)
            if isinstance(value, str) and MARK in value:
                setattr(block, prop, fold(value))
        if hasattr(block, "choices"):
            block.choices = _fold_choices(block.choices)
        headers = getattr(block, "headers", None)
        if isinstance(headers, list):
            block.headers = [resolve(h, "en") if isinstance(h, str) else h for h in headers]
    if isinstance(demo.title, str):
        demo.title = resolve(demo.title, "en")
    return i18n()


def i18n() -> gr.I18n:
    """Every registered text, per frontend locale."""
    texts = registry()
    tables: dict[str, dict[str, str]] = {}
    for lang, locales in FRONTEND_LOCALES.items():
        table = {key: _icu_escape(per_lang.get(lang) or per_lang["en"]) for key, per_lang in texts.items()}
        for locale in locales:
            tables[locale] = table
    return gr.I18n(**tables)


def _icu_escape(text: str) -> str:
    """Gradio's frontend formats translations as ICU messages: quote braces and apostrophes."""
    return text
