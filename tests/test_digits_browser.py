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
