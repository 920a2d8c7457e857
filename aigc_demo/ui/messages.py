"""Service messages in the visitor's language.

Services (below ui/) know nothing of languages: they raise UserErrors and return notices in
plain English. Each such message has a template among the `msg.*` keys of the string table; this
module matches a message against the English templates, takes out the parts that vary, and
writes them into the visitor's language. A message with no template is shown as it is.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

from aigc_demo.ui.strings import current_lang, table


@lru_cache(maxsize=None)
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    """(key, regex) for every msg.* template; longer literal text first so specific ones win."""
    found = []
    for key, template in table("en").items():
        if not key.startswith("msg.") or key.startswith("msg.word."):
            continue
        parts, names, literal = [], set(), 0
        for text, name, _spec, _conv in string.Formatter().parse(template):
            parts.append(re.escape(text))
            literal += len(text)
            if name is not None:
                # a name seen twice (same value twice) still gets its own group
                group = name if name not in names else f"{name}__{len(names)}"
                names.add(name)
                parts.append(f"(?P<{group}>.+?)")
        found.append((literal, key, re.compile("".join(parts), re.S)))
    found.sort(key=lambda item: -item[0])
    return [(key, pattern) for _, key, pattern in found]


def match(message: str) -> tuple[str, dict[str, str]] | None:
    """The msg.* key and the varying parts of an English service message, if it has a template."""
    for key, pattern in _patterns():
        found = pattern.fullmatch(message)
        if found:
            return key, {k: v for k, v in found.groupdict().items() if "__" not in k}
    return None


def localize(message: str, lang: str | None = None) -> str:
    """`message` in `lang` (default: the visitor's), or unchanged when there is no template."""
    lang = lang or current_lang()
    if lang == "en" or not message:
        return message
    found = match(message.strip())
    if found is None:
        return message
    key, values = found
    words = table(lang)
    values = {name: words.get(f"msg.word.{value.strip().lower()}", value) for name, value in values.items()}
    template = words[key]
    try:
        return string.Formatter().vformat(_plain(template), (), values)
    except (KeyError, IndexError, ValueError):
        return message


def _plain(template: str) -> str:
    """Drop format specs ({x:.2f} -> {x}): the values arrive as text, already formatted."""
    return re.sub(r"\{(\w+)(?:![rsa])?(?::[^{}]*)?\}", r"{\1}", template)
