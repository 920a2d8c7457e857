"""Real browser: generate a grid, write digits, draw on the sketchpad and read it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _open_digits(page) -> None:
    page.get_by_role("tab", name="Digits").click()


def test_generate_grid_and_reuse_seed(page) -> None:
    _open_digits(page)
    page.locator("#digits-which").get_by_label("4").check()
    page.locator("#digits-generate").click()
    image = page.locator("#digits-grid-out img")
    expect(image).to_be_visible()
    first = image.get_attribute("src")
    seed = page.locator("#digits-seed input").input_value()
    assert seed.isdigit()
    page.get_by_label("New random seed each time").uncheck()
    page.locator("#digits-generate").click()
    expect(image).not_to_have_attribute("src", first)  # a new file each run...
    assert page.locator("#digits-seed input").input_value() == seed  # ...from the reused seed


def test_write_digits(page) -> None:
    _open_digits(page)
    page.get_by_role("tab", name="Write digits").click()
    box = page.locator("#digits-text textarea, #digits-text input").first
    box.fill("3.14159")
    page.locator("#digits-write-go").click()
    expect(page.locator("#digits-write-out img")).to_be_visible()
    box.fill("12ab")
    page.locator("#digits-write-go").click()
    expect(page.get_by_text("remove 'a' 'b'")).to_be_visible()


def test_draw_and_read_a_digit(page) -> None:
    _open_digits(page)
    page.get_by_role("tab", name="Draw a digit").click()
    canvas = page.locator("#digits-sketch canvas").last
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    x, top, bottom = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2, box["y"] + box["height"] * 0.8
    page.mouse.move(x, top)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x, top + (bottom - top) * step / 20)
    page.mouse.up()
    page.locator("#digits-read").click()
    expect(page.locator("#digits-where")).to_contain_text("the classifier reads a", timeout=60_000)
    expect(page.locator("#digits-recon img")).to_be_visible()
