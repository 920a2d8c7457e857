"""The Lab tab in a real browser, desktop and phone: the estimate before Start, two runs' curves and
grids growing together, one sentence per run at the end, and a share link with the lab's settings."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser_tabs import open_tab

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)  # a loaded 2-core machine: updates can take seconds


def test_run_a_lab_and_read_what_happened(sized_page) -> None:
    page = sized_page
    open_tab(page, "Lab")
    expect(page.locator("#lab-estimate")).to_contain_text("Estimated time here", timeout=300_000)
    assert re.search(r"200 steps x \d+\.\d\d s", page.locator("#lab-estimate").inner_text())  # the default lab
    expect(page.locator("#lab-values textarea, #lab-values input").first).to_have_value("adam, sgd")
    page.locator("#lab-steps input[type=number]").fill("24")
    page.locator("#lab-start").click()

    status = page.locator("#lab-status")
    expect(status).to_contain_text(re.compile("Queued|Training|Done"), timeout=60_000)
    expect(status).to_contain_text("only Optimizer differs")
    first, second = page.locator("#lab-grid-0"), page.locator("#lab-grid-1")
    expect(first).to_contain_text(re.compile(r"A: Adam · step (6|12|18|24)"), timeout=180_000)  # grids while training
    expect(status).to_contain_text("Done", timeout=240_000)
    expect(first).to_contain_text("A: Adam · step 24")
    expect(second).to_contain_text("B: SGD · step 24")
    expect(first.locator("img")).to_be_visible()
    expect(second.locator("img")).to_be_visible()
    expect(page.locator("#lab-run-2")).to_be_hidden()  # two runs: no third column
    for plot, title in (("#lab-loss-plot", "Training loss (neg_elbo)"),
                        ("#lab-metric-plot", "ELBO on held-out digits")):  # native plots (vega), runs overlaid
        expect(page.locator(f"{plot} canvas, {plot} svg").first).to_be_visible()
        expect(page.locator(plot)).to_contain_text(title)
    summary = page.locator("#lab-summary")
    expect(summary).to_contain_text("A: Adam reached an ELBO of")
    expect(summary).to_contain_text("B: SGD reached an ELBO of")
    expect(summary).to_contain_text("Best by this measure")
    expect(summary).to_contain_text("The optimizer decides")
    page.locator("#lab-keep").get_by_text("Keep a run").click()
    expect(page.locator("#lab-save")).to_be_enabled()

    page.locator("#lab-share").click()
    link = page.locator("#lab-share-link textarea, #lab-share-link input").first
    expect(link).to_have_value(re.compile(r"tab=lab&family=vae&vary=optimizer&values=adam%2C\+sgd&steps=24"))


def test_a_share_link_opens_the_lab_with_its_settings(page, app_url: str) -> None:
    page.goto(app_url + "?tab=lab&family=gan&vary=loss&values=nsgan,wgan-gp&steps=30&seed=7")
    expect(page.locator("#lab-vary").get_by_label("GAN loss")).to_be_checked()
    expect(page.locator("#lab-values textarea, #lab-values input").first).to_have_value("nsgan,wgan-gp")
    expect(page.locator("#lab-steps input[type=number]")).to_have_value("30")
    expect(page.locator("#lab-seed input[type=number]")).to_have_value("7")
    expect(page.locator("#lab-status")).to_contain_text("No lab yet")  # a link never starts training
