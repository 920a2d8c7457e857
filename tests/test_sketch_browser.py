"""Real browser, desktop and phone: the digit sketchpad draws on first contact, edge to edge;
Read waits for ink; a blank read is one message. Plus the Digits tab's glitches from issue #10
(latent-walk controls and GIF size, labels above output images)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser_tabs import open_tab

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)  # a loaded 2-core machine: updates can take seconds



def _open(page, tab: str, sub: str | None = None) -> None:
    open_tab(page, tab.capitalize())
    if sub:
        open_tab(page, sub)


def _stroke(page, canvas, x_frac: float) -> None:
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x = box["x"] + box["width"] * x_frac
    page.mouse.move(x, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    for step in range(1, 13):
        page.mouse.move(x, box["y"] + box["height"] * (0.2 + 0.05 * step))
    page.mouse.up()


def _ink_columns(page, selector: str) -> list[int]:
    """Columns (in canvas pixels) that hold ink."""
    return page.evaluate("""(sel) => {
        const c = document.querySelector(sel); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const cols = new Set();
        for (let i = 0; i < d.length; i += 4) { if (d[i] < 128) cols.add((i / 4) % c.width); }
        return Array.from(cols).sort((a, b) => a - b);
    }""", selector)


def test_first_stroke_draws_edge_to_edge_and_read_answers(sized_page) -> None:
    page = sized_page
    _open(page, "digits", "Draw a digit")
    canvas = page.locator("#digits-sketch canvas")
    expect(canvas).to_be_visible()
    read = page.locator("#digits-read")
    expect(read).to_be_disabled()  # nothing drawn yet
    box = canvas.bounding_box()
    assert box["width"] >= 250 and abs(box["width"] - box["height"]) < 2  # square, the whole canvas is paper
    _stroke(page, canvas, 0.03)  # first contact, no tool picked: it draws
    _stroke(page, canvas, 0.97)
    columns = _ink_columns(page, "#digits-sketch canvas")
    assert columns and columns[0] <= 10 and columns[-1] >= 270  # ink at both sides of a 280-px canvas
    expect(read).to_be_enabled()
    read.click()
    expect(page.locator("#digits-where")).to_contain_text("the classifier reads a", timeout=60_000)
    expect(page.locator("#digits-recon img")).to_be_visible()
    page.locator("#digits-sketch").get_by_role("button", name="Clear").click()
    expect(read).to_be_disabled()


def test_blank_read_is_one_message(page) -> None:
    """Undo back to blank: Read turns off again; no red Error boxes anywhere in the tab."""
    _open(page, "digits", "Draw a digit")
    canvas = page.locator("#digits-sketch canvas")
    _stroke(page, canvas, 0.5)
    read = page.locator("#digits-read")
    expect(read).to_be_enabled()
    page.locator("#digits-sketch").get_by_role("button", name="Undo").click()
    expect(read).to_be_disabled()
    expect(page.locator("#tab-digits .error")).to_have_count(0)


def test_latent_walk_shows_one_models_controls_and_a_large_gif(page) -> None:
    _open(page, "digits", "Latent walk")
    expect(page.locator("#digits-walk-digit")).to_be_visible()
    expect(page.locator("#digits-walk-vae-digits")).to_be_hidden()
    page.get_by_label("VAE: digit A to digit B").check()
    expect(page.locator("#digits-walk-vae-digits")).to_be_visible()
    expect(page.locator("#digits-walk-digit")).to_be_hidden()
    expect(page.locator("#digits-walk-seed-b")).to_be_hidden()
    page.get_by_label("GAN: one digit, seed A to seed B").check()
    expect(page.locator("#digits-walk-vae-digits")).to_be_hidden()
    page.locator("#digits-walk-go").click()
    gif = page.locator("#digits-walk-gif img")
    expect(gif).to_be_visible(timeout=60_000)
    page.wait_for_function("document.querySelector('#digits-walk-gif img').complete")
    assert gif.bounding_box()["width"] >= 250
    # the label sits above the strip, not over it
    label = page.locator("#digits-walk-strip [data-testid=block-label]").bounding_box()
    image = page.locator("#digits-walk-strip img").bounding_box()
    assert label["y"] + label["height"] <= image["y"] + 1
