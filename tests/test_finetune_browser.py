"""The Fine-tune tab in a real browser: upload text, train, watch the plot move, stop, save, reload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.factories import TINY_TEXT

pytestmark = pytest.mark.browser


def _plot_src(page) -> str:
    return page.locator("#finetune-plot img").get_attribute("src") or ""


def test_upload_train_stop_save_and_find_it_in_the_gallery(page, tmp_path: Path) -> None:
    corpus = tmp_path / "poem.txt"
    corpus.write_text(TINY_TEXT * 3)
    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#finetune-model input").click()
    page.get_by_role("option", name="Tiny char GPT", exact=True).click()
    expect(page.locator("#finetune-source").get_by_label("Text")).to_be_checked()
    page.locator("#finetune-text-file input[type=file]").set_input_files(str(corpus))
    # The file row names the upload in its cell's label; its visible text splits stem and
    # extension into two spans, which browsers join with or without a space.
    expect(page.locator("#finetune-text-file").get_by_role("cell", name="poem.txt")).to_be_visible()
    for elem, value in (("steps", "3000"), ("batch", "4"), ("lr", "0.003")):
        page.locator(f"#finetune-{elem} input[type=number]").fill(value)
    page.get_by_label("Context length (tokens, GPT)").fill("32")
    page.locator("#finetune-start").click()

    status = page.locator("#finetune-status")
    expect(status).to_contain_text("Training", timeout=90_000)
    expect(status).to_contain_text(re.compile(r"Step \d+ / 3000"))
    expect(page.locator("#finetune-plot img")).to_be_visible()
    first = _plot_src(page)
    expect(page.locator("#finetune-plot img")).not_to_have_attribute("src", first, timeout=20_000)  # it updates
    expect(page.locator("#finetune-stop")).to_be_enabled()

    page.locator("#finetune-stop").click()
    expect(status).to_contain_text("Stopped", timeout=60_000)
    expect(page.locator("#finetune-resume")).to_be_enabled()
    expect(page.locator("#finetune-preview-text textarea")).not_to_have_value("")

    page.locator("#finetune-name textarea, #finetune-name input").first.fill("browser-model")
    page.locator("#finetune-save").click()
    expect(page.locator("#finetune-saved")).to_contain_text("Saved as browser-model", timeout=20_000)

    page.reload()  # the page re-attaches to the job
    page.get_by_role("tab", name="Fine-tune").click()
    expect(page.locator("#finetune-status")).to_contain_text("Stopped", timeout=20_000)
    expect(page.locator("#finetune-status")).to_contain_text("browser-model")

    page.get_by_role("tab", name="Gallery").click()
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_text("browser-model (fine-tuned Tiny char GPT)")).to_be_visible(timeout=20_000)


def test_another_visitor_does_not_see_the_saved_model(browser, app_url: str) -> None:
    context = browser.new_context()
    other = context.new_page()
    other.goto(app_url)
    other.get_by_role("tab", name="Gallery").click()
    expect(other.locator("#gallery-count")).to_be_visible(timeout=20_000)
    expect(other.get_by_text("browser-model (fine-tuned Tiny char GPT)")).to_have_count(0)
    context.close()
