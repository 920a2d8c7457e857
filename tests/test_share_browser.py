"""Real browser: each generator's Share link, opened in a fresh browser, makes the same result;
a bad link opens the page with a notice; the page carries a link card (Open Graph)."""

from __future__ import annotations

import dataclasses
import re
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from aigc_demo import settings as app_settings


def on_space(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    """Run as on a Space whose public host is `host` ("": not on a Space), for this test only."""
    monkeypatch.setattr(app_settings, "_current", dataclasses.replace(app_settings.current(), space_host=host))


pytestmark = pytest.mark.browser
LONG = 90_000  # a loaded 2-core machine: generous, but a broken link still fails


def fresh(browser, url: str, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    return context, page


def share_link(page, prefix: str) -> str:
    page.locator(f"#{prefix}-share").click()
    box = page.locator(f"#{prefix}-share-link textarea")
    expect(box).to_have_value(re.compile(r"^http://.*\?tab="), timeout=LONG)
    return box.input_value()


def image_bytes(page, selector: str) -> bytes:
    image = page.locator(selector).first
    expect(image).to_be_visible(timeout=LONG)
    return page.request.get(image.get_attribute("src")).body()


def query(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


def test_text_link_gives_the_same_text(browser, app_url: str) -> None:
    context, page = fresh(browser, app_url + "?tab=text&max_new_tokens=24&prompt=ROMEO%3A%0A")
    expect(page.locator("#text-prompt textarea")).to_have_value("ROMEO:\n", timeout=LONG)
    page.locator("#text-generate").click()
    stats = page.locator("#text-stats")
    expect(stats).to_contain_text("stopped at max new tokens", timeout=LONG)
    seed = re.search(r"seed (\d+)", stats.inner_text()).group(1)
    text = page.locator("#text-output textarea").input_value()
    assert len(text) > 0
    link = share_link(page, "text")
    context.close()
    assert query(link)["seed"] == seed and query(link)["run"] == "1" and query(link)["max_new_tokens"] == "24"

    context, page = fresh(browser, link)
    expect(page.locator("#text-output textarea")).to_have_value(text, timeout=LONG)
    expect(page.locator("#text-stats")).to_contain_text(f"seed {seed}")
    context.close()


def test_code_link_gives_the_same_code(browser, app_url: str) -> None:
    context, page = fresh(browser, app_url + "?tab=code&max_new_tokens=12")
    expect(page.get_by_role("tab", name="Code")).to_have_attribute("aria-selected", "true", timeout=LONG)
    page.locator("#code-generate").click()
    expect(page.locator("#code-badge")).to_contain_text(re.compile("✓|✗"), timeout=LONG)
    code = page.locator("#code-editor .cm-content").inner_text()
    link = share_link(page, "code")
    context.close()
    assert query(link)["max_new_tokens"] == "12" and query(link)["prompt"].startswith("def fibonacci")

    context, page = fresh(browser, link)
    expect(page.locator("#code-badge")).to_contain_text(re.compile("✓|✗"), timeout=LONG)
    assert page.locator("#code-editor .cm-content").inner_text() == code
    context.close()


def test_image_link_gives_the_same_bytes(browser, app_url: str) -> None:
    context, page = fresh(browser, app_url + "?tab=image&prompt=a+small+red+boat&steps=2")
    expect(page.locator("#image-prompt textarea")).to_have_value("a small red boat", timeout=LONG)
    page.locator("#image-generate").click()
    first = image_bytes(page, "#image-results img")
    link = share_link(page, "image")
    context.close()
    assert query(link)["steps"] == "2" and int(query(link)["seed"]) >= 0

    context, page = fresh(browser, link)
    expect(page.locator("#image-info")).to_contain_text("s per image", timeout=LONG)
    assert image_bytes(page, "#image-results img") == first
    context.close()


@pytest.mark.parametrize(("part", "start", "button", "output"), [
    ("grid", "count=6", "#digits-generate", "#digits-grid-out img"),
    ("write", "text=4.2", "#digits-write-go", "#digits-write-out img"),
    ("walk", "steps=3&seed=5&seed_b=9", "#digits-walk-go", "#digits-walk-gif img"),
])
def test_digits_links_give_the_same_image(browser, app_url: str, part: str, start: str, button: str,
                                          output: str) -> None:
    context, page = fresh(browser, f"{app_url}?tab=digits&part={part}&{start}")
    expect(page.locator(button)).to_be_visible(timeout=LONG)
    page.locator(button).click(timeout=LONG)
    made = image_bytes(page, output)
    link = share_link(page, f"digits-{part}")
    context.close()
    assert query(link)["part"] == part

    context, page = fresh(browser, link)
    assert image_bytes(page, output) == made
    context.close()


def test_a_bad_link_opens_the_page_with_a_notice(browser, app_url: str) -> None:
    context, page = fresh(browser, app_url + "?tab=text&seed=-5&temperature=abc&model=..%2F..%2Fetc&sneaky=1"
                                             "&prompt=hello")
    expect(page.get_by_text("Some settings in this link were ignored")).to_be_visible(timeout=LONG)
    expect(page.get_by_text(re.compile(r"seed: outside 0…2147483647"))).to_be_visible()
    expect(page.get_by_text("sneaky: not a setting of this tab")).to_be_visible()
    expect(page.locator("#text-prompt textarea")).to_have_value("hello")  # the good part still applies
    expect(page.get_by_role("tab", name="Text")).to_have_attribute("aria-selected", "true")
    context.close()


def test_share_before_a_result_says_so(page) -> None:
    page.get_by_role("tab", name="Text").click()
    page.locator("#text-share").click()
    expect(page.get_by_text("Make a result first")).to_be_visible()


def test_link_card_tags_and_image(app_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with urllib.request.urlopen(app_url + "?tab=text&prompt=To+be&lang=zh") as response:
        page = response.read().decode()
    assert '<meta property="og:title" content="AIGC 生成模型画廊 · 文本" />' in page
    assert "To be" in re.search(r'<meta property="og:description" content="([^"]*)"', page).group(1)
    assert 'content="Gradio"' not in page and "Click to try out the app" not in page
    image = re.search(r'<meta property="og:image" content="([^"]*)"', page).group(1)
    assert image.startswith("http://127.0.0.1:") and image.endswith("/og-image.png")
    assert '<meta name="twitter:card" content="summary_large_image" />' in page
    with urllib.request.urlopen(image) as response:
        assert response.headers["content-type"] == "image/png" and response.read(8) == b"\x89PNG\r\n\x1a\n"
    on_space(monkeypatch, "someone-aigc.hf.space")  # what a Space sets (SPACE_HOST)
    with urllib.request.urlopen(app_url) as response:
        assert 'content="https://someone-aigc.hf.space/og-image.png"' in response.read().decode()
