"""Uploads belong to the visitor who uploaded them: no other session can hand that file's path to
any endpoint.

Gradio's upload route is not tied to a session (its request carries no session id), and every
event accepts any path in its upload set, whoever uploaded it. So:
- `UploadOwnerMiddleware` notes the client address of each upload request, and `OwnedUploads`
  (the app's `upload_file_set`) records that address for every file the route stores;
- the first event that passes an uploaded file claims it for that event's session (its page
  session and its visitor id): uploading and then using a file is what the page and
  gradio_client both do, from one session;
- every later event that passes the file must come from a session that claimed it, and every
  event (the first included) from the address that uploaded it. Anything else gets NOT_UPLOADED,
  the same message as a path nobody uploaded, before any handler runs.
The records are bounded (`MAX_TRACKED`, oldest dropped, their files then refused too), so a
flood of uploads cannot grow the process.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from aigc_demo.errors import UserError

MAX_TRACKED = 20_000  # uploads remembered (each a path, an address and its claimers)
_upload_address: ContextVar[str | None] = ContextVar("aigc_upload_address", default=None)


@dataclass
class Owner:
    address: str | None  # None: uploaded without the middleware (address not known)
    sessions: set[str] = field(default_factory=set)  # empty until the first event uses the file


class OwnedUploads(set):
    """Gradio's `upload_file_set`, remembering who uploaded each file (bounded)."""

    def __init__(self, items: Iterable[str] = (), limit: int = MAX_TRACKED) -> None:
        super().__init__()
        self.limit = limit
        self._owners: OrderedDict[str, Owner] = OrderedDict()
        self._lock = threading.Lock()
        self.update(items)

    def add(self, path: str) -> None:
        self.update([path])

    def update(self, *groups: Iterable[str]) -> None:
        address = _upload_address.get()
        with self._lock:
            for group in groups:
                for path in group:
                    super().add(path)
                    self._owners[path] = Owner(address)
                    self._owners.move_to_end(path)
            while len(self._owners) > self.limit:
                old, _ = self._owners.popitem(last=False)
                super().discard(old)

    def discard(self, path: str) -> None:
        with self._lock:
            super().discard(path)
            self._owners.pop(path, None)

    def claim(self, path: str, sessions: set[str], address: str) -> bool:
        """May an event from `sessions` (page session, visitor id) at `address` use `path`?
        The first event to use an upload claims it for its sessions."""
        with self._lock:
            owner = self._owners.get(path)
            if owner is None:
                return False
            if owner.address is not None and owner.address != address:
                return False
            if not owner.sessions:
                if not sessions:
                    return False
                owner.sessions.update(sessions)
                return True
            return bool(owner.sessions & sessions)

    def owners(self) -> int:
        return len(self._owners)


class UploadOwnerMiddleware:
    """Pure ASGI: for POSTs to Gradio's upload route, the client address is noted for
    `OwnedUploads` (as sessions.client_address reads it: a trusted proxy's hop, else the peer)."""

    def __init__(self, app: Any, address_of: Any) -> None:
        self.app = app
        self.address_of = address_of

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "POST" and \
                str(scope.get("path", "")).rstrip("/").endswith("/upload"):
            from starlette.requests import Request

            token = _upload_address.set(self.address_of(Request(scope)))
            try:
                await self.app(scope, receive, send)
            finally:
                _upload_address.reset(token)
            return
        await self.app(scope, receive, send)


def file_paths(value: Any) -> Iterator[str]:
    """Every FileData path inside an event's raw input (nested lists and dicts included)."""
    if isinstance(value, dict):
        path = value.get("path")
        meta = value.get("meta")
        if isinstance(path, str) and isinstance(meta, dict) and meta.get("_type") == "gradio.FileData":
            yield path
        for item in value.values():
            if isinstance(item, (dict, list, tuple)):
                yield from file_paths(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from file_paths(item)


def check_claims(uploads: OwnedUploads, inputs: Any, sessions: set[str], address: str,
                 message: str) -> None:
    """UserError(`message`) if `inputs` pass an upload these sessions may not use."""
    for path in file_paths(inputs):
        key = path if path in uploads else os.path.realpath(path)  # `a/../b` is `b`
        if key in uploads and not uploads.claim(key, sessions, address):
            raise UserError(message)
