"""Real browser, on a laptop (1366x900) and a phone (390x844): the Compare tab draws digits from
every family side by side, streams one prompt into two columns, and a blind vote reveals the
names and fills the leaderboard; nothing is wider than the phone's screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser_tabs import open_tab

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def screen(request, browser, app_url: str):
    context = browser.new_context(viewport=request.param)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    expect(page.locator("#gallery-count")).to_be_visible()
    yield page, request.param
    context.close()


def no_overflow(page, viewport: dict) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width} px wide on a {viewport['width']} px screen"


def _tokens(page, count: int) -> None:
    page.locator("#tab-compare .label-wrap:visible", has_text="Sampling settings").click()
    box = page.locator("#compare-max-tokens input[type=number]")
    slider = page.locator("#compare-max-tokens input[type=range]")
    for _ in range(3):  # typing can be lost while the page is still settling on a loaded machine
        box.fill(str(count))
        box.press("Enter")
        box.blur()
        try:
            expect(slider).to_have_value(str(count), timeout=5_000)
            return
        except AssertionError:
            continue
    expect(slider).to_have_value(str(count))


def test_compare_digits_text_and_a_blind_vote(screen) -> None:
    page, viewport = screen
    open_tab(page, "Compare")
    page.locator("#compare-digits-which").get_by_label("5", exact=True).uncheck()
    page.locator("#compare-digits-go").click()
    for family in ("gan", "diffusion", "vae"):  # every column renders, each with its figures
        expect(page.locator(f"#compare-{family}-out img")).to_be_visible(timeout=120_000)
        expect(page.locator(f"#compare-{family}-info")).to_contain_text("ms per image")
    expect(page.locator("#compare-gan-info")).to_contain_text("FID")
    expect(page.locator("#compare-diffusion-info")).to_contain_text("FID / floor")
    expect(page.locator("#compare-vae-info")).to_contain_text(re.compile(r"draws"))
    no_overflow(page, viewport)

    page.locator("#tab-compare button[role=tab]:text-is('Text')").click()
    _tokens(page, 16)
    page.locator("#compare-prompt textarea").fill("To be")
    page.locator("#compare-text-go").click()
    for letter in "ab":  # both columns stream, each with its speed
        expect(page.locator(f"#compare-text-out-{letter} textarea")).not_to_have_value("", timeout=60_000)
        expect(page.locator(f"#compare-text-stats-{letter}")).to_contain_text(re.compile(r"[\d.]+ tokens/s"))
    expect(page.locator("#compare-text-head-a")).to_contain_text("Tiny")  # not blind: names shown
    no_overflow(page, viewport)

    page.locator("#compare-blind input").check()
    page.locator("#compare-text-go").click()
    expect(page.locator("#compare-vote-row")).to_be_visible(timeout=60_000)
    expect(page.locator("#compare-text-head-a")).not_to_contain_text("Tiny")  # blind: no names
    page.locator("#compare-vote-choice").get_by_text("A is better").click()
    page.locator("#compare-vote").click()
    expect(page.locator("#compare-voted")).to_contain_text("The models were")
    expect(page.locator("#compare-text-head-a")).to_contain_text("Tiny")  # revealed
    expect(page.locator("#compare-board-mine")).to_contain_text("Tiny")
    expect(page.locator("#compare-board-everyone")).to_contain_text("Tiny")
    expect(page.locator("#compare-vote-row")).to_be_hidden()
    no_overflow(page, viewport)


def test_a_share_link_reproduces_a_digits_comparison(browser, app_url: str) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(app_url + "?tab=compare&part=digits&digits=3,5&per_digit=1&seed=9&gan=tiny-gan"
                  "&diffusion=tiny-diffusion&vae=tiny-vae-4d&run=1")
        for family in ("gan", "diffusion", "vae"):
            expect(page.locator(f"#compare-{family}-info")).to_contain_text("ms per image", timeout=120_000)
        expect(page.locator("#compare-seed input")).to_have_value("9")
        expect(page.locator("#compare-digits-which").get_by_label("3", exact=True)).to_be_checked()
        expect(page.locator("#compare-digits-which").get_by_label("4", exact=True)).not_to_be_checked()
        expect(page.locator("#compare-gan-info")).to_contain_text("2 images")
        page.locator("#compare-digits-share").click()
        expect(page.locator("#compare-digits-share-link input, #compare-digits-share-link textarea")).to_have_value(
            re.compile(r"tab=compare&part=digits&digits=3%2C5&per_digit=1&seed=9&gan=tiny-gan"))
    finally:
        context.close()
