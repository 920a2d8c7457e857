"""Job events on disk: what a job process writes, what a restarted app lists, and who sees it.

The job processes here are stand-ins (spawned like real ones, through the same EventLog) that
report a few steps at once: no torch, so they end in a second. The real families' events are
covered by tests/test_finetune_service.py, which also restarts the manager after a real job.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigc_demo.services import finetune as ft
from aigc_demo.services.job_config import FinetuneConfig
from aigc_demo.services.job_events import EVENTS_FILE, EventLog, EventTail, read_events
from aigc_demo.services.jobs import FinetuneManager
from aigc_demo.settings import PublicSettings
from aigc_demo.training.export_mark import EXPORT_MARK, export_complete, export_whole
from tests.factories import TINY_TEXT, make_tiny_char_gpt

A, B = "visitor-aaaa", "visitor-bbbb"
STEPS = 4


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def progress(step: int, **extra) -> dict:
    return {"type": "progress", "step": step, "total_steps": STEPS, "losses": {"loss": 4.0 / step},
            "elapsed_s": float(step), "steps_per_s": 1.0, "items_per_s": 8.0, "eta_s": float(STEPS - step),
            "device": "cpu", "done": step == STEPS, "stopped": False, "time": time.time(), **extra}


def quick_job(request, events, stop) -> None:
    """Reports STEPS steps, an image sample at every other one, exports a model, ends."""
    events.put({"type": "status", "status": "loading"})
    for step in range(1, STEPS + 1):
        events.put(progress(step, **({"preview_png": png(step * 40)} if step % 2 == 0 else {})))
    export_whole(request.out_dir, lambda out: (out / "config.json").write_text("{}"))  # as run_training does
    events.put({"type": "result", "steps_done": STEPS, "stopped": False, "seconds": 1.0,
                "final_losses": {"loss": 1.0}, "steps_per_s": 1.0, "items_per_s": 8.0})


def endless_job(request, events, stop) -> None:
    """Reports one step, then trains until asked to stop."""
    events.put(progress(1))
    stop.wait(60)
    events.put({"type": "result", "steps_done": 1, "stopped": True, "seconds": 1.0, "final_losses": {},
                "steps_per_s": 1.0, "items_per_s": 8.0})


@pytest.fixture
def config(tmp_path: Path) -> FinetuneConfig:
    return FinetuneConfig(runs_dir=str(tmp_path / "runs"), user_models_dir=str(tmp_path / "user"), job_threads=1)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> str:
    return str(make_tiny_char_gpt(tmp_path_factory.mktemp("base") / "tiny-char-gpt"))


def start(manager: FinetuneManager, session: str, base: str) -> str:
    return manager.start(session, base, ft.prepare_text(TINY_TEXT * 3, None), ft.make_settings({"steps": STEPS}))


def test_the_log_writes_one_line_per_event_and_samples_as_files(tmp_path: Path) -> None:
    log = pickle.loads(pickle.dumps(EventLog(tmp_path)))  # it travels to a spawned process
    log.put(progress(2, preview_png=png(200)))
    log.put({"type": "status", "status": "first_step"})
    lines = (tmp_path / EVENTS_FILE).read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    first = json.loads(lines[0])
    assert "preview_png" not in first and first["preview_file"] == "samples/step-0000002.png"
    assert Image.open(tmp_path / first["preview_file"]).getpixel((0, 0)) == 200
    log.close()


def test_a_torn_last_line_is_left_for_later_then_skipped(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    EventLog(tmp_path).put(progress(1))
    tail = EventTail(path)
    assert [e["step"] for e in tail.read()] == [1]
    with open(path, "a") as file:
        file.write('{"type": "progress", "st')  # the writer died mid-line
    assert tail.read() == []  # not complete: nothing read, nothing lost
    assert [e["step"] for e in read_events(path)] == [1]
    EventLog(tmp_path).put(progress(2))  # a resumed job appends after the torn piece
    assert [e["step"] for e in tail.read()] == [2]
    assert [e["step"] for e in read_events(path)] == [1, 2]


def test_a_restarted_app_lists_past_jobs_with_curve_and_samples(config, base) -> None:
    first = FinetuneManager(config, target=quick_job)
    job = start(first, A, base)
    done = first.wait(A, job, 60)
    first.shutdown()
    assert done.status == "done" and [row["step"] for row in done.history] == [1, 2, 3, 4]

    events = Path(config.runs_dir) / A / "jobs" / job / EVENTS_FILE
    with open(events, "a") as file:
        file.write('{"type": "progress", "step": 5, "loss')  # torn by a crash of the writer
    again = FinetuneManager(config)  # a new app on the same folders
    [listed] = again.jobs(A)
    assert listed.id == job and listed.status == "done" and listed.can_save and not listed.can_stop
    assert listed.history == done.history and listed.losses == done.losses and listed.step == STEPS
    samples = [p for p in listed.previews if "image" in p]
    assert [p["step"] for p in samples] == [2, 4]
    assert [Image.open(p["image"]).getpixel((0, 0)) for p in samples] == [80, 160]
    assert again.latest(A).id == job
    assert again.save(A, job, "kept").is_dir()  # what it learned can still be kept


def test_a_job_without_its_process_after_a_restart_is_stopped_not_running(config, base) -> None:
    first = FinetuneManager(config, target=endless_job)
    job = start(first, A, base)
    while first.view(A, job).step < 1:
        time.sleep(0.05)
    try:
        after = FinetuneManager(config).view(A, job)  # the app restarted while the job was training
        later = FinetuneManager(config).view(A, job)  # and once more
    finally:
        first.shutdown()
    assert after.status == "stopped" and "interrupted" in after.message and not after.can_stop
    assert after.history == [{"step": 1, "loss": 4.0}] and after.step == 1
    assert (later.status, later.message) == (after.status, after.message)


def test_one_visitors_jobs_never_appear_for_another(config, base) -> None:
    first = FinetuneManager(config, target=quick_job)
    job = start(first, A, base)
    first.wait(A, job, 60)
    first.shutdown()
    theirs = Path(config.runs_dir) / B / "jobs" / job
    shutil.copytree(Path(config.runs_dir) / A / "jobs" / job, theirs)  # a record in another's folder
    again = FinetuneManager(config)
    assert again.jobs(B) == [] and again.latest(B) is None
    with pytest.raises(ValueError, match="No such job"):
        again.view(B, job)
    assert [v.id for v in again.jobs(A)] == [job]
    assert again.jobs("../" + A) == [] and again.latest(None) is None


def test_expired_jobs_go_with_their_events_and_samples(config, base) -> None:
    config.public = PublicSettings(user_ttl_hours=1.0)
    manager = FinetuneManager(config, target=quick_job)
    job = start(manager, A, base)
    manager.wait(A, job, 60)
    folder = Path(config.runs_dir) / A / "jobs" / job
    assert (folder / EVENTS_FILE).is_file() and any((folder / "samples").iterdir())
    assert folder in manager.sweep(now=time.time() + 2 * 3600)
    assert not folder.exists() and manager.jobs(A) == []
    assert FinetuneManager(config).jobs(A) == []


# ---- a half-written export is never served (issue 25, item 8) --------------------------------

def _export_model(out: Path, weights: bytes = b"W" * 4096) -> None:
    (out / "config.json").write_text('{"model_type": "gpt2"}')
    (out / "model.safetensors").write_bytes(weights)


def test_an_export_stopped_midway_is_not_complete(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def dies_midway(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # the process is stopped while writing

    with pytest.raises(KeyboardInterrupt):
        export_whole(out, dies_midway)
    assert (out / "config.json").is_file() and not export_complete(out)
    export_whole(out, _export_model)  # a whole one
    assert export_complete(out)
    assert json.loads((out / EXPORT_MARK).read_text())["files"] == {"config.json": 22, "model.safetensors": 4096}
    with pytest.raises(KeyboardInterrupt):  # a resumed run's export, stopped over the whole one
        export_whole(out, dies_midway)
    assert not export_complete(out)  # the mix of old and new files is not offered
    export_whole(out, _export_model)
    (out / "model.safetensors").write_bytes(b"W" * 100)  # truncated after the fact (disk full, a copy)
    assert not export_complete(out)


def test_a_restarted_app_never_serves_a_half_written_export(config, base) -> None:
    first = FinetuneManager(config, target=quick_job)
    job = start(first, A, base)
    assert first.wait(A, job, 60).status == "done"
    first.shutdown()
    out = Path(config.runs_dir) / A / "jobs" / job / "out"
    (out / EXPORT_MARK).unlink()  # as a job stopped mid-export leaves it: files, no manifest
    (out / "model.safetensors").write_bytes(b"torn")
    again = FinetuneManager(config)  # the app after a restart, on the same folders
    [listed] = again.jobs(A)
    assert listed.status == "done" and not listed.can_save
    with pytest.raises(ValueError, match="Nothing to save yet|nothing to save|yet"):
        again.save(A, job, "torn-model")
    with pytest.raises(ValueError, match="yet"):
        again.zip_model(A, job)
    assert again.saved_models(A) == []
    export_whole(out, _export_model)  # a whole export: offered, and saved without the manifest
    assert again.jobs(A)[0].can_save
    saved = again.save(A, job, "whole-model")
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
