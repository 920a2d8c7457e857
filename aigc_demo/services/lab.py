"""The Lab: 2-3 small models of one family trained side by side, differing in one choice.

A lab is one job of the Fine-tune tab's job manager (services/jobs.py), so it shares that
machinery and its public-server rules: it waits in the same fair queue as everyone's fine-tunes
(with its place in line shown), it belongs to the visitor who started it (another visitor is told
"not found"), one active job per visitor and a few per address, a job process of its own that the
app stops on shutdown, event files that outlive the app, quotas and expiry. What is the lab's own:
the request (training/lab_spec.LabSpec in the request's `extra`, run by training/lab.py), its
bounds (runs, steps, minutes), a watchdog that stops a lab whose visitor has gone (nobody asked
for its progress for `idle_s` seconds: the page asks every second, an API client when it polls),
and the view: per run its label, settings, loss curve, metric and sample grids.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aigc_demo.errors import UserError
from aigc_demo.modelcard import GALLERY_KEY, read_card_metadata
from aigc_demo.services import user_models
from aigc_demo.services.finetune_data import builtin_folder, data_roots
from aigc_demo.services.job_config import job_on_cpu
from aigc_demo.services.job_records import FINISHED, Job, save_record
from aigc_demo.services.jobs import NO_SUCH_JOB, FinetuneManager
from aigc_demo.services.visitors import check_session
from aigc_demo.training.finetune import LAB, FinetuneSettings, JobRequest
from aigc_demo.training.lab_spec import MAIN_LOSS, MAX_RUNS, MAX_STEPS, METRICS, LabSpec

CORPUS = ("tinyshakespeare", "input.txt")
CORPUS_CHARS = 300_000  # the GPT lab's text: the first 300k characters (its last 10% held out)
STATUS = {"queued": "queued", "starting": "running", "running": "running", "stopping": "running",
          "done": "done", "stopped": "stopped", "cancelled": "stopped", "failed": "failed"}
MAX_REPORTS = 40  # metric points and sample grids per run, whatever the steps


@dataclass
class LabLimits:
    """What one lab may use on this server."""

    max_runs: int = MAX_RUNS
    max_steps: int = MAX_STEPS  # per run (and at most the server's AIGC_FT_MAX_STEPS)
    max_minutes: float = 8.0  # of training; then the lab stops and keeps what it learned
    idle_s: float = 120.0  # a lab nobody asked about for this long is stopped (its visitor left)


def bounded(spec: LabSpec, limits: LabLimits, server_max_steps: int) -> LabSpec:
    """The spec checked against this server's bounds, with report intervals that keep at most
    MAX_REPORTS metric points and grids per run."""
    if isinstance(spec.values, list) and len(spec.values) > limits.max_runs:
        raise UserError(f"A lab compares at most {limits.max_runs} runs on this server.")
    spec.check(min(limits.max_steps, server_max_steps or limits.max_steps))
    least = math.ceil(spec.steps / MAX_REPORTS)
    return replace(spec, eval_every=max(spec.eval_every, least), sample_every=max(spec.sample_every, least),
                   log_every=max(spec.log_every, math.ceil(spec.steps / 200)))


def find_classifier(weights_dir: str | Path) -> Path:
    """The shipped digit classifier (GAN and diffusion labs score their samples with it)."""
    root = Path(weights_dir)
    preferred = root / "mnist-classifier"
    candidates = [preferred] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in candidates:
        try:
            family = (read_card_metadata(folder).get(GALLERY_KEY) or {}).get("family")
        except (OSError, ValueError):
            continue
        if family == "classifier" and (folder / "model.safetensors").is_file():
            return folder
    raise UserError("This lab measures its samples with the digit classifier, and this server has none "
                    "(weights/mnist-classifier): pick the VAE or the GPT lab.")


def lab_corpus(folder: Path) -> Path:
    """The GPT lab's text (the start of Tiny Shakespeare), copied into the lab's folder."""
    for root in data_roots():
        source = root.joinpath(*CORPUS)
        if source.is_file():
            target = folder / "data" / "lab.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(source, encoding="utf-8", errors="replace") as handle:
                target.write_text(handle.read(CORPUS_CHARS), encoding="utf-8")
            return target
    raise UserError("The GPT lab trains on Tiny Shakespeare, which is not on this server "
                    f"(put {'/'.join(CORPUS)} under AIGC_DATA_DIR): pick another family.")


class LabService:
    """Starts labs as jobs of `manager`, shows them, saves their runs, stops the abandoned ones."""

    def __init__(self, manager: FinetuneManager, weights_dir: str | Path, limits: LabLimits | None = None) -> None:
        self.manager, self.weights_dir = manager, str(weights_dir)
        self.limits = limits or LabLimits()
        self._seen: dict[str, float] = {}  # lab id -> when its visitor last asked about it
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None

    # -- starting ---------------------------------------------------------------------------
    def request(self, spec: LabSpec, job_id: str, folder: Path) -> JobRequest:
        """The job request of a lab: its spec and the data, classifier and bounds it runs with."""
        extra: dict[str, Any] = {"lab": spec.public(), "max_minutes": self.limits.max_minutes}
        if spec.family == "gpt":
            extra["text"] = str(lab_corpus(folder))
            extra["summary"] = f"Tiny Shakespeare, first {CORPUS_CHARS:,} characters (last 10% held out)"
        else:
            extra["data_dir"] = str(builtin_folder("mnist", self.manager.config.allow_download))
            extra["summary"] = "MNIST training split (metric on the test split)"
            if spec.family in ("gan", "diffusion"):
                extra["classifier"] = str(find_classifier(self.weights_dir))
        settings = FinetuneSettings(steps=spec.steps, batch_size=spec.batch(), seed=spec.seed,
                                    sample_every=spec.sample_every, log_every=spec.log_every)
        title = f"Lab: {spec.family.upper()}, {spec.vary}"
        return JobRequest(job_id=job_id, family=LAB, base="", base_title=title, data={"kind": "lab"},
                          data_summary=extra["summary"], settings=settings, out_dir=str(folder / "out"),
                          threads=self.manager.config.threads(), cpu=job_on_cpu(), extra=extra)

    def checked(self, spec: LabSpec) -> LabSpec:
        return bounded(spec, self.limits, self.manager.config.max_steps)

    def start(self, session: str, spec: LabSpec, client: str | None = None) -> str:
        """Queue a lab (it waits behind other visitors' jobs); returns its id."""
        spec = self.checked(spec)
        if spec.family in ("gan", "diffusion"):
            find_classifier(self.weights_dir)  # refuse before queueing
        lab_id = self.manager.submit(session, client, lambda job_id, folder: self.request(spec, job_id, folder))
        self.touch(lab_id)
        self._ensure_watch()
        return lab_id

    def estimate(self, spec: LabSpec, prober: Any, measure_now: bool = True) -> dict[str, Any]:
        """What the lab will cost here, measured by a probe process that builds its runs and times a
        few rounds (services/finetune_probe.py): startup + steps x one round of every run + reports x
        (metric and sample of every run). LookupError without `measure_now` and no cached figure."""
        spec = self.checked(spec)
        threads, cpu = self.manager.config.threads(), job_on_cpu()
        key = ("lab", spec.family, spec.vary, tuple(spec.values), spec.batch(), threads, cpu)
        if not measure_now and prober.cached(key) is None:
            raise LookupError("no measurement for this lab yet")
        figures = prober.measure_request(key, lambda folder: self.request(spec, "probe", Path(folder)))
        reports = spec.steps // spec.eval_every + 2  # step 0, every eval_every steps, the last
        total = figures["startup_s"] + spec.steps * figures["seconds_per_step"] + reports * figures["preview_s"]
        return {"runs": len(spec.values), "steps": spec.steps, "seconds_per_round": figures["seconds_per_step"],
                "startup_s": figures["startup_s"], "report_s": figures["preview_s"], "reports": reports,
                "total_s": total, "peak_mb": figures["peak_mb"], "rounds_timed": int(figures["steps_timed"])}

    def stop(self, session: str, lab_id: str) -> str:
        self._job(session, lab_id)
        return self.manager.stop(session, lab_id)

    # -- reading ----------------------------------------------------------------------------
    def _job(self, session: str, lab_id: str | None) -> Job:
        job = self.manager._get(check_session(session), lab_id)
        if job.request.family != LAB:
            raise UserError(NO_SUCH_JOB)
        return job

    def latest(self, session: str | None) -> str | None:
        """The id of the visitor's most recent lab (a reloaded page re-attaches to it)."""
        mine = [v for v in self.manager.jobs(session) if v.family == LAB]
        return mine[-1].id if mine else None

    def view(self, session: str, lab_id: str) -> dict[str, Any]:
        """The lab as plain JSON-safe values (what the page draws and `/lab_status` returns)."""
        job = self._job(session, lab_id)
        self.touch(job.id)
        job_view = self.manager.view(session, job.id)
        spec = LabSpec(**job.request.extra["lab"])
        with self.manager._lock:
            events = list(job.lab)
        name, higher = METRICS[spec.family]
        runs = []
        for index, run in enumerate(spec.runs()):
            mine = [e for e in events if e.get("run") == index]
            folder = Path(job.request.out_dir) / f"run-{index}"
            runs.append({
                "label": run["label"], "settings": run["settings"], "varied": {spec.vary: spec.values[index]},
                "loss": [{"step": e["step"], "value": e["losses"][MAIN_LOSS[spec.family]]} for e in mine
                         if MAIN_LOSS[spec.family] in e.get("losses", {})],
                "losses": [{"step": e["step"], **e["losses"]} for e in mine if "losses" in e],
                "metric": [{"step": e["step"], "value": e["metric"]} for e in mine if "metric" in e],
                "samples": [{"step": e["step"], "image": e["image"]} for e in mine if "image" in e],
                "texts": [{"step": e["step"], "text": e["preview_text"]} for e in mine if "preview_text" in e],
                "diverged_at": next((e["step"] for e in mine if e.get("diverged")), None),
                "can_save": job.status in ("done", "stopped") and (folder / "config.json").is_file(),
            })
        return {"id": job.id, "status": STATUS.get(job.status, job.status), "stage": job.status,
                "message": job_view.message, "queue_position": job_view.queue_position,
                "family": spec.family, "vary": spec.vary, "values": list(spec.values), "steps": spec.steps,
                "seed": spec.seed, "batch_size": spec.batch(), "step": job_view.step,
                "total_steps": job_view.total_steps, "elapsed_s": job_view.elapsed_s, "eta_s": job_view.eta_s,
                "steps_per_s": job_view.steps_per_s, "device": job_view.device, "error": job_view.error,
                "metric_name": name, "metric_higher_is_better": higher, "loss_name": MAIN_LOSS[spec.family],
                "runs": runs, "saved": [Path(p).name for p in job.saved], "version": job.version}

    @staticmethod
    def public(view: dict[str, Any]) -> dict[str, Any]:
        """The view without server paths: a sample is its step (the page shows the image)."""
        runs = [{**run, "samples": [{"step": s["step"]} for s in run["samples"]]} for run in view["runs"]]
        return {**view, "runs": runs}

    # -- keeping a run ----------------------------------------------------------------------
    def save(self, session: str, lab_id: str, run: int, name: str, shipped_names: tuple[str, ...] = ()) -> Path:
        """Copy run `run`'s model to the visitor's models as `name` (listed as `yours/<name>`)."""
        job = self._job(session, lab_id)
        view = self.view(session, lab_id)
        if not isinstance(run, int) or not 0 <= run < len(view["runs"]):
            raise UserError(f"Pick a run of this lab (1 to {len(view['runs'])}).")
        if not view["runs"][run]["can_save"]:
            raise UserError("There is nothing to save yet: wait until the lab has stopped or finished.")
        source = Path(job.request.out_dir) / f"run-{run}"
        target = user_models.save_export(source, self.manager.user_dir(session), name,
                                         f"lab run {view['runs'][run]['label']}", self.manager.storage(),
                                         session, shipped_names)
        with self.manager._lock:
            job.saved.append(str(target))
            job.version += 1
            save_record(job)
        return target

    # -- a visitor who left -----------------------------------------------------------------
    def touch(self, lab_id: str) -> None:
        with self._lock:
            self._seen[lab_id] = time.monotonic()

    def _ensure_watch(self) -> None:
        with self._lock:
            if self._watch is None or not self._watch.is_alive():
                self._watch = threading.Thread(target=self._watch_loop, daemon=True, name="lab-watch")
                self._watch.start()

    def stop_abandoned(self, now: float | None = None) -> list[str]:
        """Stop the labs nobody asked about for `idle_s` seconds; returns their ids."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [lab_id for lab_id, seen in self._seen.items() if now - seen > self.limits.idle_s]
        stopped = []
        for lab_id in idle:
            job = self.manager._jobs.get(lab_id)
            with self._lock:
                self._seen.pop(lab_id, None)
            if job is None or job.status in FINISHED:
                continue
            try:
                self.manager.stop(job.session, lab_id)
                stopped.append(lab_id)
            except UserError:  # already stopping or ended meanwhile
                pass
        return stopped

    def _watch_loop(self) -> None:
        while True:
            time.sleep(min(5.0, max(self.limits.idle_s / 4, 0.2)))
            self.stop_abandoned()
            with self._lock:
                if not self._seen:
                    self._watch = None
                    return


_service: LabService | None = None
_service_lock = threading.Lock()


def get_lab_service(weights_dir: str | Path) -> LabService:
    """The app's one lab service, over the app's one job manager."""
    global _service
    from aigc_demo.services.jobs import get_manager

    with _service_lock:
        if _service is None:
            _service = LabService(get_manager(), weights_dir)
        return _service
