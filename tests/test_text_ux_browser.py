"""Text tab in a real browser (issue #10 items 7 and 9): Stop works within a second while the CPU
is busy, and Look inside lets you click a token instead of typing its index."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from playwright.sync_api import expect

from tests.browser_tabs import open_tab
from tests.test_text_browser import _settings, choose_model, slow_model  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)  # a loaded 2-core machine: updates can take seconds



def test_stop_takes_effect_within_a_second_with_the_cpu_busy(page, slow_model: str) -> None:
    # Desktop only: what is timed is the server's stream stopping, the same at any screen size; the
    # Stop button's place on a phone is test_layout_browser's test_run_buttons_share_one_row[phone].
    open_tab(page, "Text")
    model = page.locator("#text-model input")
    model.fill(slow_model)  # the shipped 10M GPT: a 1024-token stream lasts long enough to stop
    model.press("Enter")
    expect(page.locator("#text-generate")).to_be_enabled()
    _settings(page, "text", 1024)
    page.locator("#text-prompt textarea").fill("ROMEO:\n")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        page.locator("#text-generate").click()
        output = page.locator("#text-output textarea")
        page.wait_for_function("document.querySelector('#text-output textarea').value.length > 40", timeout=120_000)
        assert "stopped" not in page.locator("#text-stats").inner_text()  # still streaming
        page.evaluate("""() => {
            window.__lengths = [];
            const box = document.querySelector('#text-output textarea');
            const stats = document.querySelector('#text-stats');
            window.__stopAt = null;  // the moment the visitor's click reaches the page
            document.querySelector('#text-stop').addEventListener('click', () => {
                window.__stopAt = performance.now();
                const tick = () => { window.__lengths.push([performance.now() - window.__stopAt, box.value.length,
                                                            stats.innerText.includes('stopped by you')]);
                                     if (window.__lengths.length < 60) setTimeout(tick, 50); };
                tick();
            }, {capture: true, once: true});
        }""")
        clicked = time.monotonic()
        page.locator("#text-stop").click()
        page.wait_for_function("window.__lengths.length >= 60", timeout=30_000)
        samples = page.evaluate("window.__lengths")
        click_lag = time.monotonic() - clicked
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    final = samples[-1][1]
    changes = [sample for i, sample in enumerate(samples) if i == 0 or sample[1:] != samples[i - 1][1:]]
    grew_after = [ms for ms, length, _ in samples if length != final]
    stopped_at = next((ms for ms, _, said in samples if said), None)
    last_growth = max(grew_after, default=0.0)
    # The page samples every 50 ms; with two CPU hogs the browser's own timer can stall (one sample
    # at 0.1 ms, the next at 1020 ms). Such a stall is the browser's, not the app's: up to 0.5 s of
    # it is allowed on top of the 1 s, measured from the samples themselves.
    stall = max((b[0] - a[0] - 50 for a, b in zip(samples, samples[1:]) if a[0] < (stopped_at or 0)), default=0)
    slack = min(500.0, max(0.0, stall))
    assert last_growth <= 1000 + slack, (last_growth, changes)  # the text stops growing within 1 s
    assert stopped_at is not None and stopped_at <= 1000 + slack, (stopped_at, changes, click_lag)  # and says so
    expect(page.locator("#text-stats")).to_contain_text("stopped by you")
    assert len(output.input_value()) == final


def test_click_a_token_to_look_inside(sized_page) -> None:
    page = sized_page
    open_tab(page, "Text")
    choose_model(page, "text", "Tiny GPT")
    _settings(page, "text", 12)
    page.locator("#text-prompt textarea").fill("def add(a, b):\n")
    page.locator("#text-generate").click()
    # finished: the stats say why it stopped (the 12 tokens), so the whole text is there to look inside
    expect(page.locator("#text-stats")).to_contain_text("stopped at max new tokens", timeout=60_000)
    expect(page.locator("#text-stats")).to_contain_text("12 tokens")  # the settings took: a short text
    page.locator(".label-wrap:visible", has_text="Look inside").click()
    page.locator("#text-inside-go").click()
    spans = page.locator("#text-inside-tokens").get_by_role("button")  # each token is a button
    expect(spans.nth(10)).to_be_visible(timeout=60_000)
    expect(page.locator("#text-inside-where")).to_contain_text("Position")
    assert [spans.nth(i).inner_text() for i in range(3)] == ["d", "e", "f"]
    spans.nth(2).click()  # the third token ("f" of "def")
    expect(page.locator("#text-inside-where")).to_contain_text("Position 2 is the token 'f'")
    expect(page.locator("#text-inside-position input")).to_have_value("2")
    expect(page.locator("#text-inside-heat img")).to_be_visible()
