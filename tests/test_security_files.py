"""Security of files and model ids, attacked as a stranger would: gradio_client and plain HTTP
against the launched app (issue #9, items 1, 2, 3 and 6).

1. a file input takes only a file uploaded to the page;
2. a visitor's saved models and downloads are served to that visitor only, and no response
   carries a session id or a server folder;
3. model pickers take only the ids they list (one refusal text, whether or not a path exists);
6. zips leave nothing in the temp dir, what visitors create expires, quotas hold.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file

from aigc_demo.services.model_ids import REFUSED, ModelScope, resolve_model_id
from aigc_demo.ui.files import NOT_UPLOADED
from tests.factories import TINY_TEXT

SECRET = "TOP-SECRET-LINE do not read me\n" * 40


def manager() -> Any:
    from aigc_demo.services.jobs import get_manager

    return get_manager()


def call_http(app_url: str, api_name: str, data: list[Any]) -> tuple[str, Any]:
    """POST /gradio_api/call/<api> then read its event stream: ("complete" | "error", payload)."""
    base = app_url.rstrip("/") + "/gradio_api"
    posted = httpx.post(f"{base}/call/{api_name}", json={"data": data}, timeout=30)
    assert posted.status_code == 200, posted.text
    stream = httpx.get(f"{base}/call/{api_name}/{posted.json()['event_id']}", timeout=180).text
    events = [line for line in stream.splitlines() if line.startswith(("event:", "data:"))]
    kind = next(e.split(":", 1)[1].strip() for e in reversed(events) if e.startswith("event:"))
    payload = json.loads(next(e.split(":", 1)[1] for e in reversed(events) if e.startswith("data:")))
    return kind, payload


def defaults(client: Client, api_name: str, **values: Any) -> list[Any]:
    """All parameters of an endpoint in order: the given values, else the documented defaults."""
    params = client.view_api(return_format="dict", print_info=False)["named_endpoints"][api_name]["parameters"]
    return [values.get(p["parameter_name"], p.get("parameter_default")) for p in params]


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("server-secrets") / "secret.txt"
    path.write_text(SECRET)
    return path


# ---------------------------------------------------------------- 1. file inputs

def test_a_server_path_is_not_a_file_input(app_url: str, client: Client, secret_file: Path) -> None:
    """FileData pointing at a server file (plain HTTP: no client-side upload) is refused clearly."""
    fake = {"path": str(secret_file), "meta": {"_type": "gradio.FileData"}}
    data = defaults(client, "/finetune_start", model_ref="tiny-char-gpt", source_kind="text", text_path=fake,
                    text_value="", steps_n=5, block=16)
    kind, payload = call_http(app_url, "finetune_start", data)
    assert kind == "error" and payload["error"] == NOT_UPLOADED
    assert "TOP-SECRET" not in json.dumps(payload) and "lines" not in json.dumps(payload)

    png = secret_file.parent / "server.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(png)
    kind, payload = call_http(app_url, "load_image_settings", [{"path": str(png), "meta": {"_type": "gradio.FileData"}}])
    assert kind == "error" and payload["error"] == NOT_UPLOADED


def test_a_cached_file_nobody_uploaded_is_refused(app_url: str, client: Client) -> None:
    """Gradio accepts any path inside its cache; the app takes only what its upload route stored
    (not, say, another visitor's cached download)."""
    from gradio import utils

    planted = Path(utils.get_upload_folder()) / "planted-by-test" / "notes.txt"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(SECRET)
    try:
        data = defaults(client, "/finetune_start", model_ref="tiny-char-gpt", source_kind="text",
                        text_path={"path": str(planted), "meta": {"_type": "gradio.FileData"}}, text_value="")
        kind, payload = call_http(app_url, "finetune_start", data)
        assert kind == "error" and payload["error"] == NOT_UPLOADED
    finally:
        shutil.rmtree(planted.parent, ignore_errors=True)


def test_upload_train_and_download_serve_only_this_visitor(app_url: str, tmp_path: Path) -> None:
    """A real upload trains; status, models and downloads carry no session id and no server folder;
    the saved model's files are not downloadable by path; two zips leave no temp folders behind."""
    visitor = Client(app_url, verbose=False)
    session = visitor.session_hash
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TINY_TEXT * 3)
    status = visitor.predict(model_ref="tiny-char-gpt", source_kind="text", text_path=handle_file(str(corpus)),
                             files=None, text_value="", steps_n=10, batch_size=8, learning_rate=3e-3,
                             sample_every_n=5, block=32, api_name="/finetune_start")
    assert "corpus.txt" in status
    deadline = time.monotonic() + 180
    while (view := visitor.predict("", api_name="/finetune_status"))["status"] not in ("done", "failed", "stopped"):
        assert time.monotonic() < deadline, view
        time.sleep(0.5)
    assert view["status"] == "done", view["error"]
    assert "sec-model" in visitor.predict("sec-model", api_name="/finetune_save")
    view = visitor.predict("", api_name="/finetune_status")
    models = visitor.predict(api_name="/models")
    runs, user_models = manager().config.runs_dir, manager().config.user_models_dir
    for response in (json.dumps(view), json.dumps(models), status):
        assert session not in response
        assert runs not in response and user_models not in response
    assert view["saved"] == ["sec-model"]
    assert "yours/sec-model" in [m["id"] for m in models]

    saved = Path(user_models) / session / "sec-model" / "model.safetensors"
    assert saved.is_file()
    stranger = httpx.get(f"{app_url}gradio_api/file={saved}", timeout=30)
    assert stranger.status_code in (403, 404) and len(stranger.content) < saved.stat().st_size

    before = {p.name for p in Path(tempfile.gettempdir()).glob("aigc-*")}
    first, second = [(got["value"] if isinstance(got, dict) else got)  # the File comes with its visibility
                     for got in (visitor.predict(api_name="/finetune_download") for _ in range(2))]
    after = {p.name for p in Path(tempfile.gettempdir()).glob("aigc-*")}
    assert after <= before, f"left behind: {sorted(after - before)}"
    for path in (first, second):
        assert session not in path and user_models not in path
        assert "sec-model/config.json" in zipfile.ZipFile(path).namelist()


# ---------------------------------------------------------------- 3. model ids

def _plant_model(weights_dir: Path, session: str, name: str = "my-gan") -> Path:
    folder = Path(manager().config.user_models_dir) / session / name
    shutil.copytree(weights_dir / "tiny-gan", folder)
    return folder


def _grid(client: Client, ref: str) -> Any:
    return client.predict([], 4, 1, 1.0, ref, api_name="/digits_grid")


def test_pickers_take_only_listed_ids(app_url: str, weights_dir: Path) -> None:
    owner, stranger = Client(app_url, verbose=False), Client(app_url, verbose=False)
    folder = _plant_model(weights_dir, owner.session_hash)
    try:
        assert Path(_grid(owner, "yours/my-gan")).is_file()  # own model by its listed id
        report = json.dumps(stranger.predict(api_name="/system"))  # lists loaded models to anyone
        assert "my-gan" in report and owner.session_hash not in report
        assert manager().config.user_models_dir not in report
        assert Path(_grid(stranger, "tiny-gan")).is_file()  # shipped id
        messages = []
        for ref in (str(folder), "yours/my-gan", "/no/such/folder", str(weights_dir / "tiny-gan"),
                    "../../etc", "runs/finetune/x/y", "~/"):
            with pytest.raises(Exception) as err:
                _grid(stranger, ref)
            messages.append(str(err.value))
        assert all(REFUSED in m for m in messages) and len(set(messages)) == 1, messages
        with pytest.raises(Exception, match="not one this app offers"):
            stranger.predict("gan", 1, 2, 3, 3, 7, 4, str(folder), "tiny-vae-4d", api_name="/digits_walk")
        with pytest.raises(Exception, match="not one this app offers"):
            stranger.predict("12", 1, 0.8, str(folder), api_name="/digits_write")
        with pytest.raises(Exception, match="not one this app offers"):
            stranger.predict(str(folder), api_name="/digits_map")
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def test_batched_grid_resolves_each_visitors_own_models(app_url: str, weights_dir: Path) -> None:
    """/digits_grid is batched (Gradio hands the handler only the batch's first request): a
    stranger's `yours/my-gan` queued behind the owner's must not draw with the owner's model."""
    owner, stranger = Client(app_url, verbose=False), Client(app_url, verbose=False)
    folder = _plant_model(weights_dir, owner.session_hash)
    try:
        for _ in range(3):
            jobs = [owner.submit([], 64, seed, 1.0, "yours/my-gan", api_name="/digits_grid") for seed in range(3)]
            theirs = stranger.submit([], 64, 9, 1.0, "yours/my-gan", api_name="/digits_grid")
            try:
                drawn = theirs.result(timeout=120)
            except Exception as err:  # alone: refused with its message
                assert "not one this app offers" in str(err)
            else:  # batched with the owner's requests: an empty result, never a grid from the owner's model
                assert drawn is None
            for job in jobs:  # the owner's grids are drawn whatever the stranger sent
                assert job.result(timeout=120)
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.mark.parametrize("api_name", ["/text_generate", "/text_look_inside", "/code_complete", "/generate_image"])
def test_text_code_and_image_pickers_refuse_paths(client: Client, weights_dir: Path, api_name: str) -> None:
    values = {"/text_generate": ("model", "prompt"), "/text_look_inside": ("model", "text"),
              "/code_complete": ("model", "code"), "/generate_image": ("model_ref", "prompt_text")}[api_name]
    model_param, text_param = values
    extra = {"negative_text": ""} if api_name == "/generate_image" else {}
    # the Image picker takes no typed value at all: Gradio refuses what is not among its choices
    refusal = "not in the list of choices" if api_name == "/generate_image" else "not one this app offers"
    for ref in (str(weights_dir / "tiny-gpt"), "/etc"):
        with pytest.raises(Exception, match=refusal):
            client.predict(**{model_param: ref, text_param: "hi"}, **extra, api_name=api_name)


def test_resolver_rules(weights_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "user_models"
    (users / "alice-session" / "mine").mkdir(parents=True)
    (users / "alice-session" / "mine" / "config.json").write_text("{}")
    alice = ModelScope(str(weights_dir), str(users), "alice-session")
    bob = ModelScope(str(weights_dir), str(users), "bob-session-1")
    assert resolve_model_id("tiny-gan", bob) == str(weights_dir / "tiny-gan")
    assert resolve_model_id("yours/mine", alice) == str(users / "alice-session" / "mine")
    assert resolve_model_id("openai-community/gpt2", bob) == "openai-community/gpt2"
    for ref in ("yours/mine", str(users / "alice-session" / "mine"), "/does/not/exist", "yours/../alice-session",
                "shared/abc/mine", "no-such-shipped", "a/b/c", "x" * 300, ["tiny-gan"], 3, "bad id/x y"):
        with pytest.raises(ValueError) as err:
            resolve_model_id(ref, bob)
        assert str(err.value) == REFUSED
    local = ModelScope(str(weights_dir), str(users), "bob-session-1", allow_local_paths=True)
    assert resolve_model_id(str(weights_dir / "tiny-gan"), local) == str((weights_dir / "tiny-gan").resolve())
    from aigc_demo.hub import is_local_ref

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "finetune").mkdir(parents=True)
    assert not is_local_ref("runs/finetune")  # owner/name text is a hub id even if such a folder exists


# ---------------------------------------------------------------- 6. disk

def _aged(path: Path, seconds_ago: float) -> None:
    stamp = time.time() - seconds_ago
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(item, (stamp, stamp))


def test_expired_things_are_swept_and_active_jobs_kept(tmp_path: Path) -> None:
    from aigc_demo.services.job_config import FinetuneConfig
    from aigc_demo.services.jobs import FinetuneManager
    from aigc_demo.services.storage import Sweeper
    from aigc_demo.settings import PublicSettings

    config = FinetuneConfig(runs_dir=str(tmp_path / "runs"), user_models_dir=str(tmp_path / "user"),
                               public=PublicSettings(user_ttl_hours=1.0))
    mgr = FinetuneManager(config)
    old_job = tmp_path / "runs" / "sess-old1" / "jobs" / "job-1"
    new_job = tmp_path / "runs" / "sess-new1" / "jobs" / "job-2"
    old_model = tmp_path / "user" / "sess-old1" / "model-a"
    images = tmp_path / "images"
    for folder in (old_job, new_job, old_model, images):
        folder.mkdir(parents=True)
        (folder / "file.bin").write_bytes(b"x" * 1000)
    (images / "image-1.png").write_bytes(b"png")
    _aged(old_job, 7200)
    _aged(old_model, 7200)
    _aged(images / "image-1.png", 7200)
    gone = mgr.sweep(extra_dirs=[images])
    assert old_job in gone and old_model in gone and images / "image-1.png" in gone
    assert not (tmp_path / "runs" / "sess-old1").exists() and not (tmp_path / "user" / "sess-old1").exists()
    assert new_job.is_dir()
    # a fake clock two hours ahead: everything is old now
    assert new_job in mgr.sweep(now=time.time() + 7200)

    calls: list[float] = []
    sweeper = Sweeper(lambda: calls.append(time.monotonic()), interval=0.05).start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sweeper.stop()
    assert len(calls) >= 3


def test_quotas_give_a_clear_message(tmp_path: Path, weights_dir: Path) -> None:
    from aigc_demo.services import finetune as ft
    from aigc_demo.services.job_config import FinetuneConfig
    from aigc_demo.services.jobs import FinetuneManager
    from aigc_demo.settings import PublicSettings

    config = FinetuneConfig(runs_dir=str(tmp_path / "runs"), user_models_dir=str(tmp_path / "user"),
                               public=PublicSettings(user_quota_mb=1.0, total_quota_mb=2.0))
    mgr = FinetuneManager(config)
    data = ft.prepare_text(TINY_TEXT * 3, None)
    settings = ft.default_settings("gpt")
    (tmp_path / "user" / "visitor-a").mkdir(parents=True)
    (tmp_path / "user" / "visitor-a" / "big.bin").write_bytes(b"x" * (2**20 + 10))
    with pytest.raises(ValueError, match=r"take 1\.0 MB of the 1 MB each visitor may use"):
        mgr.start("visitor-a", str(weights_dir / "tiny-char-gpt"), data, settings)
    (tmp_path / "user" / "visitor-b").mkdir(parents=True)
    (tmp_path / "user" / "visitor-b" / "big.bin").write_bytes(b"x" * (2**20 - 10))
    with pytest.raises(ValueError, match="disk for visitors is full"):
        mgr.start("visitor-c", str(weights_dir / "tiny-char-gpt"), data, settings)


@pytest.mark.parametrize("env, message", [
    ({"AIGC_USER_TTL_HOURS": "-1"}, "user_ttl_hours must be a positive number"),
    ({"AIGC_USER_QUOTA_MB": "lots"}, "AIGC_USER_QUOTA_MB must be a number"),
    ({"AIGC_USER_QUOTA_MB": "50", "AIGC_TOTAL_QUOTA_MB": "10"}, "cannot exceed total_quota_mb"),
])
def test_public_settings_are_validated(env: dict[str, str], message: str) -> None:
    from aigc_demo.settings import PublicSettings

    with pytest.raises(ValueError, match=message):
        PublicSettings.from_env(env)
    assert PublicSettings.from_env({}).allow_local_paths is False
    assert PublicSettings.from_env({"AIGC_ALLOW_LOCAL_PATHS": "1"}).allow_local_paths is True
