"""Streaming handlers send the slow outputs (stats, seed, ...) fresh once a second and the same
values in between, never `gr.skip()` (which makes Gradio rebuild the component on every update);
and Gradio's queue is tuned so an idle app costs little CPU and a long-lived one no pandas per event."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import pytest

from aigc_demo.services import textgen
from aigc_demo.ui import code, generation, text
from aigc_demo.ui.generation import StatsPacer
from aigc_demo.ui.launch import ANALYTICS_EVERY, ANALYTICS_KEPT, QUEUE_POLL_S, calm_queue

SAMPLING = (5, 0.8, 0, 1.0, 1.0, 1, False)  # max tokens, temperature, top-k, top-p, penalty, seed, random


def updates(count: int):
    """`count` updates 10 ms apart, the last one done."""
    for i in range(1, count + 1):
        time.sleep(0.01)
        yield textgen.GenerationUpdate(text="ab" * i, new_tokens=2 * i, tokens_per_s=50.0 + i,
                                       time_to_first_token_s=0.05, elapsed_s=0.01 * i, seed=7,
                                       prompt_tokens=3, done=i == count)


def is_skip(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update"


def test_the_pacer_holds_values_between_refreshes() -> None:
    pacer = StatsPacer(every_s=0.2)
    made: list[int] = []
    stream = list(updates(6))

    def fresh(i: int):
        made.append(i)
        return (f"stats {i}",)

    held = [pacer.hold(update, lambda i=i: fresh(i)) for i, update in enumerate(stream)]
    assert made == [0, 5]  # the first update and the last (done) one; none due in between
    assert held == [("stats 0",)] * 5 + [("stats 5",)]
    time.sleep(0.25)
    assert pacer.hold(stream[0], lambda: ("later",)) == ("later",)  # due again after every_s


@pytest.mark.parametrize("name", ["text", "code", "chat"])
def test_streaming_handlers_never_skip_the_slow_outputs(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(textgen, "stream_text", lambda *a, **k: updates(8))
    monkeypatch.setattr(textgen, "stream_code", lambda *a, **k: updates(8))
    monkeypatch.setattr(textgen, "stream_chat", lambda *a, **k: updates(8))
    progress = lambda *a, **k: None  # noqa: E731
    if name == "text":
        yields = list(text.complete("org/model", "To be", *SAMPLING, progress=progress))
        slow = [y[1:] for y in yields]  # stats, prompt + text, seed
        assert yields[-1][0] == "ab" * 8 and yields[-1][2] == "To be" + "ab" * 8
    elif name == "code":
        yields = list(code.complete_code("org/model", "def f():\n", True, *SAMPLING, progress=progress))
        slow = [y[1:] for y in yields]  # stats, parse badge, seed, code before
        assert [y[2] for y in yields[:-1]] == [""] * 8  # no stale verdict while the code grows
        assert "parse-badge" in yields[-1][2]
    else:
        yields = list(text.chat("org/model", "hi", [], "", *SAMPLING, progress=progress))
        assert yields[0][0] == yields[-1][0] == ""  # emptied at the first update and the last (the API's result)
        assert all(is_skip(y[0]) for y in yields[1:-1])  # left to the visitor in between
        slow = [y[2:] for y in yields]  # stats, seed
    assert not any(is_skip(v) for outputs in slow for v in outputs)
    stats = [outputs[0] for outputs in slow]
    assert "2 tokens" in stats[0] and "16 tokens" in stats[-1]  # fresh at the first and the last update
    assert stats[1:7] == [stats[0]] * 6  # the same value in between (an empty diff for Gradio)


def test_calm_queue_polls_less_and_summarises_analytics_rarely() -> None:
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.queue()
    queue = demo._queue
    assert queue.sleep_when_free < QUEUE_POLL_S  # gradio's own default: 1 ms
    calm_queue(demo)
    assert queue.sleep_when_free == QUEUE_POLL_S
    assert queue.ANAYLTICS_CACHE_FREQUENCY == ANALYTICS_EVERY and queue.ANALYTICS_MAX_EVENTS == ANALYTICS_KEPT


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def app_pid(port: str) -> int:
    """The pid of this process's child that serves `port` (`python -m aigc_demo serve ... --port`)."""
    import os

    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == os.getpid() and b"serve" in args and port.encode() in args:
            return int(proc.name)
    raise AssertionError(f"no app process on port {port}")


def test_an_idle_app_uses_little_cpu(weights_dir: Path) -> None:
    """The launched app, left alone for 4 s, uses under 6% of a core (Gradio's own polling used 11%)."""
    from aigc_demo.bench.concurrency import served_app

    with served_app(weights_dir, "cpu") as url:
        pid = app_pid(url.rstrip("/").rsplit(":", 1)[1])
        time.sleep(2)  # start-up work settles
        before = cpu_seconds(pid)
        time.sleep(4)
        used = (cpu_seconds(pid) - before) / 4
    assert used < 0.06, f"the idle app used {used:.1%} of a core"
