"""Real browser, 50 models in the catalog: every filter change answers in under a second, the
cards are escaped text, and a card's button opens its tab (desktop 1366x900 and phone 390x844)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import expect

from aigc_demo.catalog import SOURCES, TASKS
from aigc_demo.services.gallery import ALL, list_models
from tests.conftest import free_port, launched
from tests.factories import HOSTILE_TITLE, make_many_models

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
ANSWER_S = 1.0  # the bound for one filter change, on a loaded 2-core machine too


@pytest.fixture(scope="module")
def many_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_many_models(tmp_path_factory.mktemp("many"))


@pytest.fixture(scope="module")
def many_url(many_dir: Path) -> Iterator[str]:
    """A second app whose weights folder holds the 50 fixture models."""
    from aigc_demo.settings import ServeSettings

    with launched(ServeSettings(host="127.0.0.1", port=free_port(), device="cpu", weights_dir=str(many_dir))) as url:
        yield url


def open_page(browser, url: str, viewport: dict):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    expect(page.locator("#gallery-count")).to_be_visible(timeout=60_000)
    return context, page


def expected_line(many_dir: Path, task: str, source: str) -> tuple[str, int]:
    count = len(list_models(many_dir, task, source))
    return (f"{count} model(s)" if count else "No model matches this filter."), count


# Time stamps in the page itself: the pointerdown of a click, and the last change the gallery's
# HTML saw after it (what a person waits for, without the test driver's own overhead).
INSTRUMENT = """() => {
  if (window.__gallery) return;
  window.__gallery = {down: 0, changed: 0};
  document.addEventListener('pointerdown', () => { window.__gallery.down = performance.now();
                                                   window.__gallery.changed = 0; }, true);
  new MutationObserver(() => { window.__gallery.changed = performance.now(); })
    .observe(document.querySelector('#gallery-view'), {subtree: true, childList: true, characterData: true,
                                                       attributes: true});
}"""


def timed(page, action, line: str, count: int) -> tuple[float, float]:
    """(seconds in the page from the click to the gallery's last change, seconds the test waited)
    for the count line and the visible cards to show the new filter."""
    page.evaluate(INSTRUMENT)
    start = time.perf_counter()
    action()
    expect(page.locator("#gallery-count")).to_have_text(line, timeout=15_000)
    expect(page.locator("#gallery-cards .model-card:visible")).to_have_count(count, timeout=15_000)
    waited = time.perf_counter() - start
    stamps = page.evaluate("window.__gallery")
    return (stamps["changed"] - stamps["down"]) / 1000, waited


def pick_task(page, label: str) -> None:
    page.locator("#gallery-task input").click()
    page.get_by_role("option", name=label, exact=True).click()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_filter_answers_within_a_second(browser, many_url: str, many_dir: Path, viewport: dict) -> None:
    context, page = open_page(browser, many_url, viewport)
    try:
        line, count = expected_line(many_dir, ALL, ALL)
        assert count >= 56  # 50 local models and the curated hub list
        expect(page.locator("#gallery-count")).to_have_text(line)
        counts = [expected_line(many_dir, key, ALL)[1] for key in [ALL, *TASKS, ALL]]
        counts += [expected_line(many_dir, ALL, source)[1] for source in [*SOURCES, ALL]]
        assert all(a != b for a, b in zip(counts, counts[1:])), f"each change must show a new count: {counts}"
        times: dict[str, tuple[float, float]] = {}
        for key, label in [*TASKS.items(), (ALL, "All")]:
            times[f"task={key}"] = timed(page, lambda: pick_task(page, label), *expected_line(many_dir, key, ALL))
        for source in [*SOURCES, ALL]:
            label = "All" if source == ALL else {"shipped": "shipped with the app", "user": "saved by you",
                                                  "hub": "Hugging Face Hub", "remote": "inference server"}[source]
            radio = page.locator("#gallery-source").get_by_text(label, exact=True)
            times[f"source={source}"] = timed(page, radio.click, *expected_line(many_dir, ALL, source))
        print(f"\nfilter change, in the page / as the test waited ({viewport['width']}px):",
              ", ".join(f"{k} {a * 1000:.0f}/{w * 1000:.0f} ms" for k, (a, w) in times.items()))
        slow = {k: round(a, 2) for k, (a, _) in times.items() if not 0 < a < ANSWER_S}
        assert not slow, f"filter changes that took {ANSWER_S} s or more in the page: {slow}"
        # still responsive: a click on a card's button switches the tab at once
        page.locator("#gallery-cards button.card-open[data-tab=text]").first.click()
        expect(page.get_by_role("tab", name="Text", selected=True)).to_be_visible(timeout=5_000)
    finally:
        context.close()


def test_card_text_is_escaped(browser, many_url: str, many_dir: Path) -> None:
    context, page = open_page(browser, many_url, DESKTOP)
    try:
        expect(page.locator(".card-title", has_text="onerror")).to_have_text(HOSTILE_TITLE)
        expect(page.get_by_text("Fixture model 0: <b>not bold</b>.")).to_be_visible()
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#gallery-cards img[src=x]").count() == 0
        sources = page.locator("#gallery-cards img.card-sample").evaluate_all("els => els.map(e => e.src)")
        assert sources and all(src.startswith("data:image/webp;base64,") for src in sources)
        html = page.locator("#gallery-cards").inner_html()
        assert str(many_dir) not in html and "/file=" not in html  # no server path reaches the page
    finally:
        context.close()
