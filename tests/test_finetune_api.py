"""The Fine-tune tab through its API (gradio_client): start a job, poll its progress, save, download."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client

from tests.factories import TINY_TEXT


def test_start_a_job_and_follow_it_to_the_end(app_url: str, weights_dir: Path) -> None:
    client = Client(app_url, verbose=False)  # its own session: jobs and models are per visitor
    status = client.predict(model_ref="tiny-char-gpt", source_kind="text", text_path=None, files=None, text_value=TINY_TEXT * 3,
                            steps_n=20, batch_size=8, learning_rate=3e-3, sample_every_n=10, block=32,
                            api_name="/finetune_start")
    assert "job `" in status
    seen_steps, deadline = [], time.monotonic() + 150
    while True:
        view = client.predict("", api_name="/finetune_status")
        seen_steps.append(view["step"])
        if view["status"] in ("done", "failed", "stopped") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert view["status"] == "done", view["error"]
    assert view["step"] == view["total_steps"] == 20 and view["device"] == "cpu"
    assert seen_steps == sorted(seen_steps) and len(set(seen_steps)) >= 2  # progress streamed in steps
    history = view["history"]
    assert history[0]["step"] == 5 and history[-1]["loss"] < history[0]["loss"]
    assert {"loss", "val_loss"} <= set(history[-1]) and view["steps_per_s"] > 0
    assert any(p["text"] for p in view["previews"])

    assert "api-model" in client.predict("api-model", api_name="/finetune_save")
    ids = [m["id"] for m in client.predict(api_name="/models")]
    assert "yours/api-model" in ids  # listed by an id, never by its folder
    assert "yours/api-model" not in [m["id"] for m in Client(app_url, verbose=False).predict(api_name="/models")]
    download = client.predict(api_name="/finetune_download")  # the File is shown along with its value
    archive = zipfile.ZipFile(download["value"] if isinstance(download, dict) else download)
    assert {"api-model/config.json", "api-model/model.safetensors", "api-model/README.md"} <= set(archive.namelist())


def test_bad_input_gets_a_clear_message(app_url: str, weights_dir: Path) -> None:
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="learning rate must be a positive number"):
        client.predict(model_ref="tiny-char-gpt", source_kind="text", text_path=None, files=None, text_value=TINY_TEXT,
                       learning_rate=0, api_name="/finetune_start")
    with pytest.raises(Exception, match="paste some text"):
        client.predict(model_ref="tiny-char-gpt", source_kind="text", text_path=None, files=None, text_value="",
                       api_name="/finetune_start")
    with pytest.raises(Exception, match="Pick a model from the list"):
        client.predict(model_ref="/etc", source_kind="text", text_path=None, files=None, text_value=TINY_TEXT, api_name="/finetune_start")
    with pytest.raises(Exception, match="No job yet"):
        client.predict(api_name="/finetune_stop")
