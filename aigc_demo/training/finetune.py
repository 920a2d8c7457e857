"""Fine-tuning on a visitor's data: the settings a visitor picks, the job request, the job process.

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

import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from aigc_demo.data.images import png_bytes
from aigc_demo.errors import UserError
from aigc_demo.training.engine import OPTIMIZERS, ProgressEvent, TrainSettings, run_training
from aigc_demo.training.finetune_card import FinetuneOrigin

FAMILIES = ("gan", "vae", "gpt", "lora", "diffusion")
LAB = "lab"  # a job of the Lab tab: several runs side by side (training/lab.py), not one fine-tune
MAX_LR = 1.0  # above this every family here diverges at once
MAX_SAMPLER_STEPS = 50  # diffusion previews: DPM-Solver++ gains nothing visible beyond ~25


@dataclass
class FinetuneSettings:
    """What a visitor chooses. Defaults show a visible change within a minute on a laptop CPU."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 2e-4
    optimizer: str = "adam"  # adam | rmsprop | sgd
    seed: int = 0
    gan_loss: str = "nsgan"  # nsgan | hinge | wgan-gp
    kl_weight: float = 1.0  # VAE: weight of the KL term
    sample_every: int = 25  # a preview every N steps
    log_every: int = 5
    block_size: int = 128  # GPT / LoRA context in tokens (capped by the model and the data)
    lora_rank: int = 8
    unlabelled_digit: int = 0  # GAN, diffusion: the class of images without a digit (-1: diffusion's "no digit")
    sampler_steps: int = 0  # diffusion: DPM-Solver++ steps of each preview (0: the model's own)

    def check(self, max_steps: int = 0, family: str | None = None) -> None:
        """Refuse settings that cannot train, with a message a visitor can act on (`family`: the
        base model's, for the settings only one family has)."""
        if not isinstance(self.steps, int) or self.steps < 1:
            raise UserError(f"Steps must be a whole number of at least 1 (got {self.steps}).")
        if max_steps and self.steps > max_steps:
            raise UserError(f"Steps can be at most {max_steps} on this server (got {self.steps}).")
        if not 1 <= self.batch_size <= 1024:
            raise UserError(f"Batch size must be between 1 and 1024 (got {self.batch_size}).")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"The learning rate must be a positive number (got {self.lr}): "
                            "with 0 nothing would change. Try 2e-4 for a GAN, 1e-3 for a VAE.")
        if self.lr > MAX_LR:
            raise UserError(f"A learning rate of {self.lr:g} makes training diverge at once: "
                            f"use at most {MAX_LR:g} (2e-4 for a GAN, 1e-3 for a VAE, 3e-4 for a GPT).")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"The optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r}).")
        from aigc_demo.training.losses import (
            GAN_LOSSES,  # imports torch: only when checking
        )

        if self.gan_loss not in GAN_LOSSES:
            raise UserError(f"The GAN loss must be one of {', '.join(GAN_LOSSES)} (got {self.gan_loss!r}).")
        if not (math.isfinite(self.kl_weight) and 0 <= self.kl_weight <= 100):
            raise UserError(f"The KL weight must be between 0 and 100 (got {self.kl_weight}).")
        if self.sample_every < 0 or self.log_every < 1:
            raise UserError("Preview and log intervals must be positive.")
        if not 8 <= self.block_size <= 4096:
            raise UserError(f"The context length must be between 8 and 4096 tokens (got {self.block_size}).")
        if not 1 <= self.lora_rank <= 256:
            raise UserError(f"The LoRA rank must be between 1 and 256 (got {self.lora_rank}).")
        if family == "gan" and self.unlabelled_digit == -1:
            raise UserError("A GAN has no \"no digit\" class: pick a digit 0-9 for the images without a label.")
        if not -1 <= self.unlabelled_digit <= 9:
            raise UserError(f"The digit for unlabelled images must be 0-9 (got {self.unlabelled_digit}).")
        if not 0 <= self.sampler_steps <= MAX_SAMPLER_STEPS:
            raise UserError(f"Sampler steps must be between 0 (the model's own) and {MAX_SAMPLER_STEPS} "
                            f"(got {self.sampler_steps}).")
        if not 0 <= self.seed < 2**32:
            raise UserError(f"The seed must be between 0 and 2^32 - 1 (got {self.seed}).")


# Sized from the speed probe (services/finetune_probe.py) on a shared 2-core CPU with one torch thread,
# under load: GAN 1.6 s/step at batch 16, VAE 0.43 s/step at batch 32, char GPT 5.4 s/step at
# batch 4 x 64 tokens; diffusion 0.4-0.6 s/step at batch 16 and 2.8-3.9 s per 40-digit preview at
# 10 sampler steps. An idle laptop core is several times faster: these runs take 1-2 minutes there.
# The tab shows the measured estimate for this machine before Start, and how many steps fit in 90 s.
DEFAULTS: dict[str, dict[str, Any]] = {
    "gan": dict(steps=150, batch_size=16, lr=2e-4, sample_every=25),
    "vae": dict(steps=150, batch_size=32, lr=5e-4, sample_every=25),
    "gpt": dict(steps=60, batch_size=4, lr=3e-4, sample_every=20, block_size=64),
    "lora": dict(steps=30, batch_size=2, lr=1e-3, sample_every=10, block_size=64),
    "diffusion": dict(steps=150, batch_size=16, lr=5e-4, sample_every=50, unlabelled_digit=-1),
}


def default_settings(family: str) -> FinetuneSettings:
    """The starting settings the tab shows for a family."""
    if family not in DEFAULTS:
        raise UserError(f"Fine-tuning supports {', '.join(FAMILIES)} models (got {family!r}).")
    return FinetuneSettings(**DEFAULTS[family])


@dataclass
class JobRequest:
    """Everything the job process needs, as plain values (it is pickled for the job process)."""

    job_id: str
    family: str  # gan | vae | gpt | lora | diffusion
    base: str  # a weights folder, or a hub id (lora)
    base_title: str
    data: dict[str, Any]  # {"kind": "images", "path": npz} | {"kind": "builtin", "dir", "dataset"} | {"kind": "text", "path"}
    data_summary: str
    settings: FinetuneSettings
    out_dir: str
    resume: bool = False
    threads: int = 0  # torch threads in the job process (0: torch's default)
    cpu: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def origin(self) -> FinetuneOrigin:
        """What the fine-tuned folder's card and finetune.json say about where it came from."""
        return FinetuneOrigin(base=self.base, base_title=self.base_title, family=self.family,
                              data_summary=self.data_summary, settings=asdict(self.settings))


def loop_log_every(s: FinetuneSettings) -> int:
    """How often the loop logs. It draws previews only on logged steps: logging every gcd(log, preview)
    steps gives each preview the visitor asked for (a preview every 4 steps with a log every 5 would
    otherwise show none until step 20)."""
    return math.gcd(s.log_every, s.sample_every) if s.sample_every else s.log_every


def train_settings(req: JobRequest, checkpoint_every: int = 0) -> TrainSettings:
    """The loop settings of a job (no checkpoints along the way: a stopped job saves one)."""
    s = req.settings
    log_every = loop_log_every(s)
    return TrainSettings(steps=s.steps, batch_size=s.batch_size, lr=s.lr, optimizer=s.optimizer,
                         seed=s.seed, out_dir=req.out_dir, log_every=log_every,
                         sample_every=s.sample_every, checkpoint_every=checkpoint_every,
                         resume=req.resume, cpu=req.cpu, progress_bar=False)


# ---------------------------------------------------------------- the job process

def build_task(req: JobRequest) -> tuple[Any, TrainSettings]:
    """The family's training task and the loop settings for a request."""
    if req.family not in FAMILIES:
        raise UserError(f"Fine-tuning supports {', '.join(FAMILIES)} models (got {req.family!r})")
    from aigc_demo.training.finetune_tasks import make_task  # imports torch and the trainers

    settings = train_settings(req, checkpoint_every=0)
    return make_task(req, settings), settings


def event_dict(event: ProgressEvent) -> dict[str, Any]:
    """A ProgressEvent as a plain dict (previews as PNG bytes or text): safe to pickle and to store."""
    preview = event.preview
    data = {"type": "progress", "step": event.step, "total_steps": event.total_steps,
            "losses": {k: float(v) for k, v in event.losses.items()}, "elapsed_s": event.elapsed_s,
            "steps_per_s": event.steps_per_s, "items_per_s": event.items_per_s,
            "eta_s": event.eta_s if math.isfinite(event.eta_s) else None, "device": event.device,
            "done": event.done, "stopped": event.stopped, "time": time.time()}
    if isinstance(preview, str):
        data["preview_text"] = preview
    elif preview is not None:
        data["preview_png"] = png_bytes(preview)
    return data


def describe_error(err: BaseException) -> str:
    """One line a visitor can act on."""
    text = str(err) or type(err).__name__
    if isinstance(err, MemoryError) or "out of memory" in text.lower():
        return "Out of memory: lower the batch size or the context length, or pick a smaller model."
    if isinstance(err, UserError):
        return text
    return f"{type(err).__name__}: {text}"


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
