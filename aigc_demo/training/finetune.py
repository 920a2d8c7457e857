"""Fine-tuning on a visitor's data: the job process (settings and request: training/finetune_request.py).

A fine-tune is a normal training run (GanTask, VaeTask, GPTTask with `init_from` and the
visitor's data; see training/finetune_tasks.py, imported when a job starts), so the CLI and the
Fine-tune tab reach training by the same route. Hub and other GPT-2-style causal LMs train LoRA
adapters with `peft` instead.

`run_job` is what the job process runs (its own process, see services/job_process.py): it sends plain-dict progress
events (previews as PNG bytes or text) to `events` (anything with `.put(dict)`) and never lets
an exception escape silently. Light at import (the tab reads the settings from here); nothing
here imports gradio.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from aigc_demo.errors import UserError
from aigc_demo.training.engine import TrainSettings, run_training
from aigc_demo.training.finetune_request import (  # noqa: F401 - the request types, re-exported for callers
    DEFAULTS, FAMILIES, LAB, MAX_LR, MAX_SAMPLER_STEPS, FinetuneSettings, JobRequest, default_settings,
    describe_error, event_dict, loop_log_every, train_settings,
)

# ---------------------------------------------------------------- the job process

def build_task(req: JobRequest) -> tuple[Any, TrainSettings]:
    """The family's training task and the loop settings for a request."""
    if req.family not in FAMILIES:
        raise UserError(f"Fine-tuning supports {', '.join(FAMILIES)} models (got {req.family!r})")
    from aigc_demo.training.finetune_tasks import make_task  # imports torch and the trainers

    settings = train_settings(req, checkpoint_every=0)
    return make_task(req, settings), settings


def announce_first_step(task: Any, events: Any) -> None:
    """Tell the page when the first step starts and how long it took (the first progress event
    comes only after `log_every` steps, which on a slow machine is a long silence)."""
    inner = task.train_step
    state = {"first": True}

    def train_step(step: int) -> dict[str, float]:
        if not state["first"]:
            return inner(step)
        state["first"] = False
        events.put({"type": "status", "status": "first_step"})
        began = time.perf_counter()
        losses = inner(step)
        events.put({"type": "status", "status": "first_step_done", "seconds": time.perf_counter() - began})
        return losses

    task.train_step = train_step


PARENT_POLL_S = 0.5
ORPHAN_GRACE_S = 8.0  # an orphaned job has this long to save a checkpoint, then it exits


def app_pid() -> int:
    """The app that started this process. Not os.getppid(): a job forked from the fork server
    (services/job_process.py) has the server as its parent, and the server lives as long as its
    jobs do, so only the app's own pid says whether the app is gone."""
    parent = mp.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getppid()


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): kill(0) said it exists
        return True


def watch_parent(stop: Any, parent_pid: int, events: Any = None, poll_s: float = PARENT_POLL_S,
                 grace_s: float = ORPHAN_GRACE_S) -> threading.Thread:
    """A daemon thread that ends this process when the app that started it is gone.

    Why: the app may die without running its shutdown code (SIGKILL, a crash); its job must
    not train on for nobody. The thread asks the job to stop (it saves a checkpoint), then exits
    the process after `grace_s` seconds whatever it is doing (a queue whose reader is gone can
    block a normal exit forever)."""
    def watch() -> None:
        while process_alive(parent_pid):
            time.sleep(poll_s)
        stop.set()
        if events is not None:
            try:
                events.cancel_join_thread()  # nobody reads the queue any more: do not wait for it
            except (AttributeError, OSError, ValueError):
                pass
        time.sleep(grace_s)
        os._exit(3)

    thread = threading.Thread(target=watch, name="watch-parent", daemon=True)
    thread.start()
    return thread


def _stop_on_signals(stop: Any) -> None:
    """SIGTERM asks the job to stop (keeping what it learned); Ctrl+C, sent to the whole process
    group by a terminal, is left to the app, which stops its jobs itself."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except (ValueError, OSError):  # not the main thread (tests may call run_job in a thread)
        pass


def run_job(req: JobRequest, events: Any, stop: Any) -> None:
    """The job process's main: train, report every event, report any failure, then exit."""
    watch_parent(stop, app_pid(), events)
    _stop_on_signals(stop)
    try:
        if req.threads:
            import torch

            torch.set_num_threads(req.threads)
        events.put({"type": "status", "status": "loading"})
        if req.family == LAB:  # 2-3 runs side by side (training/lab.py)
            from aigc_demo.training.lab import run_lab

            result = run_lab(req, events, stop)
        else:
            task, settings = build_task(req)
            announce_first_step(task, events)
            result = run_training(task, settings, callback=lambda e: events.put(event_dict(e)), stop=stop)
        events.put({"type": "result", "steps_done": result.steps_done, "stopped": result.stopped,
                    "seconds": result.seconds, "final_losses": result.final_losses,
                    "steps_per_s": result.steps_per_s, "items_per_s": result.items_per_s})
    except BaseException as err:  # noqa: BLE001 - everything is reported to the page
        events.put({"type": "error", "message": describe_error(err), "traceback": traceback.format_exc()})
        _exit_now(events, 1)
    _exit_now(events, 0)


def _exit_now(events: Any, code: int) -> None:
    """Send what is queued, then end the process without the interpreter's slow teardown (seconds
    with torch loaded): a stopped job must end promptly when the app shuts down."""
    if not hasattr(events, "join_thread"):  # a plain queue (tests run jobs in a thread)
        if code:
            raise SystemExit(code)
        return
    try:
        events.close()
        events.join_thread()
    except (OSError, ValueError, AssertionError):
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
