"""Real browser: generate a grid, write digits, draw on the sketchpad and read it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _open_digits(page) -> None:
    page.get_by_role("tab", name="Digits").click()


def _run_and_wait(page, button: str, output: str) -> None:
    """Click `button` and wait until `output`'s progress tracker has gone busy and idle again.

    A rerun with the same seed gives the same picture and Gradio serves it at the same URL
    (content hash), so the `src` cannot tell when the run is over; the tracker can.
    """
    page.evaluate("""(sel) => {
        window.__aigcDone = false;
        const root = document.querySelector(sel);
        let busy = false;
        const observer = new MutationObserver(() => {
            const tracker = root.querySelector('[data-testid="status-tracker"]');
            const pending = tracker !== null && !tracker.classList.contains('hide');
            if (pending) { busy = true; }
            else if (busy) { window.__aigcDone = true; observer.disconnect(); }
        });
        observer.observe(root, {subtree: true, childList: true, attributes: true});
    }""", output)
    page.locator(button).click()
    page.wait_for_function("window.__aigcDone === true")


def test_generate_grid_and_reuse_seed(page) -> None:
    _open_digits(page)
    page.locator("#digits-which").get_by_label("4").check()
    image = page.locator("#digits-grid-out img")
    seed_box = page.locator("#digits-seed input")
    _run_and_wait(page, "#digits-generate", "#digits-grid-out")
    expect(image).to_be_visible()
    first, seed = image.get_attribute("src"), seed_box.input_value()
    assert seed.isdigit()

    page.get_by_label("New random seed each time").uncheck()
    _run_and_wait(page, "#digits-generate", "#digits-grid-out")
    assert seed_box.input_value() == seed  # the seed was reused...
    assert image.get_attribute("src") == first  # ...so the very same picture came back

    page.get_by_label("New random seed each time").check()
    _run_and_wait(page, "#digits-generate", "#digits-grid-out")
    assert seed_box.input_value() != seed  # a fresh seed...
    assert image.get_attribute("src") != first  # ...draws other digits


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
    # Gradio 6.31's sketchpad starts with no tool ("select the draw tool to start") and has no
    # parameter to start on the brush, so a person picks it first, as the help text says.
    page.locator("#digits-sketch").get_by_role("button", name="Brush").click()
    expect(page.get_by_text("select the draw tool to start")).to_have_count(0)
    canvas = page.locator("#digits-sketch .pixi-target canvas")
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
