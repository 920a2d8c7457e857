"""The model-server process of a text model (generation/model_server.py, services/text_server.py):
the service's streams decode in a child process, give the same text as in this process alone or
batched, stop at once, survive a crashed child, and end the child when the model is unloaded."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from aigc_demo.errors import UserError  # noqa: E402
from aigc_demo.generation.batcher import DecodeRequest  # noqa: E402
from aigc_demo.generation.model_server import ServedModel  # noqa: E402
from aigc_demo.generation.settings import GenerationSettings  # noqa: E402
from aigc_demo.generation.stream import generate_with  # noqa: E402
from aigc_demo.loading import registry  # noqa: E402
from aigc_demo.services import textgen  # noqa: E402
from tests.factories import make_tiny_char_gpt  # noqa: E402


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except OSError:
        return False


def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(make_tiny_char_gpt(tmp_path_factory.mktemp("served") / "tiny-char-gpt"))


@pytest.fixture
def served(folder):
    model, tok = textgen.serve_causal_lm(folder)
    yield model, tok
    registry.unload_all()


def test_the_model_decodes_in_its_own_process_with_the_same_text_alone_and_batched(folder, served) -> None:
    model, tok = served
    assert isinstance(model, ServedModel) and model.pid not in (None, os.getpid())
    assert model.nbytes > 0  # counted in the memory budget although this process holds no weights
    settings = GenerationSettings(max_new_tokens=60, temperature=1.0, seed=11)
    alone = textgen.generate_text(folder, "To be", settings)
    local, local_tok = textgen.load_causal_lm(folder)  # the same model decoding in this process
    assert alone.text == generate_with(local, local_tok, "To be", settings).text
    assert alone.new_tokens == 60 and alone.stop_reason == "max_new_tokens"
    results: list = [None] * 6

    def work(i: int) -> None:
        results[i] = textgen.generate_text(folder, "To be" if i == 0 else "Whe",
                                           settings if i == 0 else GenerationSettings(max_new_tokens=80, seed=i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results[0].text == alone.text  # batched with five others: the same text for the seed
    assert all(r is not None and r.new_tokens == 80 for r in results[1:])
    assert len({r.text for r in results[1:]}) > 1


def test_stop_ends_a_served_stream_within_half_a_second(folder, served) -> None:
    stop = threading.Event()
    stopped_at = None
    updates = []
    for update in textgen.stream_text(folder, "To", GenerationSettings(max_new_tokens=1000, seed=3), stop,
                                      update_interval_s=0):
        updates.append(update)
        if len(updates) == 3:
            stop.set()
            stopped_at = time.perf_counter()
    assert time.perf_counter() - stopped_at < 0.5
    assert updates[-1].done and updates[-1].stop_reason == "stopped"
    assert updates[-1].new_tokens < 1000
    # the child dropped the row: a new request still gets the whole model
    assert textgen.generate_text(folder, "To", GenerationSettings(max_new_tokens=5, seed=1)).new_tokens == 5


def test_a_crashed_server_is_a_clear_message_and_starts_again(folder, served) -> None:
    model, _ = served
    first = model.pid
    stream = textgen.stream_text(folder, "To", GenerationSettings(max_new_tokens=1000, seed=3), update_interval_s=0)
    next(stream)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(UserError, match="stopped unexpectedly.*starts again with your next request"):
        for _ in stream:
            pass
    again = textgen.generate_text(folder, "To", GenerationSettings(max_new_tokens=5, seed=1))
    assert again.new_tokens == 5
    assert model.pid not in (None, first) and model.restarts == 1
    assert not alive(first)


def test_unloading_the_model_ends_its_process(folder, served) -> None:
    model, _ = served
    pid = model.pid
    assert alive(pid)
    assert registry.unload_all() >= 1
    assert wait_until(lambda: not alive(pid), 10), "the model server outlived its unload"
    with pytest.raises(UserError, match="was unloaded"):  # a stream holding the old handle is told so
        model.submit(DecodeRequest([1, 2], 3, GenerationSettings(seed=1)))
    # the next request loads it again in a fresh process
    assert textgen.generate_text(folder, "To", GenerationSettings(max_new_tokens=3, seed=1)).new_tokens == 3


def test_a_folder_that_is_not_a_model_is_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError):
        textgen.serve_causal_lm(str(tmp_path))


def test_eight_streams_on_three_models_stay_within_the_budget_the_system_tab_shows(tmp_path: Path) -> None:
    from aigc_demo.services import system

    folders = [str(make_tiny_char_gpt(tmp_path / f"tiny-{i}")) for i in range(3)]
    for ref in folders:
        textgen.serve_causal_lm(ref)
    try:
        peak: list[float] = []
        results: list = [None] * 8

        def work(i: int) -> None:
            results[i] = textgen.generate_text(folders[i % 3], "To", GenerationSettings(max_new_tokens=150, seed=i))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            peak.append(system.app_memory_mb())
            time.sleep(0.2)
        assert all(r is not None and r.new_tokens == 150 for r in results)
        report = system.system_report()
        assert report["model_processes"] == 3
        own = system._process_memory_mb()
        assert report["process_memory_mb"] > own  # the three model processes are counted
        print(f"app RAM with 8 streams on 3 models: peak {max(peak):.0f} MB (this process {own:.0f} MB), "
              f"budget {report['memory_budget_mb']} MB")
        assert max(peak) <= report["memory_budget_mb"]
    finally:
        registry.unload_all()


def _report_frozen_objects(conn) -> None:  # runs in a process forked from the fork server
    import gc
    import sys

    conn.send((gc.get_freeze_count(), "transformers.models.gpt2.modeling_gpt2" in sys.modules))


def test_forked_servers_share_the_fork_servers_imports() -> None:
    """The fork server freezes what it imported (services/fork_ready.py), so a model server's
    garbage collector never dirties those shared pages, and the GPT-2 code comes with the fork."""
    from aigc_demo.services.job_process import job_context

    ctx = job_context()
    if ctx.get_start_method() != "forkserver":
        pytest.skip("no fork server on this platform")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_report_frozen_objects, args=(child,), daemon=True)
    process.start()
    child.close()
    assert parent.poll(120), "the forked process never answered"
    frozen, gpt2_loaded = parent.recv()
    process.join(10)
    assert frozen > 100_000 and gpt2_loaded, (frozen, gpt2_loaded)  # torch and transformers: ~10^6 objects


FORK_HERE = r"""
import json, os
from multiprocessing import forkserver
from aigc_demo.services.job_process import job_context, start_fork_server_here
started = start_fork_server_here()
server = forkserver._forkserver._forkserver_pid
from tests.test_model_server import _report_frozen_objects
ctx = job_context()
parent, child = ctx.Pipe()
process = ctx.Process(target=_report_frozen_objects, args=(child,), daemon=True)
process.start()
child.close()
frozen, gpt2 = parent.recv() if parent.poll(120) else (None, None)
process.join(10)
stat = open(f"/proc/{server}/stat").read().rsplit(")", 1)[1].split()
print(json.dumps({"started": started, "server_parent": int(stat[1]), "me": os.getpid(),
                  "same_program": open(f"/proc/{server}/cmdline").read() == open("/proc/self/cmdline").read(),
                  "frozen": frozen, "gpt2": gpt2, "exit": process.exitcode}))
"""


def test_the_app_forks_its_fork_server_from_itself_and_jobs_start_from_it() -> None:
    """`start_fork_server_here` (what app.py runs first): the fork server is a fork of the app
    (same program, not a fresh `python -c`), so the app and its children share torch & co; a
    process started afterwards comes from it with the frozen imports, and exits cleanly."""
    import json
    import subprocess
    import sys

    from aigc_demo.services.job_process import job_context

    if job_context().get_start_method() != "forkserver":
        pytest.skip("no fork server on this platform")
    result = subprocess.run([sys.executable, "-c", FORK_HERE], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["started"] and report["server_parent"] == report["me"] and report["same_program"], report
    assert report["frozen"] > 100_000 and report["gpt2"] and report["exit"] == 0, report


def test_the_fork_server_is_not_forked_once_a_thread_runs() -> None:
    """A fork copies one thread: with another running, the fork server starts the usual way."""
    from aigc_demo.services.job_process import start_fork_server_here

    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    try:
        assert start_fork_server_here() is False
    finally:
        release.set()
        worker.join()


def test_a_look_inside_runs_in_the_model_server_and_matches_one_in_this_process(folder, served) -> None:
    """The served model answers a look inside itself: this process loads no second copy, and the
    figures equal those of the same model looked inside here."""
    import numpy as np

    from aigc_demo.generation.inside import look_inside_with

    text = "To be, or not to be"
    view = textgen.look_inside(folder, text, position=5, layer=0, head=1, device="cpu")
    assert [k for k in (m["key"] for m in registry.loaded()) if k.startswith("causal-lm:")] == []
    assert served[0].restarts == 0 and served[0].pid not in (None, os.getpid())
    twin, tok = textgen.load_causal_lm(folder, "cpu", eager=True)
    here = look_inside_with(twin, tok, text, position=5, layer=0, head=1)
    assert view.tokens == here.tokens and view.position == here.position == 5
    assert [t for t, _ in view.top] == [t for t, _ in here.top]
    assert np.allclose([p for _, p in view.top], [p for _, p in here.top], atol=1e-5)
    assert view.attention.shape == (len(text), len(text)) and np.allclose(view.attention, here.attention, atol=1e-5)
    assert (view.n_layers, view.n_heads) == (here.n_layers, here.n_heads)
    with pytest.raises(UserError, match="Head must be between 0 and"):  # checked here, before the child runs
        textgen.look_inside(folder, text, head=99, device="cpu")


def test_a_job_or_model_server_re_importing_app_py_gets_no_gradio() -> None:
    """multiprocessing's forkserver re-imports the main module (app.py) in every process it forks,
    as `__mp_main__`: the app's imports must stay under `__main__`, or every model server and job
    pays for gradio and the whole UI (about 115 MB each, measured)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    probe = ("import runpy, sys; runpy.run_path('app.py', run_name='__mp_main__'); "
             "print(sorted(m for m in ('gradio', 'aigc_demo.ui', 'aigc_demo.ui.launch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
