"""Real browser, as a newcomer sees the page on a laptop (1366x900) and a phone (390x844): a
compact header, every tab reachable, short leads, folded cards on the phone, one row of run
buttons, and hub models that say up front that they are not downloaded."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from aigc_demo.ui.strings import t

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
TABS = ["gallery", "digits", "text", "code", "image", "finetune", "system"]
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


@pytest.fixture
def open_app(browser, app_url: str):
    contexts = []

    def opener(viewport: dict):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(app_url)
        expect(page.locator("#gallery-count")).to_be_visible(timeout=60_000)
        return page

    yield opener
    for context in contexts:
        context.close()


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found, f"{locator} has no box (not visible)"
    return found


def test_phone_header_tabs_and_folded_cards(open_app) -> None:
    page = open_app(PHONE)
    header = box(page.locator("#app-header"))
    print(f"\nphone: header {header['height']:.0f} px of {PHONE['height']}")
    assert header["height"] <= PHONE["height"] / 4

    for tab in TABS:  # every top-level tab is a visible button inside the screen, no "..." menu
        button = page.get_by_role("tab", name=t(f"tab.{tab}"), exact=True)
        expect(button).to_be_visible()
        assert box(button)["x"] + box(button)["width"] <= PHONE["width"]
    expect(page.locator("#app-tabs .overflow-menu")).to_have_count(0)

    cards = page.locator("#gallery-cards .model-card")
    assert cards.count() >= 8
    expect(page.locator("#gallery-cards details.model-card[open]")).to_have_count(0)  # folded
    heights = [box(cards.nth(i))["height"] for i in range(cards.count())]
    page_height = page.evaluate("document.documentElement.scrollHeight")
    print(f"phone: {len(heights)} folded cards, tallest {max(heights):.0f} px; gallery page {page_height} px")
    assert max(heights) <= 170
    assert page_height <= 600 + 180 * len(heights)
    tiny_gan = cards.filter(has_text="Tiny GAN")
    tiny_gan.locator("summary .card-title").click()  # unfolds
    expect(tiny_gan.locator(".card-metrics")).to_contain_text("FID")

    page.get_by_role("tab", name=t("tab.digits"), exact=True).click()
    for key in ("digits.grid", "digits.write", "digits.walk", "digits.draw", "digits.map"):
        sub = page.get_by_role("tab", name=t(key), exact=True)
        expect(sub).to_be_visible()
        assert box(sub)["x"] + box(sub)["width"] <= PHONE["width"]


@VIEWPORTS
def test_run_buttons_share_one_row(open_app, viewport: dict) -> None:
    page = open_app(viewport)
    for tab, ids in (("text", ["text-generate", "text-stop", "text-regenerate", "text-clear"]),
                     ("code", ["code-generate", "code-stop", "code-regenerate", "code-clear"])):
        page.get_by_role("tab", name=t(f"tab.{tab}"), exact=True).click()
        boxes = [box(page.locator(f"#{elem}")) for elem in ids]
        tops = [b["y"] for b in boxes]
        print(f"\n{viewport['width']}px {tab}: button tops {[round(y) for y in tops]}, "
              f"heights {[round(b['height']) for b in boxes]}")
        assert max(tops) - min(tops) <= 4, f"{tab}: the run buttons are not in one row: {tops}"
        assert max(b["x"] + b["width"] for b in boxes) <= viewport["width"]
        assert max(b["height"] for b in boxes) <= 60


@VIEWPORTS
def test_every_tab_opens_with_one_line_and_a_closed_how_it_works(open_app, viewport: dict) -> None:
    page = open_app(viewport)
    for tab in TABS:
        page.get_by_role("tab", name=t(f"tab.{tab}"), exact=True).click()
        lead = page.locator(f"#{tab}-lead")
        expect(lead).to_be_visible()
        height = box(lead)["height"]
        limit = 30 if viewport is DESKTOP else 80  # one line; at most three on a phone
        assert height <= limit, f"{tab}: the lead is {height:.0f} px tall"
        how = page.locator(f"#{tab}-how")
        expect(how).to_contain_text(t("common.how_it_works"))
        first_words = re.sub(r"[*`]", "", t(f"{tab}.intro", max_steps=0, max_mb=0, jobs=0)).split(".")[0][:30]
        expect(how.get_by_text(first_words)).to_be_hidden()
        how.get_by_text(t("common.how_it_works")).click()
        expect(how.get_by_text(first_words)).to_be_visible()
    page.get_by_role("tab", name=t("tab.digits"), exact=True).click()
    for part in ("grid", "write", "walk", "map"):  # the Digits sub-tabs too
        page.get_by_role("tab", name=t(f"digits.{part}"), exact=True).click()
        expect(page.locator(f"#digits-{part}-lead")).to_be_visible()
        assert box(page.locator(f"#digits-{part}-lead"))["height"] <= (30 if viewport is DESKTOP else 80)
        first_words = re.sub(r"[*`]", "", t(f"digits.{part}_help")).split(".")[0][:30]
        expect(page.locator(f"#digits-{part}-how").get_by_text(first_words)).to_be_hidden()


def test_desktop_cards_are_open_and_hub_cards_say_what_they_need(open_app) -> None:
    page = open_app(DESKTOP)
    expect(page.locator("#gallery-cards details.model-card:not([open])")).to_have_count(0)
    tiny_gan = page.locator("#gallery-cards .model-card").filter(has_text="Tiny GAN")
    expect(tiny_gan.locator(".card-metrics")).to_be_visible()
    sd = page.locator("#gallery-cards .model-card").filter(has_text="SD-Turbo").filter(has_not_text="SDXL")
    expect(sd.locator(".avail")).to_have_text("not downloaded · 5.2 GB")
    link = sd.get_by_role("link", name=re.compile("Hugging Face"))
    expect(link).to_have_attribute("href", "https://huggingface.co/stabilityai/sd-turbo")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    expect(link).to_have_attribute("target", "_blank")
    local = page.locator("#gallery-cards .model-card").filter(has_text="Tiny GAN")
    expect(local.locator(".avail")).to_have_count(0)  # a shipped model needs no download


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


@VIEWPORTS
def test_pickers_and_generate_say_a_hub_model_is_not_downloaded(open_app, viewport: dict) -> None:
    page = open_app(viewport)
    page.get_by_role("tab", name=t("tab.image"), exact=True).click()
    expect(page.locator("#image-generate")).to_be_enabled()  # the local tiny pipeline
    expect(page.locator("#image-model-note")).to_be_hidden()
    choose(page, "image-model", "SD-Turbo (Hub · not downloaded · 5.2 GB · offline)")
    note = page.locator("#image-model-note")
    expect(note).to_contain_text("Not downloaded (5.2 GB)")
    expect(note).to_contain_text("offline")
    expect(page.locator("#image-generate")).to_be_disabled()
    note_box, button_box = box(note), box(page.locator("#image-generate"))
    assert abs(note_box["y"] - button_box["y"]) <= 80  # beside (or just under, on a phone) Generate
    choose(page, "image-model", "Tiny SD (test)")
    expect(page.locator("#image-generate")).to_be_enabled()
    expect(note).to_be_hidden()

    page.get_by_role("tab", name=t("tab.text"), exact=True).click()
    choose(page, "text-model", "GPT-2 (124M) (Hub · not downloaded · 0.55 GB)")
    expect(page.locator("#text-model-note")).to_contain_text("Not downloaded (0.55 GB)")
    expect(page.locator("#text-generate")).to_be_disabled()
    expect(page.locator("#text-regenerate")).to_be_disabled()
    choose(page, "text-model", "Tiny GPT")
    expect(page.locator("#text-generate")).to_be_enabled()
    expect(page.locator("#text-model-note")).to_be_hidden()
