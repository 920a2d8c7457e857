"""Prompts for our digit models: digits and number words (English and Chinese) -> the digits to draw.

Why: the Image tab runs our own GAN and diffusion models as text-to-image when no hub pipeline can
run (offline, nothing downloaded), and what they can draw is digits. So a prompt like "2026",
"seven", "three sevens", "nineteen eighty-four", "三个七", "二零二六" or "两千零二十六" becomes the
digits it names; a prompt that names anything else is refused with a message saying what these
models can draw. The work is bounded: the prompt's length is checked before it is read, and a
number or a count naming more than MAX_DIGITS digits is refused without building it.
"""

from __future__ import annotations

import re
import unicodedata

from aigc_demo.errors import UserError

MAX_DIGITS = 40  # what one line of handwriting holds (services/digits.MAX_TEXT)
MAX_PROMPT_CHARS = 2000


UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
UNITS["oh"] = 0
TEENS = {w: 10 + i for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
PLURALS = {"zeros": 0, "zeroes": 0, "ones": 1, "twos": 2, "threes": 3, "fours": 4, "fives": 5, "sixes": 6,
           "sevens": 7, "eights": 8, "nines": 9}
FILLER = set("a an the draw write show make paint me please number numbers digit digits of in some "
             "handwritten handwriting generate picture image year big".split())
CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
CN_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_BIG = {"万": 10**4, "亿": 10**8}
CN_FILLER = sorted(["请", "帮我", "给我", "画出", "画", "写出", "写", "生成", "数字", "手写", "的", "图片",
                    "图像", "一张", "张", "和", "是", "我"], key=len, reverse=True)
_CN_RUN = "〇零一二两三四五六七八九十百千万亿"
_TOKEN = re.compile(rf"(?P<num>\d+(?:[.,]\d+)*)(?P<plural>s\b)?|(?P<word>[a-z]+)|(?P<cn>[{_CN_RUN}]+)"
                    r"|(?P<ge>个)|(?P<gap>[\s\-–—.,!?;:'\"()、，。！？；：“”‘’…]+)|(?P<other>.)")


class _Number:
    """A number the prompt names: its digits as text ('2026', '3.14')."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Plural:
    """'sevens', '7s': a digit to repeat by the number before it."""

    def __init__(self, digit: int) -> None:
        self.digit = digit


def _too_many(count: int | str) -> UserError:
    named = f"{count:,}" if isinstance(count, int) else count
    return UserError(f"Our digit models draw at most {MAX_DIGITS} digits at once (this prompt names {named}).")


def _not_digits(word: str) -> UserError:
    shown = repr(word[:30])
    return UserError("Our digit models draw only the digits 0-9: type digits or number words, e.g. "
                     f"2026, seven, three sevens, 三个七, 二零二六 ({shown} is not one).")


def _english_number(words: list[str]) -> str:
    """'two zero two six' -> '2026', 'twenty twenty-six' -> '2026', 'two thousand twenty six' -> '2026'."""
    if all(w in UNITS for w in words):
        return "".join(str(UNITS[w]) for w in words)
    chunks: list[int] = []
    total = current = 0
    last = ""
    for word in words:
        kind = "unit" if word in UNITS else "teen" if word in TEENS else "tens" if word in TENS else "scale"
        if kind != "scale" and (last in ("unit", "teen") or (last == "tens" and kind != "unit")):
            chunks.append(total + current)  # 'nineteen eighty': two numbers said one after the other
            total = current = 0
        if kind == "scale":
            if word == "hundred":
                current = (current or 1) * 100
            else:
                total += (current or 1) * SCALES[word]
                current = 0
        else:
            current += UNITS.get(word, TEENS.get(word, TENS.get(word, 0)))
        last = kind
        if total + current >= 10**MAX_DIGITS:
            raise _too_many(f"a number of over {MAX_DIGITS} digits")
    chunks.append(total + current)
    return "".join(str(c) for c in chunks)


def _chinese_number(run: str) -> str:
    """'二零二六' -> '2026' (digit by digit); '两千零二十六' -> '2026', '十' -> '10', '三万' -> '30000'."""
    if not any(c in CN_UNITS or c in CN_BIG for c in run):
        return "".join(str(CN_DIGITS[c]) for c in run)
    total = section = number = 0
    for char in run:
        if char in CN_DIGITS:
            number = CN_DIGITS[char]
        elif char in CN_UNITS:
            section += (number or 1) * CN_UNITS[char]  # '十' alone is ten
            number = 0
        else:
            total = (total + section + number or 1) * CN_BIG[char]  # '万' alone is ten thousand
            section = number = 0
        if total >= 10**MAX_DIGITS:
            raise _too_many(f"a number of over {MAX_DIGITS} digits")
    return str(total + section + number)


def _items(text: str) -> list[object]:
    """The prompt as numbers, plurals and counters (个); anything else stops with a clear message."""
    items: list[object] = []
    words: list[str] = []

    def flush() -> None:
        if words:
            items.append(_Number(_english_number(words)))
            words.clear()

    for found in _TOKEN.finditer(text):
        kind, value = found.lastgroup if found.lastgroup != "plural" else "num", found.group(0)
        if found.group("num") is not None:
            flush()
            number = found.group("num")
            items.append(_Plural(int(number)) if found.group("plural") and len(number) == 1 else _Number(number))
        elif kind == "word":
            if value in UNITS or value in TEENS or value in TENS or value in SCALES:
                words.append(value)
            elif value == "and" and words:
                continue  # 'two thousand and twenty six'
            elif value in PLURALS:
                flush()
                items.append(_Plural(PLURALS[value]))
            elif value in FILLER or value == "and":
                flush()
            else:
                raise _not_digits(value)
        elif kind == "cn":
            flush()
            items.append(_Number(_chinese_number(value)))
        elif kind == "ge":
            flush()
            items.append("个")
        elif kind == "gap":
            if value.strip(" \t\r\n-–—"):  # punctuation parts numbers; spaces and hyphens do not
                flush()
        else:
            raise _not_digits(value)
    flush()
    return items


def _count(number: _Number) -> int:
    if not number.text.isdigit():
        raise _not_digits(number.text)
    if len(number.text) > 3 or int(number.text) > MAX_DIGITS:
        raise _too_many(int(number.text) if len(number.text) <= 12 else f"a count of {len(number.text)} digits")
    return int(number.text)


def parse_digit_prompt(prompt: object) -> str:
    """The digits a prompt names, groups apart by a space: '2026', '7', '777', '7 2026';
    UserError for an empty, long or non-number prompt, or one naming over MAX_DIGITS digits."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError("Type a prompt: a few words that describe the image.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UserError(f"The prompt is {len(prompt)} characters; keep it under {MAX_PROMPT_CHARS}.")
    text = unicodedata.normalize("NFKC", prompt).lower()
    for filler in CN_FILLER:
        text = text.replace(filler, " ")
    items = _items(text)
    groups: list[str] = []
    index = 0
    while index < len(items):
        item = items[index]
        after = items[index + 1] if index + 1 < len(items) else None
        if isinstance(item, _Number) and isinstance(after, _Plural):  # 'three sevens', '3 7s'
            groups.append(str(after.digit) * _count(item))
            index += 2
        elif isinstance(item, _Number) and after == "个" and index + 2 < len(items) \
                and isinstance(items[index + 2], (_Number, _Plural)):  # '三个七', '3个7'
            target = items[index + 2]
            digits = str(target.digit) if isinstance(target, _Plural) else target.text
            times = _count(item)
            if times * len(digits) > MAX_DIGITS:
                raise _too_many(times * len(digits))
            groups.append(" ".join([digits] * times) if len(digits) > 1 else digits * times)
            index += 3
        elif isinstance(item, _Plural):
            groups.append(str(item.digit))
            index += 1
        elif isinstance(item, _Number):
            groups.append(item.text)
            index += 1
        else:
            index += 1  # a stray 个
        drawn = sum(ch.isdigit() for group in groups for ch in group)
        if drawn > MAX_DIGITS:
            raise _too_many(drawn)
    if not groups:
        raise _not_digits(prompt.strip())
    return " ".join(groups)
