"""The one training loop every small model uses, from the CLI and from the fine-tune tab.

A model family supplies a `TrainTask` (build models and data, do one step, preview, export);
this module supplies the rest on HF Accelerate: seeding, device placement (and multi-GPU under
`accelerate launch`), a progress bar, a loss CSV, atomic checkpoints with resume, a progress
callback, a stop flag and a time budget.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from aigc_demo.training.export_mark import export_whole

OPTIMIZERS = ("adam", "rmsprop", "sgd")
CHECKPOINT_DIR = "checkpoint"


@dataclass
class TrainSettings:
    """Loop settings shared by every family (each family adds its own dataclass for the model)."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-4
    optimizer: str = "adam"  # adam | rmsprop | sgd: the three the article explains
    seed: int = 0
    out_dir: str = field(default="runs/train", metadata={"aliases": ["--out"], "help": "output folder"})
    log_every: int = 50
    sample_every: int = 0  # 0: no previews
    checkpoint_every: int = 500  # 0: only at the end
    resume: bool = False
    max_minutes: float = 0.0  # 0: no time budget
    mixed_precision: str = "no"  # no | fp16 | bf16
    cpu: bool = False  # force the CPU even when a GPU is present
    progress_bar: bool = True

    def check(self) -> None:
        """Refuse settings that cannot train, with a message a user can act on."""
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1 (got {self.steps})")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1 (got {self.batch_size})")
        if not (0 < self.lr <= 10) or not math.isfinite(self.lr):
            raise ValueError(f"learning rate must be in (0, 10] (got {self.lr})")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})")


@dataclass
class ProgressEvent:
    """What the loop reports every `log_every` steps: plain values, safe to send to a browser."""

    step: int
    total_steps: int
    losses: dict[str, float]
    elapsed_s: float
    steps_per_s: float
    items_per_s: float  # samples or tokens per second, as the task counts them
    eta_s: float
    device: str
    preview: Any = None  # a PIL image or a text, every `sample_every` steps
    done: bool = False
    stopped: bool = False


@dataclass
class TrainResult:
    steps_done: int
    stopped: bool
    seconds: float
    final_losses: dict[str, float]
    steps_per_s: float
    items_per_s: float
    out_dir: str
    history: list[dict[str, float]] = field(default_factory=list)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message says at which step and suggests a fix."""


class TrainTask(Protocol):
    """What a model family implements; the loop does everything else."""

    items_per_step: int  # samples (or tokens) one step consumes, for throughput figures

    def build(self, accelerator: Any) -> None:
        """Create models, optimizers and data, and pass them through `accelerator.prepare`."""

    def train_step(self, step: int) -> dict[str, float]:
        """One optimisation step; returns named losses as floats."""

    def preview(self) -> Any:
        """A sample to show while training (PIL image or text), or None."""

    def export(self, out_dir: Path, result: TrainResult) -> None:
        """Save the trained model in Hugging Face layout with its model card."""


def make_optimizer(name: str, params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                   weight_decay: float = 0.0, fused: bool = False) -> Any:
    """SGD (with momentum), Adam(W) or RMSprop, by name. `fused`: AdamW's one-kernel update
    (CPU and CUDA), the same algorithm as the default loop over tensors and cheaper per step."""
    import torch

    name = name.lower()
    if name == "adam":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {name!r})")


class _StepCounter:
    """The step number, saved and restored with Accelerate's checkpoint."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


def _save_checkpoint(accelerator: Any, out_dir: Path) -> None:
    """Write to a temporary folder, then swap it in, so a crash never leaves half a checkpoint."""
    final = out_dir / CHECKPOINT_DIR
    fresh, old = out_dir / f"{CHECKPOINT_DIR}.tmp", out_dir / f"{CHECKPOINT_DIR}.old"
    if accelerator.is_main_process:
        shutil.rmtree(fresh, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(fresh))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(fresh, final)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint to resume from, also when a crash happened mid-swap."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        path = Path(out_dir) / name
        if path.is_dir():
            return path
    return None


def run_training(
    task: TrainTask,
    settings: TrainSettings,
    callback: Callable[[ProgressEvent], None] | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train `task` for `settings.steps` steps (or until stopped / out of time) and export it."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    settings.check()
    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(settings.seed)
    accelerator = Accelerator(cpu=settings.cpu, mixed_precision=settings.mixed_precision)
    task.build(accelerator)
    counter = _StepCounter()
    accelerator.register_for_checkpointing(counter)
    checkpoint = find_checkpoint(out_dir) if settings.resume else None
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
    main = accelerator.is_main_process
    log_path = out_dir / "losses.csv"
    log_file = open(log_path, "a" if checkpoint and log_path.exists() else "w", newline="") if main else None
    writer: csv.DictWriter | None = None

    first_step, history, stopped = counter.step, [], False
    started = time.perf_counter()
    bar = tqdm(total=settings.steps, initial=first_step, disable=not (main and settings.progress_bar),
               desc=type(task).__name__, dynamic_ncols=True)
    losses: dict[str, float] = {}

    def report(done: bool = False, preview: Any = None) -> ProgressEvent:
        elapsed = time.perf_counter() - started
        steps_run = counter.step - first_step
        rate = steps_run / elapsed if elapsed > 0 else 0.0
        left = settings.steps - counter.step
        event = ProgressEvent(
            step=counter.step, total_steps=settings.steps, losses=dict(losses), elapsed_s=elapsed,
            steps_per_s=rate, items_per_s=rate * task.items_per_step * accelerator.num_processes,
            eta_s=left / rate if rate > 0 else float("inf"), device=str(accelerator.device),
            preview=preview, done=done, stopped=stopped,
        )
        if callback is not None and main:
            callback(event)
        return event

    try:
        while counter.step < settings.steps:
            if stop is not None and stop.is_set():
                stopped = True
                break
            if settings.max_minutes and time.perf_counter() - started > settings.max_minutes * 60:
                stopped = True
                break
            losses = task.train_step(counter.step)
            counter.step += 1
            bad = [name for name, value in losses.items() if not math.isfinite(value)]
            if bad:
                raise TrainingDiverged(
                    f"{', '.join(bad)} became {losses[bad[0]]} at step {counter.step}: "
                    "lower the learning rate or try another optimizer")
            last = counter.step == settings.steps
            if counter.step % settings.log_every == 0 or last:
                row = {"step": counter.step, **losses}
                history.append(row)
                if log_file is not None:
                    if writer is None:
                        writer = csv.DictWriter(log_file, fieldnames=list(row))
                        if log_file.tell() == 0:
                            writer.writeheader()
                    writer.writerow(row)
                    log_file.flush()
                bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
                wants_preview = settings.sample_every and counter.step % settings.sample_every == 0
                report(preview=task.preview() if wants_preview and main else None)
            bar.update(1)
            if settings.checkpoint_every and counter.step % settings.checkpoint_every == 0 and not last:
                _save_checkpoint(accelerator, out_dir)
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()

    _save_checkpoint(accelerator, out_dir)
    seconds = time.perf_counter() - started
    steps_run = counter.step - first_step
    rate = steps_run / seconds if seconds > 0 else 0.0
    result = TrainResult(
        steps_done=counter.step, stopped=stopped, seconds=seconds, final_losses=dict(losses),
        steps_per_s=rate, items_per_s=rate * task.items_per_step * accelerator.num_processes,
        out_dir=str(out_dir), history=history,
    )
    if main:  # whole or not offered: a stop mid-export leaves no export that looks finished
        export_whole(out_dir, lambda folder: task.export(folder, result))
    accelerator.wait_for_everyone()
    report(done=True, preview=task.preview() if main else None)
    return result


def settings_dict(*parts: Any) -> dict[str, Any]:
    """Merge dataclasses into one dict for `config.json` and model cards."""
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(asdict(part))
    return merged
