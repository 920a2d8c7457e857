"""The Lab through its API (gradio_client) against the launched app: start, follow, stop, save, ownership."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gradio_client import Client


def _until(client: Client, lab_id: str, statuses: tuple[str, ...], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = client.predict(lab_id, api_name="/lab_status")
        if view["status"] in statuses or time.monotonic() > deadline:
            return view
        time.sleep(0.5)


def test_the_default_lab_starts_and_a_small_one_runs_to_the_end(app_url: str, weights_dir: Path) -> None:
    client = Client(app_url, verbose=False)  # its own session: labs are per visitor
    other = Client(app_url, verbose=False)
    lab_id = client.predict(api_name="/lab_start")  # the defaults: the small default lab
    view = client.predict(lab_id, api_name="/lab_status")
    assert view["id"] == lab_id and view["status"] in ("queued", "running")
    assert (view["family"], view["vary"], view["steps"]) == ("vae", "optimizer", 200)
    assert [run["label"] for run in view["runs"]] == ["A: Adam", "B: SGD"]
    assert [run["settings"]["optimizer"] for run in view["runs"]] == ["adam", "sgd"]
    with pytest.raises(Exception, match="No such job"):
        other.predict(lab_id, api_name="/lab_status")  # another visitor: not found
    with pytest.raises(Exception, match="already have a job"):
        client.predict(api_name="/lab_start")
    client.predict(lab_id, api_name="/lab_stop")
    assert _until(client, lab_id, ("stopped", "done", "failed"))["status"] in ("stopped", "done")

    small = client.predict("gpt", "label_smoothing", "0, 0.1", 12, 4, 3, api_name="/lab_start")
    view = _until(client, small, ("done", "failed", "stopped"))
    assert view["status"] == "done", view["error"]
    assert view["seed"] == 3 and view["metric_name"] == "val_loss" and len(view["runs"]) == 2
    for run in view["runs"]:
        assert [p["step"] for p in run["metric"]][0] == 0 and run["metric"][-1]["step"] == 12
        assert run["loss"] and all(isinstance(p["value"], float) for p in run["loss"])
        assert run["texts"] and run["can_save"]
    assert view["runs"][0]["metric"][0]["value"] == view["runs"][1]["metric"][0]["value"]  # same start
    assert [r["settings"]["label_smoothing"] for r in view["runs"]] == [0.0, 0.1]
    assert "/" not in str([run["samples"] for run in view["runs"]])  # no server paths
    assert "lab-gpt" in client.predict(small, 2, "lab-gpt", api_name="/lab_save")
    assert "yours/lab-gpt" in [m["id"] for m in client.predict(api_name="/models")]


def test_bad_lab_input_gets_a_clear_message(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    for args, message in ((("vae", "optimizer", "adam"), "2 or 3 runs"), (("vae", "loss", "nsgan,hinge"), "Vary"),
                          (("gan", "loss", "nsgan,nope"), "takes one of"), (("vae", "lr", "1e-3,abc"), "number from"),
                          (("vae", "optimizer", "adam,sgd", 100000), "Steps"), (("lora",), "Family")):
        with pytest.raises(Exception, match=message):
            client.predict(*args, api_name="/lab_start")
    with pytest.raises(Exception, match="No such job"):
        client.predict("20250101-000000-abcdef", api_name="/lab_status")
