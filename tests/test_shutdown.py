"""The app as Spaces and Docker run it: `python app.py` in its own process, stopped by a signal.

SIGTERM during a fine-tune job: the job stops keeping a checkpoint, its process ends, and no
process of the app is left after 10 s; weights/ is unchanged, and after a restart the job is
listed stopped and its export is offered only if it was written whole. SIGKILL (no shutdown code runs): the orphaned worker
notices its parent is gone and ends by itself.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from gradio_client import Client

from tests.conftest import free_port
from tests.factories import TINY_TEXT, make_tiny_char_gpt

ROOT = Path(__file__).resolve().parents[1]
MARKER = "AIGC_TEST_PROCESS_MARKER"


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (the app and everything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if f"{MARKER}={marker}".encode() in environ.split(b"\0") and "\nState:\tZ" not in status:
            found.append(int(entry.name))
    return found


def wait_until(check, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


@pytest.fixture
def app_process(tmp_path: Path):
    """`python app.py --port P` with temp runs and a one-model weights folder; yields (proc, url, marker, runs)."""
    weights = tmp_path / "weights"
    make_tiny_char_gpt(weights / "tiny-char-gpt")
    runs = tmp_path / "runs"
    marker = uuid.uuid4().hex
    port = free_port()
    env = dict(os.environ, AIGC_RUNS_DIR=str(runs), AIGC_WEIGHTS_DIR=str(weights), HF_HUB_OFFLINE="1",
               AIGC_DEVICE="cpu", GRADIO_ANALYTICS_ENABLED="False", AIGC_FT_THREADS="1", **{MARKER: marker})
    env.pop("AIGC_USER_MODELS_DIR", None)
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    client = None
    deadline = time.monotonic() + 240
    while client is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            client = Client(url, verbose=False)
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    if client is None:
        proc.kill()
        pytest.fail(f"the app did not start: {(tmp_path / 'app.log').read_text()[-3000:]}")
    yield proc, client, marker, runs, weights
    for pid in marked_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    log.close()


def start_long_job(client: Client, weights: Path) -> dict:
    client.predict(model_ref="tiny-char-gpt", source_kind="text", text_path=None, files=None,
                   text_value=TINY_TEXT * 4, steps_n=5000, batch_size=4, learning_rate=1e-3,
                   sample_every_n=0, block=16, api_name="/finetune_start")
    view: dict = {}

    def training() -> bool:
        nonlocal view
        view = client.predict("", api_name="/finetune_status")
        assert view["status"] not in ("failed", "done"), view
        return view["status"] == "running" and view["step"] > 0

    assert wait_until(training, 300, 0.5), view  # a loaded CI machine imports torch slowly
    return view


def log_tail(runs: Path) -> str:
    log = runs.parent / "app.log"
    return log.read_text(errors="replace")[-1500:] if log.is_file() else ""


def checkpoints(runs: Path) -> list[Path]:
    return [p for p in runs.glob("finetune/*/jobs/*/out/checkpoint") if p.is_dir() and any(p.iterdir())]


def digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` by its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sigterm_stops_the_job_with_a_checkpoint_and_leaves_no_process(app_process, tmp_path: Path) -> None:
    proc, client, marker, runs, weights = app_process
    shipped_before, weights_before = digest(ROOT / "weights"), digest(weights)
    start_long_job(client, weights)
    before = set(marked_pids(marker))
    assert len(before) >= 2, "the job runs in its own process"  # the app, the worker (+ resource tracker)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    gone = wait_until(lambda: not marked_pids(marker), 10.0, 0.1)
    elapsed = time.monotonic() - started
    print(f"SIGTERM to no process left: {elapsed:.2f} s (exit code {proc.poll()})")
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200] for pid in marked_pids(marker)
            if Path(f"/proc/{pid}/cmdline").exists()}
    assert gone, f"still running 10 s after SIGTERM: {left}; log: {log_tail(runs)}"
    assert proc.wait(timeout=1) == 0
    assert checkpoints(runs), "the stopped job kept no checkpoint"
    assert digest(weights) == weights_before and digest(ROOT / "weights") == shipped_before  # weights/ untouched
    # After a restart (a new manager on the same folders): the job is stopped, resumable, and its
    # export is offered only if it is whole (training/export_mark.py).
    from safetensors import safe_open

    from aigc_demo.services.job_config import FinetuneConfig
    from aigc_demo.services.jobs import FinetuneManager
    from aigc_demo.training.export_mark import export_complete

    again = FinetuneManager(FinetuneConfig(runs_dir=str(runs / "finetune"), user_models_dir=str(tmp_path / "user")))
    [job] = again.jobs(client.session_hash)
    out = runs / "finetune" / client.session_hash / "jobs" / job.id / "out"
    assert job.status == "stopped" and job.can_resume and not job.can_stop, job
    assert job.can_save == export_complete(out)
    if job.can_save:  # the whole export reads back
        with safe_open(str(out / "model.safetensors"), "pt") as weights_file:
            assert len(list(weights_file.keys())) > 0
        assert again.save(client.session_hash, job.id, "after-restart").is_dir()
    again.shutdown(timeout=0.0)


def test_a_worker_whose_app_died_ends_by_itself(app_process) -> None:
    proc, client, marker, runs, weights = app_process
    start_long_job(client, weights)
    workers = [pid for pid in marked_pids(marker) if pid != proc.pid]
    assert workers
    proc.kill()  # no shutdown code runs
    proc.wait(timeout=5)
    gone = wait_until(lambda: not marked_pids(marker), 15.0, 0.2)
    assert gone, f"orphaned processes still running 15 s after the app died: {marked_pids(marker)}"


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None


def load_text_model(client: Client, marker: str, app_pid: int) -> list[int]:
    """Stream once from the tiny model, so its model-server process runs; returns that process."""
    result = client.predict("tiny-char-gpt", "To be", 20, 0.8, 0, 1.0, 1.0, 1, False, api_name="/text_generate")
    assert "20 tokens" in result[1], result
    pids = marked_pids(marker)
    # forked by the fork server (the app's child), not by the app: the model server
    servers = [pid for pid in pids if parent(pid) not in (app_pid, None) and parent(pid) in pids]
    assert servers, "the text model decodes in a process of its own"
    return servers


def test_sigterm_ends_the_text_model_servers_too(app_process) -> None:
    proc, client, marker, runs, weights = app_process
    servers = load_text_model(client, marker, proc.pid)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    # the model server is closed with the jobs; the fork server it came from (shared with the jobs)
    # ends with the app, its interpreter tearing torch & co down: slow on a loaded machine
    assert wait_until(lambda: not set(servers) & set(marked_pids(marker)), 10.0, 0.1), \
        f"the model server is still running 10 s after SIGTERM: {servers}"
    print(f"SIGTERM to the model server gone: {time.monotonic() - started:.2f} s")
    gone = wait_until(lambda: not marked_pids(marker), 30.0, 0.1)
    print(f"SIGTERM to no process left (a text model loaded): {time.monotonic() - started:.2f} s")
    assert gone, f"still running 30 s after SIGTERM: {marked_pids(marker)}"
    assert proc.wait(timeout=1) == 0


def test_a_text_model_server_whose_app_died_ends_by_itself(app_process) -> None:
    proc, client, marker, runs, weights = app_process
    servers = load_text_model(client, marker, proc.pid)
    proc.kill()  # no shutdown code runs: the server reads EOF on its connection
    proc.wait(timeout=5)
    assert wait_until(lambda: not set(servers) & set(marked_pids(marker)), 10.0, 0.2), \
        f"the model server is still running 10 s after its app died: {servers}"
    gone = wait_until(lambda: not marked_pids(marker), 30.0, 0.2)
    assert gone, f"processes still running 30 s after the app died: {marked_pids(marker)}"
