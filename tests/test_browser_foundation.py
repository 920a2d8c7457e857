"""Real browser (Debian chromium, headless): the gallery filters and the System tab opens."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def choose(page, elem_id: str, option: str) -> None:
    """Pick an option of a gradio Dropdown the way a person does: open it, click the option."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_gallery_shows_cards_and_filters_by_task(page) -> None:
    cards = page.locator("#gallery-cards .model-card")
    expect(page.get_by_text("Tiny GAN", exact=True)).to_be_visible()
    expect(page.get_by_text("Toy GPT", exact=True)).to_be_visible()
    expect(page.get_by_text("GPT-2 (124M)")).to_be_visible()
    expect(page.get_by_text(re.compile("card could not be read"))).to_be_visible()
    everything = cards.count()
    assert everything >= 8

    choose(page, "gallery-task", "Image generation")
    expect(page.locator("#gallery-count")).to_have_text("4 model(s)")  # GAN, two VAEs, diffusion
    expect(page.get_by_text("Tiny GAN", exact=True)).to_be_visible()
    expect(page.get_by_text("Toy GPT", exact=True)).to_be_hidden()  # filtered out in the page
    expect(page.get_by_text("FID 3.5")).to_be_visible()  # the tiny GAN's measured metric badge
    page.get_by_role("button", name="Open in the Digits tab").first.click()
    expect(page.get_by_role("tab", name="Digits", selected=True)).to_be_visible()
    page.get_by_role("tab", name="Gallery").click()

    choose(page, "gallery-task", "All")
    page.locator("#gallery-source").get_by_text("Hugging Face Hub").click()
    expect(page.get_by_text("Tiny GAN", exact=True)).to_be_hidden()
    expect(page.get_by_text("SD-Turbo")).to_be_visible()
    sdxl = page.locator("#gallery-cards .model-card").filter(has_text="SDXL-Turbo")
    expect(sdxl).to_contain_text("needs ~7 GB of memory · needs a CUDA GPU · 7 GB download")
    expect(sdxl).to_contain_text("not downloaded")


def test_system_tab_tells_the_hardware(page) -> None:
    expect(page.locator("#device-badge")).to_contain_text("Running on CPU")
    page.get_by_role("tab", name="System").click()
    summary = page.locator("#system-summary")
    expect(summary).to_contain_text("CPU (")
    expect(summary).to_contain_text("offline mode")
    expect(page.locator("#system-libraries")).to_contain_text("gradio")
    # Unloading is an operator action: without AIGC_ADMIN_TOKEN its controls are not in the page.
    expect(page.locator("#system-loaded")).to_be_visible()
    expect(page.get_by_role("button", name="Unload all")).to_be_hidden()
