"""Fine-tuning the diffusion model in a real browser, desktop and phone: pick it, see only its
settings and the data it learns from, a measured estimate, then Start and watch its sample grids."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser_tabs import open_tab

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)  # a loaded 2-core machine: updates can take seconds

HIDDEN = ("#finetune-gan-settings", "#finetune-vae-settings", "#finetune-text-settings", "#finetune-lora-settings",
          "#finetune-text-samples")


def drawings(folder: Path, count: int = 8) -> list[str]:
    paths = []
    for i in range(count):
        paper = np.full((40, 32), 255, np.uint8)
        paper[4:36, 12 + i % 5:17 + i % 5] = 0
        path = folder / f"1_stroke{i}.png"
        Image.fromarray(paper).save(path)
        paths.append(str(path))
    return paths


def _pick_diffusion(page) -> None:
    open_tab(page, "Fine-tune")
    page.locator("#finetune-model input").click()
    page.get_by_role("option", name="Tiny diffusion", exact=True).click()


def test_picking_the_diffusion_model_shows_only_its_settings_and_data(sized_page) -> None:
    """Desktop and phone: the sections a diffusion fine-tune needs, and no others."""
    page = sized_page
    _pick_diffusion(page)
    expect(page.locator("#finetune-diffusion-settings")).to_be_visible()
    for section in HIDDEN:
        expect(page.locator(section)).to_be_hidden()
    expect(page.locator("#finetune-image-samples")).to_be_visible()
    expect(page.locator("#finetune-sampler-steps input[type=number]")).to_have_value("4")  # the model's own
    source = page.locator("#finetune-source")
    expect(source.get_by_label("Text")).to_have_count(0)  # it learns from images only
    expect(source.get_by_label("Built-in set")).to_have_count(1)
    expect(source.get_by_label("My drawings")).to_have_count(1)
    source.get_by_label("Uploaded images").check()
    expect(page.locator("#finetune-image-files")).to_be_visible()


def test_start_a_diffusion_fine_tune_and_see_its_first_samples(page, tmp_path: Path) -> None:
    """Desktop only: the training run is the server's, the same at any screen size (the sections
    a phone shows are the test above)."""
    _pick_diffusion(page)
    expect(page.locator("#finetune-diffusion-settings")).to_be_visible()
    expect(page.locator("#finetune-estimate")).to_contain_text("Estimated time here", timeout=150_000)

    source = page.locator("#finetune-source")
    source.get_by_label("Uploaded images").check()
    page.locator("#finetune-image-files input[type=file]").set_input_files(drawings(tmp_path))
    expect(page.locator("#finetune-images-summary")).to_contain_text("8 images")
    page.locator("#finetune-steps input[type=number]").fill("30")
    page.locator("#finetune-batch input[type=number]").fill("8")
    page.get_by_label("Show a sample every N steps").fill("5")
    page.locator("#finetune-start").click()

    status = page.locator("#finetune-status")
    expect(status).to_contain_text(re.compile(r"Step \d+ / 30"), timeout=120_000)
    expect(page.locator("#finetune-preview img")).to_be_visible(timeout=60_000)  # a sample grid
    expect(page.locator("#finetune-history img").first).to_be_visible()
    expect(status).to_contain_text("Finished", timeout=120_000)
    expect(status).to_contain_text("Tiny diffusion")
    expect(page.locator("#finetune-save")).to_be_enabled()
