"""Real browser: type a prompt, generate with the tiny pipeline, see the images, restore settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_generate_then_load_settings_from_the_image(page, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Image").click()
    expect(page.locator("#image-model input")).to_have_value("Tiny SD (test)")
    expect(page.locator("#image-width input[type=number]")).to_have_value("32")  # the card's defaults
    prompt = page.locator("#image-prompt textarea")
    prompt.fill("a small red boat")
    page.locator("#image-count input[type=number]").fill("2")
    page.locator("#image-count input[type=number]").press("Enter")
    page.locator("#image-generate").click()

    images = page.locator("#image-results img")
    expect(images).to_have_count(2, timeout=60_000)
    info = page.locator("#image-info")
    expect(info).to_contain_text(re.compile(r"2 image\(s\), [\d.]+ s per image"))
    seed = re.search(r"first seed (\d+)", info.inner_text()).group(1)

    # the PNG as the user downloads it, dropped back into the upload
    src = images.first.get_attribute("src")
    png = tmp_path / "made.png"
    png.write_bytes(page.request.get(src).body())
    prompt.fill("something else")
    page.get_by_role("button", name=re.compile("Load settings from an image")).click()
    page.locator("#image-upload input[type=file]").set_input_files(str(png))
    expect(page.locator("#image-loaded-info")).to_contain_text("Settings restored", timeout=30_000)
    expect(prompt).to_have_value("a small red boat")
    expect(page.locator("#image-seed input")).to_have_value(seed)
    expect(page.locator("#image-random-seed input")).not_to_be_checked()


def test_reuse_seed_and_a_missing_hub_model_message(page) -> None:
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-prompt textarea").fill("a tiny house")
    page.locator("#image-generate").click()
    info = page.locator("#image-info")
    expect(info).to_contain_text("s per image", timeout=60_000)
    seed = re.search(r"first seed (\d+)", info.inner_text()).group(1)
    page.locator("#image-reuse").click()
    expect(page.locator("#image-seed input")).to_have_value(seed)
    expect(page.locator("#image-random-seed input")).not_to_be_checked()

    page.locator("#image-model input").click()
    page.get_by_role("option", name="SDXL-Turbo (Hub · not downloaded · 7 GB)", exact=True).click()
    expect(page.locator("#image-width input[type=number]")).to_have_value("512")  # the entry's defaults
    # said up front, beside Generate, which is off: the test server is offline
    expect(page.locator("#image-model-note")).to_contain_text("Not downloaded (7 GB)")
    expect(page.locator("#image-model-note")).to_contain_text("offline")
    expect(page.locator("#image-generate")).to_be_disabled()
