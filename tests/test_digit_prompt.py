"""Prompts for our digit models: digits and number words in English and Chinese, and their bounds."""

from __future__ import annotations

import time

import pytest

from aigc_demo.errors import UserError
from aigc_demo.services.digit_prompt import MAX_DIGITS, parse_digit_prompt
from aigc_demo.ui.messages import localize


@pytest.mark.parametrize(("prompt", "digits"), [
    ("2026", "2026"), ("seven", "7"), ("Seven", "7"), ("a seven", "7"), ("three sevens", "777"),
    ("3 7s", "777"), ("Draw the number 2026!", "2026"), ("nineteen eighty-four", "1984"),
    ("twenty twenty-six", "2026"), ("two thousand and twenty six", "2026"), ("two zero two six", "2026"),
    ("one hundred and one", "101"), ("seven, eight", "7 8"), ("3.14159", "3.14159"), ("２０２６", "2026"),
    ("三个七", "777"), ("二零二六", "2026"), ("两千零二十六", "2026"), ("画三个七", "777"), ("3个7", "777"),
    ("十", "10"), ("二十六", "26"), ("一百零一", "101"), ("一万", "10000"), ("请写数字 2026", "2026"),
])
def test_digits_and_number_words(prompt: str, digits: str) -> None:
    assert parse_digit_prompt(prompt) == digits


@pytest.mark.parametrize("prompt", ["a cat on the moon", "一只猫", "🐱", "seven dwarfs"])
def test_a_prompt_that_names_no_digits_says_what_the_models_draw(prompt: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_digit_prompt(prompt)
    message = str(caught.value)
    assert message.startswith("Our digit models draw only the digits 0-9")
    assert "three sevens" in message and "三个七" in message
    assert "本站的数字模型只会画数字 0-9" in localize(message, "zh")


@pytest.mark.parametrize(("prompt", "named"), [
    ("9" * 100, "100"), ("100 sevens", "100"), ("999999999999999999 sevens", "a count of 18 digits"),
    ("四十一个七", "41"), ("nine " * 41, "41"),
    ("亿亿亿亿亿亿", "a number of over 40 digits"),
])
def test_too_many_digits_are_refused_before_they_are_built(prompt: str, named: str) -> None:
    started = time.perf_counter()
    with pytest.raises(UserError, match=f"at most {MAX_DIGITS} digits at once") as caught:
        parse_digit_prompt(prompt)
    assert time.perf_counter() - started < 0.05
    assert f"(this prompt names {named})." in str(caught.value)
    assert "最多画 40 个数字" in localize(str(caught.value), "zh")


def test_forty_digits_is_the_limit() -> None:
    assert parse_digit_prompt("forty sevens") == "7" * 40
    assert parse_digit_prompt("7" * 40) == "7" * 40


@pytest.mark.parametrize("prompt", ["x" * 10_000, "seven " * 2000, "七" * 10_000])
def test_a_huge_prompt_is_refused_at_once(prompt: str) -> None:
    started = time.perf_counter()
    with pytest.raises(UserError, match="keep it under 2000"):
        parse_digit_prompt(prompt)
    assert time.perf_counter() - started < 0.01


@pytest.mark.parametrize("prompt", ["", "   ", None, 42])
def test_an_empty_prompt_asks_for_one(prompt: object) -> None:
    with pytest.raises(UserError, match="Type a prompt"):
        parse_digit_prompt(prompt)
