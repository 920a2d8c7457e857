"""A short probe of a fine-tuning job: a few real training steps, timed, before the visitor presses Start.

The probe builds exactly the task a job would build (same family, model, batch, context, threads)
on stand-in data of the same shape (random 28x28 digits, or repeated English text), runs one
warm-up step and then times steps until about `min_seconds` have passed, times one preview, and
reads the process's peak memory. It runs in its own process, like a job, so what it measures is
what a job on this machine costs. Nothing here imports gradio.
"""

from __future__ import annotations

import resource
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.training.engine import TrainResult
from aigc_demo.training.finetune import LAB, JobRequest, build_task, describe_error

# Stand-in text for language models: plain English prose, repeated to the length a context needs.
PROBE_TEXT = (
    "It was a bright cold day in April, and the clocks were striking thirteen. The hallway smelt of "
    "boiled cabbage and old rag mats. At one end of it a coloured poster, too large for indoor display, "
    "had been tacked to the wall. It depicted simply an enormous face, more than a metre wide: the face "
    "of a man of about forty-five, with a heavy black moustache and ruggedly handsome features.\n"
)


@dataclass
class ProbeResult:
    """What one probe measured on this machine."""

    startup_s: float  # process start until the model and data are ready (imports, loading)
    seconds_per_step: float  # mean over the timed steps (after one warm-up step)
    first_step_s: float  # the warm-up step alone
    preview_s: float  # one sample (image grid or text) as the job draws every `sample_every` steps
    peak_mb: float  # the probe process's peak resident memory
    steps_timed: int
    export_s: float = 0.0  # saving the result as the job does at its end (weights, card, sample grid)


def write_probe_data(family: str, folder: Path, block_size: int) -> dict[str, Any]:
    """Stand-in data of the right kind for `family` in `folder`; the job's data spec."""
    folder.mkdir(parents=True, exist_ok=True)
    if family in ("gpt", "lora"):
        repeats = max(20, (block_size * 60) // len(PROBE_TEXT) + 2)  # a 10% validation split holds a context, BPE too
        path = folder / "probe.txt"
        path.write_text(PROBE_TEXT * repeats, encoding="utf-8")
        return {"kind": "text", "path": str(path)}
    rng = np.random.default_rng(0)
    images = (rng.random((512, 28, 28)) < 0.15).astype(np.uint8) * 255
    path = folder / "probe.npz"
    np.savez(path, images=images, labels=rng.integers(0, 10, 512).astype(np.int64))
    return {"kind": "images", "path": str(path)}


def probe_request(req: JobRequest, folder: Path) -> JobRequest:
    """The job's request with stand-in data and a scratch output folder (a Lab keeps its real data:
    loading it is part of what its start costs)."""
    if req.family == LAB:
        return replace(req, out_dir=str(folder / "out"), resume=False)
    data = write_probe_data(req.family, folder / "data", req.settings.block_size)
    settings = replace(req.settings, steps=10_000, log_every=1)
    return replace(req, data=data, data_summary="probe", settings=settings, out_dir=str(folder / "out"),
                   resume=False)


def measure(req: JobRequest, launched_at: float, min_seconds: float = 2.0, max_steps: int = 8) -> ProbeResult:
    """Build the job's task and time its steps (see the module notes)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    if req.threads:
        torch.set_num_threads(req.threads)
    if req.family == LAB:
        from aigc_demo.training.lab import measure_lab

        return ProbeResult(**measure_lab(req, launched_at, min_seconds, max_steps))
    set_seed(req.settings.seed)
    task, _ = build_task(req)
    accelerator = Accelerator(cpu=req.cpu)
    task.build(accelerator)
    ready = time.time()
    started = time.perf_counter()
    task.train_step(0)
    first = time.perf_counter() - started
    timed, began = 0, time.perf_counter()
    while timed < max_steps and (timed < 2 or time.perf_counter() - began < min_seconds):
        task.train_step(timed + 1)
        timed += 1
    per_step = (time.perf_counter() - began) / timed
    preview_s = 0.0
    if req.settings.sample_every:
        began = time.perf_counter()
        task.preview()
        preview_s = time.perf_counter() - began
    export_s = time_export(task, Path(req.out_dir), timed + 1, per_step)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes
    return ProbeResult(startup_s=max(0.0, ready - launched_at), seconds_per_step=per_step, first_step_s=first,
                       preview_s=preview_s, export_s=export_s, peak_mb=peak_mb, steps_timed=timed)


def time_export(task: Any, out_dir: Path, steps_done: int, per_step: float) -> float:
    """Seconds the job's export takes (into the probe's scratch folder). Why: a diffusion job draws a
    100-digit sample grid when it saves, which cost more than two previews and was missing from the
    estimate."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = TrainResult(steps_done=steps_done, stopped=False, seconds=steps_done * per_step, final_losses={},
                         steps_per_s=1.0 / per_step if per_step > 0 else 0.0, items_per_s=0.0,
                         out_dir=str(out_dir))
    began = time.perf_counter()
    task.export(out_dir, result)
    return time.perf_counter() - began


def run_probe(req: JobRequest, folder: str, launched_at: float, results: Any) -> None:
    """The probe process's main: one result (or one error) on `results`, then exit."""
    try:
        result = measure(probe_request(req, Path(folder)), launched_at)
        results.put({"type": "result", **asdict(result)})
    except BaseException as err:  # noqa: BLE001 - reported to the page

        results.put({"type": "error", "message": describe_error(err), "traceback": traceback.format_exc()})
