"""How long a fine-tune will take here, measured before Start (issue #10: "no idea how long it takes").

A probe process (training/finetune_probe.py) runs a few real steps of the chosen model with the
chosen batch and context size; the result is cached per model and settings that change the cost
of a step, so changing only the number of steps re-estimates at once. The estimate is

    startup (process start, imports, loading) + steps x seconds per step + previews x seconds per preview
    + the export (weights, card and sample grid, timed by saving the probe's model)

plus the probe's peak memory. Probes run one at a time.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from aigc_demo.errors import UserError
from aigc_demo.services.finetune import BaseModel
from aigc_demo.services.job_process import job_context
from aigc_demo.training.finetune import JobRequest
from aigc_demo.training.finetune_probe import run_probe

PROBE_TIMEOUT_S = 180.0


@dataclass
class Estimate:
    """A pre-flight estimate for one job, from a measured probe."""

    steps: int
    seconds_per_step: float
    startup_s: float
    preview_s: float
    previews: int
    total_s: float
    export_s: float
    peak_mb: float
    steps_timed: int
    steps_in_90s: int  # how many steps (previews included) a 90-second run holds here

    def public(self) -> dict[str, Any]:
        return asdict(self)


def probe_key(base: BaseModel, settings: Any, threads: int, cpu: bool) -> tuple:
    """What changes the cost of one step (not the number of steps, the seed or the learning rate)."""
    s = settings
    key: tuple = (base.ref, base.family, s.batch_size, s.optimizer, threads, cpu)
    if base.family == "gan":
        key += (s.gan_loss,)
    if base.family in ("gpt", "lora"):
        key += (s.block_size,)
    if base.family == "lora":
        key += (s.lora_rank,)
    if base.family == "diffusion":
        key += (s.sampler_steps,)  # the cost of a preview
    return key


class Prober:
    """Runs probes in a spawned process, one at a time, and remembers their results."""

    def __init__(self, target: Any = None, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.target = target  # the probe process's main (tests may swap it)
        self.timeout_s = timeout_s
        self._cache: dict[tuple, dict[str, Any]] = {}
        self._lock = threading.Lock()  # one probe at a time: probes compete with jobs for the CPU
        self._process: Any = None  # the probe running now, if any

    def cached(self, key: tuple) -> dict[str, Any] | None:
        return self._cache.get(key)

    def measure(self, base: BaseModel, settings: Any, threads: int, cpu: bool) -> dict[str, Any]:
        """The probe's figures for these settings (cached); ValueError when it fails."""
        def request(folder: str) -> JobRequest:
            return JobRequest(job_id="probe", family=base.family, base=base.ref, base_title=base.title, data={},
                              data_summary="probe", settings=settings, out_dir=folder, threads=threads, cpu=cpu)
        return self.measure_request(probe_key(base, settings, threads, cpu), request)

    def measure_request(self, key: tuple, request: Callable[[str], JobRequest]) -> dict[str, Any]:
        """The figures of a probe of `request(scratch_folder)` (a fine-tune's or a Lab's), cached by `key`."""
        if key in self._cache:
            return self._cache[key]
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            result = self._run(request)
            self._cache[key] = result
            return result

    def cancel(self) -> None:
        """End the probe running now (a job is starting: it should have the CPU to itself)."""
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()

    def _wait(self, process: Any, results: Any) -> dict[str, Any] | None:
        """The probe's reply; None when the process ended without one (cancelled or killed)."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            try:
                return results.get(timeout=0.5)
            except queue.Empty:
                if not process.is_alive():
                    try:
                        return results.get(timeout=0.5)
                    except queue.Empty:
                        return None
        raise queue.Empty

    def _run(self, make_request: Callable[[str], JobRequest]) -> dict[str, Any]:
        folder = tempfile.mkdtemp(prefix="aigc-probe-")
        request = make_request(folder)
        ctx = job_context()
        results = ctx.Queue()
        process = ctx.Process(target=self.target or run_probe, args=(request, folder, time.time(), results),
                              daemon=True, name="finetune-probe")
        process.start()
        self._process = process
        try:
            reply = self._wait(process, results)
        except queue.Empty:
            if process.exitcode is not None and process.exitcode < 0:
                raise UserError("The speed probe was cancelled: a job started.") from None
            raise UserError(f"Could not measure the speed within {self.timeout_s:.0f} s: this machine is very "
                             "busy or the model is large. Try a smaller batch or context.") from None
        finally:
            self._process = None
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
            shutil.rmtree(folder, ignore_errors=True)
        if reply is None:
            raise UserError("The speed probe was cancelled: a job started.")
        if reply.get("type") != "result":
            raise UserError(f"The speed probe failed: {reply.get('message', 'unknown error')}")
        reply.pop("type")
        return reply


def estimate(prober: Prober, base: BaseModel, settings: Any, threads: int, cpu: bool,
             measure_now: bool = True) -> Estimate:
    """The measured estimate for a job with `settings` on `base`; with `measure_now` False only a
    cached measurement is used (LookupError otherwise), e.g. while jobs train."""
    if not measure_now and prober.cached(probe_key(base, settings, threads, cpu)) is None:
        raise LookupError("no measurement for these settings yet")
    figures = prober.measure(base, settings, threads, cpu)
    steps = int(settings.steps)
    previews = steps // settings.sample_every if settings.sample_every else 0
    previews += 1  # the final sample after training
    export_s = float(figures.get("export_s", 0.0))
    total = figures["startup_s"] + steps * figures["seconds_per_step"] + previews * figures["preview_s"] + export_s
    return Estimate(steps=steps, seconds_per_step=figures["seconds_per_step"], startup_s=figures["startup_s"],
                    preview_s=figures["preview_s"], previews=previews, total_s=total, export_s=export_s,
                    peak_mb=figures["peak_mb"], steps_timed=int(figures["steps_timed"]),
                    steps_in_90s=steps_for(figures, 90.0, settings.sample_every))


def steps_for(prober_figures: dict[str, Any], seconds: float, sample_every: int) -> int:
    """How many steps fit in `seconds` (after startup), previews included."""
    per_step = prober_figures["seconds_per_step"]
    if sample_every:
        per_step += prober_figures["preview_s"] / sample_every
    left = max(0.0, seconds - prober_figures["startup_s"] - float(prober_figures.get("export_s", 0.0)))
    return max(1, int(left / per_step)) if per_step > 0 else 1


_prober: Prober | None = None
_prober_lock = threading.Lock()


def get_prober() -> Prober:
    """The app's one prober."""
    global _prober
    with _prober_lock:
        if _prober is None:
            _prober = Prober()
        return _prober
