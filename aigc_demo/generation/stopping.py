"""Stop rules read on the decoded text: stop sequences and the end of a Python function.

Why on text, not tokens: a stop sequence may span token boundaries (or sit inside one token), and
the end of a function is a property of lines; local models and remote engines share these rules.
"""

from __future__ import annotations

import re

from aigc_demo.generation.settings import GenerationSettings

_DEF_START = re.compile(r"(async\s+def|def|class)\b|@")
_CLOSERS = (")", "]", "}")


def function_end(prompt: str, generated: str) -> int | None:
    """Where in `generated` the current top-level def/class ends: at the first new top-level line
    (column 0, not a closing bracket) after the body has started. None while still inside."""
    full, offset = prompt + generated, len(prompt)
    in_def = body_seen = False
    pos = 0
    for line in full.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        if not line.strip():
            continue
        if line[0].isspace():
            body_seen = body_seen or in_def
            continue
        if line.startswith(_CLOSERS):
            continue
        if body_seen and start >= offset:
            return start - offset
        in_def = bool(_DEF_START.match(line))
        body_seen = False
    return None


def find_stop(prompt: str, generated: str, settings: GenerationSettings) -> tuple[int, str] | None:
    """The earliest cut point in `generated` and why, or None."""
    best: tuple[int, str] | None = None
    for seq in settings.stop_sequences:
        idx = generated.find(seq)
        if idx >= 0 and (best is None or idx < best[0]):
            best = (idx, "stop_sequence")
    if settings.stop_at_function_end:
        idx = function_end(prompt, generated)
        if idx is not None and (best is None or idx < best[0]):
            best = (idx, "function_end")
    return best


def cut_at(text: str, cut: tuple[int, str]) -> str:
    """`text` cut where a stop rule fired; a function ends with exactly one newline."""
    index, reason = cut
    text = text[:index]
    return text.rstrip("\n") + "\n" if reason == "function_end" else text
