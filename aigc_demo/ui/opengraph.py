"""Link cards: Open Graph / Twitter tags in the HTML the server sends, and the card's image.

Chat apps read the page's HTML without running its JavaScript, so tags added by the frontend
(`head=`) come too late; Gradio's own template carries generic "Gradio" tags. This ASGI
middleware rewrites only the page itself (GET of the app's root): Gradio's og:/twitter: tags are
replaced with ours, absolute URLs on the public address (https://<SPACE_HOST>/ on a Space).
It also puts ui/i18n.py's early locale script first in <head>, and serves the card image at /og-image.png. Everything else passes through untouched.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from aigc_demo.settings import current as current_settings

IMAGE_PATH = Path(__file__).parent / "assets" / "screenshot-digits.png"
IMAGE_ROUTE = "/og-image.png"
_GRADIO_TAGS = re.compile(rb'<meta\s+(?:property="og:[^"]*"|name="twitter:[^"]*")[^>]*>\s*', re.S)


@dataclass(frozen=True)
class Card:
    title: str
    description: str


def public_base(scope_headers: dict[str, str], scheme: str = "http") -> str:
    """https://<SPACE_HOST>/ on a Space; else the address the request came to."""
    space_host = current_settings().space_host
    if space_host:
        return f"https://{space_host}/"
    host = scope_headers.get("x-forwarded-host") or scope_headers.get("host") or "localhost"
    proto = scope_headers.get("x-forwarded-proto") or scheme
    return f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}/"


def tags(card: Card, base: str, page_url: str) -> str:
    esc = lambda s: html.escape(s, quote=True)  # noqa: E731
    image = base.rstrip("/") + IMAGE_ROUTE
    return "\n".join([
        '<meta property="og:type" content="website" />',
        f'<meta property="og:site_name" content="{esc(card.title)}" />',
        f'<meta property="og:title" content="{esc(card.title)}" />',
        f'<meta property="og:description" content="{esc(card.description)}" />',
        f'<meta property="og:url" content="{esc(page_url)}" />',
        f'<meta property="og:image" content="{esc(image)}" />',
        '<meta name="twitter:card" content="summary_large_image" />',
        f'<meta name="twitter:title" content="{esc(card.title)}" />',
        f'<meta name="twitter:description" content="{esc(card.description)}" />',
        f'<meta name="twitter:image" content="{esc(image)}" />',
        f'<meta name="description" content="{esc(card.description)}" />',
    ]) + "\n"


def rewrite(page: bytes, card: Card, base: str, page_url: str, first_in_head: bytes = b"") -> bytes:
    """The page with Gradio's og:/twitter: tags swapped for the card's; `first_in_head` (a script
    that must run before Gradio's own, ui/i18n.py's locale) goes first in <head>."""
    stripped = _GRADIO_TAGS.sub(b"", page)
    return stripped.replace(b"<head>", b"<head>\n" + first_in_head + tags(card, base, page_url).encode(), 1)


ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class OpenGraphMiddleware:
    """Pure ASGI (no buffering of streams): only GET / and /og-image.png are touched."""

    def __init__(self, app: ASGIApp, card_for: Callable[[dict[str, list[str]]], Card],
                 first_in_head: bytes = b"") -> None:
        self.app = app
        self.card_for = card_for
        self.first_in_head = first_in_head

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == IMAGE_ROUTE:
            await self._image(send)
            return
        if path not in ("/", ""):
            await self.app(scope, receive, send)
            return
        await self._page(scope, receive, send)

    async def _image(self, send: Any) -> None:
        body = IMAGE_PATH.read_bytes()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"image/png"), (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"public, max-age=86400")]})
        await send({"type": "http.response.body", "body": body})

    async def _page(self, scope: dict, receive: Any, send: Any) -> None:
        start: dict | None = None
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            await self._send_page(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, capture)

    async def _send_page(self, scope: dict, start: dict | None, body: bytes, send: Any) -> None:
        start = start or {"type": "http.response.start", "status": 200, "headers": []}
        headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
        if start.get("status") == 200 and headers.get("content-type", "").startswith("text/html") and body:
            base = public_base(headers_of(scope), scope.get("scheme", "http"))
            query = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
            page_url = base + (("?" + scope["query_string"].decode(errors="replace")) if query else "")
            body = rewrite(body, self.card_for(query), base, page_url, self.first_in_head)
            start = {**start, "headers": [(k, v) for k, v in start.get("headers", [])
                                          if k.lower() != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": body})


def headers_of(scope: dict) -> dict[str, str]:
    return {k.decode().lower(): v.decode(errors="replace") for k, v in scope.get("headers", [])}
