"""Files in and out: a file input is only a file this visitor uploaded; a file out is a copy in
Gradio's cache, so no server path or session id ever reaches a response.

Gradio 6 already refuses, for event calls, a FileData whose path is outside its upload folder;
it answers with a bare "error". `guard(demo)` turns that refusal into a clear message, and
`uploaded` checks again in every handler that takes files: the path must be a regular file in
the upload folder that Gradio's upload route created (`Blocks.upload_file_set`), not, say, a
cached output of another visitor. Gradio's upload route is not tied to a session, so "this
visitor" means "whoever holds the unguessable path the upload returned".
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import processing_utils, utils
from gradio.context import LocalContext
from gradio.exceptions import InvalidPathError
from gradio_client import utils as client_utils

from aigc_demo.errors import UserError
from aigc_demo.ui import sessions, uploads

NOT_UPLOADED = ("That file was not uploaded to this page: upload it with the file box (from a script, "
                "use gradio_client's handle_file).")


def _path_of(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path")
    else:
        value = getattr(value, "path", None) or getattr(value, "name", None) or value
    if not isinstance(value, (str, Path)):
        raise UserError(NOT_UPLOADED)
    return str(value)


def _upload_set() -> set[str] | None:
    blocks = LocalContext.blocks.get(None)
    return getattr(blocks, "upload_file_set", None) if blocks is not None and blocks.has_launched else None


def uploaded(value: Any) -> str | None:
    """The server path of a file this page uploaded (None for no file); UserError otherwise."""
    path = _path_of(value)
    if path is None:
        return None
    folder = os.path.realpath(utils.get_upload_folder())
    real = os.path.realpath(path)
    if os.path.commonpath([folder, real]) != folder or not os.path.isfile(real) or os.path.islink(path):
        raise UserError(NOT_UPLOADED)
    known = _upload_set()
    if known is not None and path not in known and real not in known:
        raise UserError(NOT_UPLOADED)
    return real


def uploaded_list(value: Any) -> list[str]:
    """`uploaded` for a multi-file input."""
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [p for p in (uploaded(item) for item in items) if p]


def serve_file(path: str | Path) -> str:
    """A copy of `path` in Gradio's cache (named by its content hash), which is what is handed out."""
    return processing_utils.save_file_to_cache(str(path), utils.get_upload_folder())


def serve_bytes(data: bytes, name: str) -> str:
    """`data` as a file named `name` in Gradio's cache, where `serve_file` would put it (a folder
    named by the content hash), written once from memory: no staging file to write and read back."""
    folder = Path(utils.get_upload_folder()) / processing_utils.hash_bytes(data)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / client_utils.strip_invalid_filename_characters(name)
    if path.exists():
        os.utime(path)  # Gradio's cache sweep ages files by ctime: handed out again, kept again
    else:  # written under a temporary name, then renamed: never seen half-written
        partial = folder / f".{uuid.uuid4().hex}.part"
        partial.write_bytes(data)
        os.replace(partial, path)
    return str(path.resolve())


def guard(demo: gr.Blocks) -> gr.Blocks:
    """Make Gradio's own refusal of a non-uploaded file path a clear message in the page, and
    refuse, before any handler runs, an upload passed by a session that did not upload it
    (ui/uploads.py)."""
    owned = uploads.OwnedUploads(demo.upload_file_set)
    demo.temp_file_sets = [owned if s is demo.upload_file_set else s for s in demo.temp_file_sets]
    demo.upload_file_set = owned
    original = demo.preprocess_data
    original_api = demo.process_api

    async def process_api(block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request", args[1] if len(args) > 1 else None)
        requests = request if isinstance(request, list) else None
        fn = demo.fns[block_fn] if isinstance(block_fn, int) else block_fn
        if requests is not None and getattr(fn, "batch", False):
            items = list(zip(*inputs, strict=False)) if inputs else []
            for item, one in zip(items, requests):
                _check_uploads(owned, item, one)
        else:
            _check_uploads(owned, inputs, request)
        return await original_api(block_fn, inputs, *args, **kwargs)

    demo.process_api = process_api  # type: ignore[method-assign]

    async def preprocess_data(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        except InvalidPathError:
            raise gr.Error(NOT_UPLOADED) from None

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]
    return demo


def _check_uploads(owned: uploads.OwnedUploads, inputs: Any, request: Any) -> None:
    session_hash = getattr(request, "session_hash", None)
    claimers = {str(session_hash)} if session_hash else set()
    visitor = sessions.visitor_of_hash(session_hash)
    if visitor:
        claimers.add(visitor)
    try:
        uploads.check_claims(owned, inputs, claimers, sessions.client_address(request), NOT_UPLOADED)
    except UserError as err:
        raise gr.Error(str(err)) from None


def upload_middleware() -> Any:
    """The middleware `launch_kwargs` adds so uploads know their client address."""
    from starlette.middleware import Middleware

    return Middleware(uploads.UploadOwnerMiddleware, address_of=sessions.client_address)
