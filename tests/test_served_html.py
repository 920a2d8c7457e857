"""Nothing a visitor sends appears unescaped in the HTML, meta or Open Graph tags the server
sends (issue 25, item 5): share-link query values (prompt, model, tab, language, unknown keys),
the Host and X-Forwarded-* headers, and what a visitor names or types reaches a tag only
escaped; Markdown outputs keep Gradio's sanitizer on.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlencode

import httpx
import pytest

from aigc_demo.ui.opengraph import Card, tags
from aigc_demo.ui.share import link_card

PAYLOADS = ['"><script>alert(1)</script>', "</title><img src=x onerror=alert(2)>",
            "' onmouseover='alert(3)", "<svg/onload=alert(4)>", "{0}{prompt}%s\u202e<!--"]
MARKERS = ("<script>alert", "<svg/onload", "<img src=x", "' onmouseover='alert")


class Metas(HTMLParser):
    """The page's <meta> tags as attribute dicts, as a chat app's crawler parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.metas: list[dict[str, str]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            self.metas.append({k: v or "" for k, v in attrs})
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _unescaped(page: str) -> list[str]:
    return [marker for marker in MARKERS if marker in page]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_share_link_values_are_escaped_in_the_served_page(app_url: str, payload: str) -> None:
    query = urlencode({"tab": "text", "prompt": payload, "model": payload, "lang": payload,
                       "run": "1", payload: payload})
    headers = {"X-Forwarded-Host": payload, "X-Forwarded-Proto": payload} if payload.isascii() else {}
    answer = httpx.get(f"{app_url}?{query}", headers=headers, timeout=30)
    assert answer.status_code == 200
    page = answer.text
    assert _unescaped(page) == [], f"unescaped in the page: {_unescaped(page)}"
    parser = Metas()
    parser.feed(page)
    card = {m.get("property") or m.get("name"): m.get("content", "") for m in parser.metas}
    assert card["og:title"] == "AIGC Gallery · Text"
    description = card["og:description"]
    assert payload.strip()[:150] in description  # the prompt is there, as text
    assert card["description"] == description and card["twitter:description"] == description
    for script in parser.scripts:  # no payload breaks out of an inline script either
        assert "</script" not in script.lower()


def test_a_hostile_host_header_cannot_break_out_of_the_tags(app_url: str) -> None:
    evil = 'x.test"><script>alert(5)</script>'
    answer = httpx.get(app_url, headers={"Host": evil}, timeout=30)
    assert _unescaped(answer.text) == []


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_tags_escape_every_field(payload: str) -> None:
    text = tags(Card(title=payload, description=payload), base=f"http://{payload}/", page_url=payload)
    assert _unescaped(text) == []
    parser = Metas()
    parser.feed(text)
    assert len(parser.metas) == 11 and all(set(m) <= {"property", "name", "content"} for m in parser.metas)
    assert {m["content"] for m in parser.metas if m.get("property") == "og:title"} == {payload}
    card = link_card({"prompt": [payload], "tab": [payload], "lang": [payload]})
    assert payload.strip()[:150] in card.description and card.title == "AIGC Gallery"


def test_markdown_outputs_keep_the_sanitizer_and_html_outputs_are_escaped(weights_dir) -> None:
    """Gradio sanitizes Markdown in the page unless `sanitize_html=False`: no component may turn
    it off, since Markdown outputs carry visitor text (a PNG's recorded model, a job message)."""
    import gradio as gr

    from aigc_demo.settings import ServeSettings
    from aigc_demo.ui.cards import esc
    from aigc_demo.ui.launch import create

    demo = create(ServeSettings(host="127.0.0.1", port=1, device="cpu", weights_dir=str(weights_dir)))
    markdowns = [b for b in demo.blocks.values() if isinstance(b, (gr.Markdown, gr.Chatbot))]
    assert len(markdowns) > 20
    assert [b.elem_id for b in markdowns if not getattr(b, "sanitize_html", True)] == []
    assert esc(PAYLOADS[0]) == html.escape(PAYLOADS[0], quote=True) and "<" not in esc(PAYLOADS[1])
    assert re.search(r"[<>\"']", esc("".join(PAYLOADS))) is None
