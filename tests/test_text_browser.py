"""Real browser: text streams into the Text tab, code into the Code tab's editor; Stop works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
SHIPPED_GPT = Path(__file__).resolve().parent.parent / "weights" / "gpt-shakespeare"


def _settings(page, prefix: str, tokens: int) -> None:
    page.locator(".label-wrap:visible", has_text="Sampling settings").click()
    box = page.locator(f"#{prefix}-max-tokens input[type=number]")
    slider = page.locator(f"#{prefix}-max-tokens input[type=range]")
    for _ in range(3):  # typing can be lost while the page is still settling on a loaded machine
        box.fill(str(tokens))
        box.press("Enter")
        box.blur()
        try:  # the slider has taken the value: only then does Generate send it
            expect(slider).to_have_value(str(tokens), timeout=5_000)
            return
        except AssertionError:
            continue
    expect(slider).to_have_value(str(tokens))


def choose_model(page, prefix: str, title: str) -> None:
    page.locator(f"#{prefix}-model input").click()
    page.get_by_role("option", name=title, exact=True).click()
    expect(page.locator(f"#{prefix}-model input")).to_have_value(title)


def test_text_streams_and_reports_speed(page) -> None:
    page.get_by_role("tab", name="Text").click()
    choose_model(page, "text", "Tiny GPT")
    page.locator("#text-prompt textarea").fill("def add(a, b):\n")
    page.locator("#text-generate").click()
    output = page.locator("#text-output textarea")
    expect(output).not_to_have_value("", timeout=30_000)
    expect(page.locator("#text-stats")).to_contain_text(re.compile(r"\d+ tokens · [\d.]+ tokens/s"))
    expect(page.locator("#text-stats")).to_contain_text("first token after")


@pytest.fixture
def slow_model(weights_dir: Path):
    """The shipped 10M-parameter GPT, listed in the test app's weights folder for one test (a
    typed server path is refused: pickers take only listed ids)."""
    link = weights_dir / "slow-gpt"
    link.symlink_to(SHIPPED_GPT, target_is_directory=True)
    yield link.name
    link.unlink()


def test_stop_ends_a_long_stream(page, slow_model: str) -> None:
    """A shipped 10M-parameter model, typed in by its id, writes slowly enough on a CPU that Stop
    lands mid-stream however loaded the machine is (the tiny test models are too fast)."""
    page.get_by_role("tab", name="Text").click()
    model = page.locator("#text-model input")
    model.fill(slow_model)
    model.press("Enter")
    expect(page.locator("#text-generate")).to_be_enabled()  # a listed id: ready to run
    _settings(page, "text", 1024)
    page.locator("#text-prompt textarea").fill("ROMEO:\n")
    page.locator("#text-generate").click()
    expect(page.locator("#text-output textarea")).not_to_have_value("", timeout=60_000)
    page.locator("#text-stop").click()
    stats = page.locator("#text-stats")
    expect(stats).to_contain_text("stopped by you", timeout=60_000)
    assert int(stats.inner_text().split(" tokens")[0]) < 1024


def test_code_completes_in_the_editor_with_a_parse_badge(page) -> None:
    page.get_by_role("tab", name="Code").click()
    editor = page.locator("#code-editor .cm-content")
    expect(editor).to_contain_text("fibonacci")
    page.locator("#code-generate").click()
    expect(page.locator("#code-badge")).to_contain_text(re.compile("Parses|Does not parse"), timeout=60_000)
    badge = page.locator("#code-badge .parse-badge")
    expect(badge).to_contain_text(re.compile("^[✓✗] "))  # plain glyphs, styled: no emoji font needed
    assert badge.evaluate("e => getComputedStyle(e).borderRadius") != "0px"
    expect(page.locator("#code-stats")).to_contain_text("tokens/s")
    assert "fibonacci" in editor.inner_text()


def test_instruct_models_open_as_a_chat(page) -> None:
    page.get_by_role("tab", name="Text").click()
    choose_model(page, "text", "Tiny chat GPT")
    expect(page.locator("#text-prompt")).to_be_hidden()
    page.locator("#text-message textarea").fill("hello there")
    page.locator("#text-send").click()
    expect(page.locator("#text-chat")).to_contain_text("hello there")
    expect(page.locator("#text-chat-stats")).to_contain_text("tokens/s", timeout=30_000)
    choose_model(page, "text", "Tiny GPT")
    expect(page.locator("#text-prompt")).to_be_visible()
