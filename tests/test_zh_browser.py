"""Real browser in Chinese: a zh-CN browser (and ?lang=zh in an English one) sees the whole page in
Chinese (checked at desktop size, where the most text shows); ?lang=en gives English to a Chinese browser."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
LONG = 90_000
TABS_ZH = {"gallery": "画廊", "digits": "手写数字", "text": "文本", "code": "代码", "image": "图像",
           "compare": "对比", "finetune": "微调", "system": "系统"}
# Proper nouns, units, code and library words that stay as they are in a Chinese page.
ALLOWED = {
    "aigc", "gan", "vae", "gpt", "gpts", "mnist", "fashion", "hugging", "face", "hub", "python", "pytorch",
    "lora", "cpu", "gpu", "cuda", "png", "gif", "kl", "top", "api", "gradio", "stable", "diffusion", "turbo",
    "ast", "parse", "zip", "txt", "float32", "bfloat16", "float16", "eval", "safetensors", "apple", "mps", "id",
    "wasserstein", "hinge", "adam", "adamw", "sgd", "eager", "device_map", "auto", "hf_hub_offline",
    "aigc_data_dir", "readme", "mb", "gb", "dcgan", "sd", "linux", "with", "glibc", "x86_64", "mit",
    "openai", "smollm2", "qwen", "instruct", "coder", "sdxl", "base", "causal", "lm", "vit", "tiny",
    "toy", "char", "test", "chat", "classifier", "broken", "model", "unknown", "shipped", "gpt-2", "eos",
    "rmsprop", "apache-2", "cc-by-4", "other",  # license ids (license: other)
}
# Content, not interface: generated text, code, example prompts, model cards' own words and names.
CONTENT = ["#text-output", "#code-editor", ".cm-editor", "[data-testid='examples']", ".gallery",
           ".model-card h3", ".model-card code", ".card-title", ".card-code", ".card-error",
           ".card-desc",  # model descriptions come from model cards and the hub catalog, in English (a known gap)
           ".metric-badge",  # metric names are the model card's own words (a known gap)
           ".model-card pre", ".model-card .cm-scroller", ".model-card p:last-child", "#system-libraries",
           "#text-model", "#code-model", "#image-model", "#digits-gan", "table", "#system-summary code",
           "#system-loaded",  # the loaded models: their names and kinds (model data)
           # Gradio's own status line while an event runs ("processing", "In queue"), screen-reader only text
           ".sr-only", ".progress-text", ".meta-text", ".meta-text-center", ".progress-level"]


def english_words(page) -> list[str]:
    """Latin-script words in the visible page, content areas left out."""
    text = page.evaluate("""(selectors) => {
        const hidden = [];
        for (const sel of selectors) for (const el of document.querySelectorAll(sel)) {
            hidden.push([el, el.style.getPropertyValue('display'), el.style.getPropertyPriority('display')]);
            el.style.setProperty('display', 'none', 'important'); }
        const text = document.body.innerText;
        for (const [el, value, priority] of hidden) el.style.setProperty('display', value, priority);
        return text; }""", CONTENT)
    words = re.findall(r"(?<![0-9A-Za-z_.-])[A-Za-z][A-Za-z0-9_'-]*[A-Za-z0-9]", text)
    return sorted({w for w in words if w.lower().strip("'-") not in ALLOWED and not w.isupper() or
                   (w.isupper() and w.lower() not in ALLOWED and len(w) > 4)})


def visit_every_tab(context, app_url: str) -> dict[str, list[str]]:
    """Each tab opened by its link in a page of its own (on a phone the tab strip folds into a menu)."""
    found = {}
    for tab, name in TABS_ZH.items():
        page = context.new_page()
        page.set_default_timeout(LONG)
        page.goto(f"{app_url}?tab={tab}")
        expect(page.get_by_role("tab", name=name, exact=True).first).to_have_attribute(
            "aria-selected", "true", timeout=LONG)
        page.wait_for_timeout(2000)  # the tab's own on-open events (System fills its report)
        found[name] = english_words(page)
        page.close()
    return found


def test_a_chinese_browser_gets_chinese(browser, app_url: str) -> None:
    # At desktop size only: a phone shows a subset of the same words (the one narrow-screen rule,
    # shell.py's @media block, only resizes; GALLERY_JS folds the cards, hiding their bodies), and
    # the phone's own layout (every tab a visible button, no '...' menu) is test_layout_browser's.
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LONG)
    page.goto(app_url)
    expect(page.get_by_role("tab", name="画廊", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.locator("#gallery-count")).to_contain_text("个模型", timeout=LONG)  # rendered per visitor
    expect(page.locator("#device-badge")).to_contain_text("运行于", timeout=LONG)
    found = visit_every_tab(context, app_url)
    context.close()
    english = {tab: words for tab, words in found.items() if words}
    assert english == {}, json.dumps(english, ensure_ascii=False)


def test_lang_in_the_link_overrides_the_browser(browser, app_url: str) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(app_url + "?lang=zh&tab=text&seed=-1")
    expect(page.get_by_role("tab", name="文本", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text("链接中的部分设置已被忽略")).to_be_visible(timeout=LONG)  # notices too
    page.locator("#text-generate").click()
    expect(page.locator("#text-stats")).to_contain_text("个词元", timeout=LONG)  # status lines too
    context.close()

    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(app_url + "?lang=en")
    expect(page.get_by_role("tab", name="Gallery", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.locator("#gallery-count")).to_contain_text("model(s)", timeout=LONG)
    context.close()


TABS_EN = {"gallery": "Gallery", "digits": "Digits", "text": "Text", "code": "Code", "image": "Image",
           "compare": "Compare", "finetune": "Fine-tune", "system": "System"}
# (tab, selector, text) per language: a label, a help text and a button on three tabs.
CONTROLS = {
    "zh": [("image", "#image-prompt", "提示词"), ("image", "#image-negative", "反向提示词"),
           ("image", "#image-generate", "生成"), ("image", "#image-share", "分享"),
           ("digits", "#digits-generate", "生成"), ("text", "#text-prompt", "提示词")],
    "en": [("image", "#image-prompt", "Prompt"), ("image", "#image-negative", "Negative prompt"),
           ("image", "#image-generate", "Generate"), ("image", "#image-share", "Share"),
           ("digits", "#digits-generate", "Generate"), ("text", "#text-prompt", "Prompt")],
}


@pytest.mark.parametrize("browser_locale, lang", [("en-US", "zh"), ("zh-CN", "en")])
def test_lang_switches_every_tab_and_control(browser, app_url: str, browser_locale: str, lang: str) -> None:
    """?lang= against the browser's own language: every tab label, controls on the tabs opened by
    clicking (the choice survives moving between tabs), and the share link carries it."""
    tabs = TABS_ZH if lang == "zh" else TABS_EN
    other = TABS_EN if lang == "zh" else TABS_ZH
    context = browser.new_context(locale=browser_locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LONG)
    page.goto(app_url + f"?lang={lang}")
    for name in tabs.values():
        expect(page.get_by_role("tab", name=name, exact=True).first).to_be_visible(timeout=LONG)
    shown = page.get_by_role("tab").all_inner_texts()
    assert not [name for name in other.values() if name in shown and name not in tabs.values()], shown
    assert page.evaluate("document.documentElement.lang").lower().startswith(lang)
    for tab, selector, text in CONTROLS[lang]:
        page.get_by_role("tab", name=tabs[tab], exact=True).first.click()
        expect(page.locator(selector).first).to_contain_text(text, timeout=LONG)
    page.get_by_role("tab", name=tabs["digits"], exact=True).first.click()
    page.locator("#digits-generate").click()  # a grid of the tiny GAN: a result to share
    page.wait_for_timeout(3000)
    page.locator("#digits-grid-share").click()
    box = page.locator("#digits-grid-share-link textarea")
    expect(box).to_have_value(re.compile(rf"[?&]lang={lang}(&|$)"), timeout=LONG)
    context.close()


def test_errors_from_services_in_chinese(browser, app_url: str) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(app_url + "?tab=digits&part=write&text=12ab")
    page.locator("#digits-write-go").click(timeout=LONG)
    expect(page.get_by_text("只能书写数字 0-9（以及 . - , 和空格）；请删除 'a' 'b'")).to_be_visible(timeout=LONG)
    context.close()
