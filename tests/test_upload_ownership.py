"""Uploads belong to the visitor who uploaded them (issue 25, item 1): another session, or a
client at another address, cannot pass that file's path to any endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from aigc_demo.ui import uploads
from aigc_demo.ui.files import NOT_UPLOADED


def _upload(app_url: str, path: Path, local_address: str = "127.0.0.1") -> str:
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(transport=transport, timeout=30) as http:
        answer = http.post(f"{app_url}gradio_api/upload", files={"files": (path.name, path.read_bytes())})
    assert answer.status_code == 200, answer.text
    return answer.json()[0]


def _call(app_url: str, api_name: str, data: list[Any], session: str,
          local_address: str = "127.0.0.1") -> tuple[str, Any]:
    """POST /gradio_api/call/<api> as page session `session` from `local_address`, then read
    its event stream: ("complete" | "error", payload)."""
    base = app_url.rstrip("/") + "/gradio_api"
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(transport=transport, timeout=60) as http:
        posted = http.post(f"{base}/call/{api_name}", json={"data": data, "session_hash": session})
        assert posted.status_code == 200, posted.text
        stream = http.get(f"{base}/call/{api_name}/{posted.json()['event_id']}").text
    events = [line for line in stream.splitlines() if line.startswith(("event:", "data:"))]
    kind = next(e.split(":", 1)[1].strip() for e in reversed(events) if e.startswith("event:"))
    payload = json.loads(next(e.split(":", 1)[1] for e in reversed(events) if e.startswith("data:")))
    return kind, payload


def _file(path: str) -> dict[str, Any]:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "mine.png"
    Image.new("RGB", (8, 8), "red").save(path)
    return path


def test_another_session_cannot_use_a_visitors_upload(app_url: str, png: Path) -> None:
    path = _upload(app_url, png)
    kind, payload = _call(app_url, "load_image_settings", [_file(path)], "alice-session-0001")
    assert kind == "error" and payload["error"] != NOT_UPLOADED  # Alice's own file: read (no settings in it)
    again = _call(app_url, "load_image_settings", [_file(path)], "alice-session-0001")
    assert again == (kind, payload)  # hers as often as she likes
    for stranger in ("mallory-session-01", "mallory-session-02"):
        kind, payload = _call(app_url, "load_image_settings", [_file(path)], stranger)
        assert (kind, payload.get("error")) == ("error", NOT_UPLOADED)
    twisted = path.replace("/", "/./", 1)  # the same file by another spelling
    kind, payload = _call(app_url, "load_image_settings", [_file(twisted)], "mallory-session-03")
    assert (kind, payload.get("error")) == ("error", NOT_UPLOADED)
    # Any endpoint: a stranger's fine-tune start with Alice's file as its text is refused the same.
    from gradio_client import Client

    params = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)
    names = [p["parameter_name"] for p in params["named_endpoints"]["/finetune_start"]["parameters"]]
    defaults = {p["parameter_name"]: p.get("parameter_default")
                for p in params["named_endpoints"]["/finetune_start"]["parameters"]}
    defaults.update(model_ref="tiny-char-gpt", source_kind="text", text_path=_file(path), text_value="")
    kind, payload = _call(app_url, "finetune_start", [defaults[n] for n in names], "mallory-session-04")
    assert (kind, payload.get("error")) == ("error", NOT_UPLOADED)


def test_an_upload_is_refused_from_another_address_even_first(app_url: str, png: Path) -> None:
    """A client at another address (127.0.0.2 here) that learns the path cannot claim the file
    before its owner does; the owner, at the uploading address, still can."""
    path = _upload(app_url, png, local_address="127.0.0.1")
    kind, payload = _call(app_url, "load_image_settings", [_file(path)], "eve-session-00001",
                          local_address="127.0.0.2")
    assert (kind, payload.get("error")) == ("error", NOT_UPLOADED)
    kind, payload = _call(app_url, "load_image_settings", [_file(path)], "bob-session-000001")
    assert kind == "error" and payload["error"] != NOT_UPLOADED


def test_owned_uploads_are_bounded_and_claimed_once() -> None:
    owned = uploads.OwnedUploads(limit=3)
    token = uploads._upload_address.set("203.0.113.5")
    try:
        owned.update([f"/up/{i}" for i in range(5)])
    finally:
        uploads._upload_address.reset(token)
    assert set(owned) == {"/up/2", "/up/3", "/up/4"} and owned.owners() == 3  # oldest dropped
    assert not owned.claim("/up/0", {"a"}, "203.0.113.5")  # forgotten: refused
    assert not owned.claim("/up/2", {"a"}, "198.51.100.1")  # other address
    assert not owned.claim("/up/2", set(), "203.0.113.5")  # no session: cannot claim
    assert owned.claim("/up/2", {"a", "visitor-a"}, "203.0.113.5")
    assert owned.claim("/up/2", {"other-page", "visitor-a"}, "203.0.113.5")  # a reload: same visitor
    assert not owned.claim("/up/2", {"b"}, "203.0.113.5")
    nested = {"layers": [_file("/up/3")], "background": _file("/up/4")}
    assert sorted(uploads.file_paths(nested)) == ["/up/3", "/up/4"]
