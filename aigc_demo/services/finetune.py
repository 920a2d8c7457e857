"""Fine-tuning jobs: a manager kept apart from widgets, so the tab, the API and tests share it.

Why a separate process per job (multiprocessing, spawn): a crash, a segfault or the kernel's
out-of-memory killer ends that process only; the app keeps serving and reports what happened.
The job sends progress events (losses, step, ETA, steps/s, device, previews as PNG bytes or
text) through a queue; a monitor thread stores them here, so a reloaded page re-attaches to its
job by session and sees the whole history.

- Stop sets the engine's stop flag: the job writes a checkpoint and exports what it learned.
  Resume restarts the job from that checkpoint (the engine's resume).
- At most `max_concurrent` jobs train at once (default 1); the others wait in a visible queue.
  One active job per session.
- Operator limits (max steps, max upload size, concurrent and queued jobs, publishing of user
  models) come from environment variables, with the dataclass defaults below.
- Saved models go to `<user_models_dir>/<session>/<name>` (never into the shipped weights) and
  are seen by that session only, unless AIGC_PUBLISH_USER_MODELS is set.
"""

from __future__ import annotations

import atexit
import os
import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from aigc_demo.device import requested_device
from aigc_demo.services.finetune_data import DataLimits, ImageSet, safe_copy_text
from aigc_demo.services.storage import Storage, folder_bytes
from aigc_demo.settings import PROJECT_ROOT, JobSettings, PublicSettings, public_settings
from aigc_demo.settings import current as current_settings

ACTIVE = ("queued", "starting", "running", "stopping")
# What a job is doing, by the stage events its process sends (training/finetune.py run_job).
STAGE_MESSAGES = {
    "loading": "loading the model and the data",
    "first_step": "running the first step",
    "first_step_done": "first step took {seconds:.1f} s",
}
FINISHED = ("done", "stopped", "failed", "cancelled")
MAX_PREVIEWS = 40  # kept per job (the first, then the latest)
_SESSION = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class FinetuneConfig:
    """Operator settings (environment variables in brackets)."""

    max_steps: int = 5000  # [AIGC_FT_MAX_STEPS] per job
    max_upload_mb: float = 20.0  # [AIGC_FT_MAX_UPLOAD_MB] per uploaded file
    max_concurrent: int = 1  # [AIGC_FT_MAX_JOBS] jobs training at once; others queue
    max_queued: int = 8  # [AIGC_FT_MAX_QUEUE] jobs waiting
    runs_dir: str = str(PROJECT_ROOT / "runs" / "finetune")  # [AIGC_RUNS_DIR]/finetune: jobs, uploads
    user_models_dir: str = str(PROJECT_ROOT / "runs" / "user_models")  # [AIGC_USER_MODELS_DIR]
    publish_user_models: bool = False  # [AIGC_PUBLISH_USER_MODELS] everyone sees every saved model
    job_threads: int = 0  # [AIGC_FT_THREADS] torch threads per job (0: cores - 1, shared by jobs)
    allow_download: bool = True  # [AIGC_FT_DOWNLOADS] fetch MNIST / Fashion-MNIST when not local
    public: PublicSettings = field(default_factory=public_settings)  # quotas and expiry

    @classmethod
    def from_settings(cls, jobs: JobSettings | None = None) -> "FinetuneConfig":
        """The limits and folders of settings.JobSettings (the process's, by default)."""
        jobs = jobs or current_settings().jobs
        return cls(max_steps=jobs.max_steps, max_upload_mb=jobs.max_upload_mb, max_concurrent=jobs.max_concurrent,
                   max_queued=jobs.max_queued, runs_dir=str(Path(jobs.runs_dir) / "finetune"),
                   user_models_dir=jobs.user_models_dir, publish_user_models=jobs.publish_user_models,
                   job_threads=jobs.job_threads, allow_download=jobs.allow_download)

    def limits(self) -> DataLimits:
        return DataLimits(max_upload_bytes=int(self.max_upload_mb * 2**20))

    def threads(self) -> int:
        if self.job_threads > 0:
            return self.job_threads
        return max(1, ((os.cpu_count() or 2) - 1) // self.max_concurrent)


def check_session(session: str | None) -> str:
    """A session id safe to use in a path; ValueError otherwise."""
    if not session or not _SESSION.match(str(session)):
        raise ValueError("This page has no session yet: reload the page and try again.")
    return str(session)


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


# ---------------------------------------------------------------- data the job trains on

@dataclass
class PreparedData:
    """A visitor's data, checked and ready to hand to a job."""

    kind: str  # images | builtin | text
    summary: str
    images: ImageSet | None = None
    text: str | None = None
    folder: str | None = None  # builtin
    dataset: str | None = None  # builtin

    def fits(self, family: str) -> None:
        wants_text = family in ("gpt", "lora")
        if wants_text and self.kind != "text":
            raise ValueError("This model learns from text: paste text or upload a .txt file.")
        if not wants_text and self.kind == "text":
            raise ValueError("This model learns from images: upload images, draw some, or pick a built-in set.")


def prepare_text(pasted: str | None, file: str | None, limits: DataLimits | None = None) -> PreparedData:
    from aigc_demo.services.finetune_data import load_text, text_summary

    text = load_text(pasted, file, limits)
    source = f"uploaded file {Path(file).name}" if file else "pasted text"
    return PreparedData("text", text_summary(text, source), text=text)


def prepare_images(files: list[str], limits: DataLimits | None = None) -> PreparedData:
    from aigc_demo.services.finetune_data import load_images

    images = load_images(files, limits, source="uploaded images")
    return PreparedData("images", images.summary(), images=images)


def prepare_builtin(dataset: str, allow_download: bool = True, limit: int = 0) -> PreparedData:
    from aigc_demo.services.finetune_data import DATASET_TITLES, builtin_folder

    folder = builtin_folder(dataset, allow_download)
    summary = f"{DATASET_TITLES[dataset]} training split" + (f", first {limit} images" if limit else " (60,000 images)")
    return PreparedData("builtin", summary, folder=str(folder), dataset=dataset)


# ---------------------------------------------------------------- base models

@dataclass
class BaseModel:
    ref: str  # folder or hub id
    family: str  # gan | vae | gpt | lora
    title: str


def base_model(ref: str) -> BaseModel:
    """What `ref` (a weights folder or a hub id) is, and how it fine-tunes."""
    from aigc_demo.catalog import hub_entry, validate_repo_id
    from aigc_demo.hub import is_local_ref
    from aigc_demo.modelcard import GALLERY_KEY, read_card_metadata

    from aigc_demo.services.validate import identifier

    ref = identifier(ref, "The model to fine-tune", required=False)
    if not ref:
        raise ValueError("Pick a model to fine-tune first.")
    if is_local_ref(ref):
        folder = Path(ref)
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder.name} is not a weights folder (config.json is missing).")
        gallery = read_card_metadata(folder).get(GALLERY_KEY) or {}
        family = str(gallery.get("family", ""))
        title = str(gallery.get("title") or folder.name)
        if family in ("gan", "vae", "gpt"):
            return BaseModel(str(folder), family, title)
        if family == "causal-lm":
            return BaseModel(str(folder), "lora", title)
        raise ValueError(f"{title} ({family or 'unknown family'}) cannot be fine-tuned here: pick a GAN, a VAE, "
                         "a small GPT or a causal language model.")
    repo_id = validate_repo_id(ref)
    entry = hub_entry(repo_id)
    if entry is not None and entry.family != "causal-lm":
        raise ValueError(f"{entry.title} cannot be fine-tuned here: only causal language models (LoRA).")
    from aigc_demo.hub import cached_snapshot, hub_offline, missing_message

    if cached_snapshot(repo_id) is None and hub_offline():
        raise ValueError(missing_message(repo_id, "this machine is offline and the model is not downloaded"))
    return BaseModel(repo_id, "lora", entry.title if entry else repo_id)


def finetunable(specs: list[Any], session: str | None = None) -> list[tuple[str, str]]:
    """(label, id) for the catalog entries that can be fine-tuned: our GAN/VAE/GPTs, causal LMs (LoRA).
    Ids as services/model_ids.py lists them (never a server path)."""
    from aigc_demo.services.model_ids import listed_id

    choices = []
    for spec in specs:
        if spec.error:
            continue
        if spec.family in ("gan", "vae", "gpt") and spec.folder:
            choices.append((spec.title + (" (yours)" if spec.source == "user" else ""), listed_id(spec, session)))
        elif spec.family == "causal-lm":
            label = f"{spec.title} (Hub, LoRA)" if spec.source == "hub" else f"{spec.title} (LoRA)"
            choices.append((label, listed_id(spec, session)))
    return choices


# ---------------------------------------------------------------- jobs

@dataclass
class Job:
    id: str
    session: str
    request: Any  # training.finetune.JobRequest
    status: str = "queued"
    client: str = ""  # the client address that started it (per-address limits)
    message: str = ""
    created: float = field(default_factory=time.time)
    history: list[dict[str, float]] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    saved: list[str] = field(default_factory=list)
    version: int = 0
    runs: int = 0
    steps_per_run: int = 0
    process: Any = None
    stop_event: Any = None
    events: Any = None


@dataclass
class JobView:
    """A job as plain values (what the page and the API show)."""

    id: str
    status: str
    message: str
    family: str
    base: str
    base_title: str
    data: str
    settings: dict[str, Any]
    step: int
    total_steps: int
    losses: dict[str, float]
    history: list[dict[str, float]]
    previews: list[dict[str, Any]]  # {"step", "png": bytes} or {"step", "text": str}
    steps_per_s: float
    items_per_s: float
    eta_s: float | None
    elapsed_s: float
    device: str
    queue_position: int | None
    error: str | None
    saved: list[str]
    version: int
    can_stop: bool
    can_resume: bool
    can_save: bool

    def public(self) -> dict[str, Any]:
        """JSON-safe and free of server paths and session ids: previews become their step and text
        (images are shown in the page), the base model its title, saved models their names."""
        data = asdict(self)
        data["previews"] = [{"step": p["step"], "text": p.get("text"), "image": "png" in p} for p in self.previews]
        data["base"] = self.base_title
        data["saved"] = [Path(p).name for p in self.saved]
        return data


class FinetuneManager:
    """Starts, watches, stops and resumes fine-tuning jobs; stores their progress."""

    def __init__(self, config: FinetuneConfig | None = None, target: Callable[..., None] | None = None) -> None:
        self.config = config or FinetuneConfig.from_settings()
        self.target = target  # the job process's main (tests swap in one that crashes)
        self._jobs: dict[str, Job] = {}
        self._queue: list[str] = []
        self._lock = threading.RLock()
        self._reserved: list[tuple[str, str]] = []  # (session, client) of jobs being prepared
        self._sketch_lock = threading.Lock()

    # -- paths ------------------------------------------------------------------------------
    def session_dir(self, session: str) -> Path:
        return Path(self.config.runs_dir) / check_session(session)

    def user_dir(self, session: str) -> Path:
        return Path(self.config.user_models_dir) / check_session(session)

    def user_dirs(self, session: str | None) -> list[str]:
        """The model folders a session sees: its own, or everyone's when publishing is on."""
        root = Path(self.config.user_models_dir)
        if self.config.publish_user_models:
            return [str(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
        if not session or not _SESSION.match(session):
            return []
        own = root / session
        return [str(own)] if own.is_dir() else []

    def storage(self) -> Storage:
        """Quotas and expiry over the visitors' job and model folders."""
        return Storage(self.config.public, [Path(self.config.runs_dir), Path(self.config.user_models_dir)])

    def sweep(self, now: float | None = None, extra_dirs: list[Path] | None = None) -> list[Path]:
        """Delete expired jobs, drawings and saved models (never an active job); forget swept jobs."""
        with self._lock:
            active = {Path(j.request.out_dir).parent.resolve() for j in self._jobs.values() if j.status in ACTIVE}
        storage = self.storage()
        storage.extra_dirs = list(extra_dirs or [])
        gone = storage.sweep(now, keep=lambda path: path.resolve() in active)
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                folder = Path(job.request.out_dir).parent
                if job.status not in ACTIVE and not folder.exists():
                    del self._jobs[job_id]
                else:
                    job.saved = [p for p in job.saved if Path(p).exists()]
        return gone

    # -- sketches ---------------------------------------------------------------------------
    def _sketch_path(self, session: str) -> Path:
        return self.session_dir(session) / "sketches.npz"

    def sketches(self, session: str) -> ImageSet | None:
        path = self._sketch_path(session)
        return ImageSet.load(path, "your drawings") if path.is_file() else None

    def add_sketch(self, session: str, sketch: Any, label: int | None) -> ImageSet:
        """Add one drawing (with its digit, or -1) to the session's small dataset."""
        import numpy as np

        from aigc_demo.services.finetune_data import sketch_image

        image = sketch_image(sketch)
        digit = -1 if label is None or label == "" else int(label)
        if not -1 <= digit <= 9:
            raise ValueError(f"The digit must be 0-9 (got {label}).")
        with self._sketch_lock:
            current = self.sketches(session)
            count = len(current) if current is not None else 0
            if count >= self.config.limits().max_sketches:
                raise ValueError(f"You have {count} drawings, the most one session keeps; train on them "
                                 "or clear them.")
            images = np.concatenate([current.images, image[None]]) if current is not None else image[None]
            labels = np.concatenate([current.labels, [digit]]) if current is not None else np.asarray([digit])
            updated = ImageSet(images, labels.astype(np.int64), "your drawings")
            updated.save(self._sketch_path(session))
        return updated

    def clear_sketches(self, session: str) -> None:
        self._sketch_path(session).unlink(missing_ok=True)

    def prepare_sketches(self, session: str) -> PreparedData:
        images = self.sketches(session)
        if images is None or len(images) == 0:
            raise ValueError("No drawings yet: draw a digit and press Add, a few dozen times.")
        return PreparedData("images", images.summary(), images=images)

    # -- starting ---------------------------------------------------------------------------
    def start(self, session: str, base: BaseModel | str, data: PreparedData, settings: Any,
              client: str | None = None) -> str:
        """Queue a job (it starts at once when a slot is free); returns its id.

        Limits count per visitor (one active job) and per client address (`client`, at most
        AIGC_FT_MAX_PER_CLIENT active jobs), so one person with many sessions cannot fill the queue."""
        from aigc_demo.settings import operator_settings
        from aigc_demo.training.finetune import JobRequest

        session = check_session(session)
        client = (client or "")[:100]
        base = base if isinstance(base, BaseModel) else base_model(base)
        settings.check(self.config.max_steps)
        data.fits(base.family)
        self.storage().check_quota(session, len(data.text or "") + (data.images.images.nbytes if data.images else 0))
        with self._lock:
            active = [(j.status, j.id) for j in self._jobs.values() if j.session == session and j.status in ACTIVE]
            active += [("being prepared", "-") for s, _ in self._reserved if s == session]
            if active:
                raise ValueError(f"You already have a job {active[0][0]} ({active[0][1]}): stop it "
                                 "before starting another.")
            per_client = operator_settings().jobs_per_client
            from_client = [j for j in self._jobs.values() if client and j.client == client and j.status in ACTIVE]
            from_client += [c for _, c in self._reserved if client and c == client]
            if len(from_client) >= per_client:
                raise ValueError(f"Your network address already has {len(from_client)} job(s) queued or "
                                 f"training, the most this server allows per address ({per_client}): wait "
                                 "until one ends, or stop one.")
            if len(self._queue) >= self.config.max_queued and self._running_count() >= self.config.max_concurrent:
                raise ValueError(f"The server is busy: {len(self._queue)} jobs are already waiting. "
                                 "Try again in a few minutes.")
            job_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
            reservation = (session, client)
            self._reserved.append(reservation)  # counted by the checks above until the job is queued
        try:
            return self._queue_job(session, client, job_id, base, data, settings, JobRequest)
        finally:
            with self._lock:
                self._reserved.remove(reservation)

    def _queue_job(self, session: str, client: str, job_id: str, base: BaseModel, data: PreparedData,
                   settings: Any, JobRequest: Any) -> str:  # noqa: N803 - the class, imported lazily
        folder = self.session_dir(session) / "jobs" / job_id
        folder.mkdir(parents=True, exist_ok=True)
        if data.kind == "text":
            spec: dict[str, Any] = {"kind": "text", "path": str(safe_copy_text(data.text or "", folder / "data"))}
        elif data.kind == "images":
            assert data.images is not None
            spec = {"kind": "images", "path": str(data.images.save(folder / "data" / "images.npz"))}
        else:
            spec = {"kind": "builtin", "dir": data.folder, "dataset": data.dataset}
        request = JobRequest(job_id=job_id, family=base.family, base=base.ref, base_title=base.title, data=spec,
                             data_summary=data.summary, settings=settings, out_dir=str(folder / "out"),
                             threads=self.config.threads(),
                             cpu=requested_device() == "cpu")
        job = Job(id=job_id, session=session, request=request, steps_per_run=settings.steps,
                  message="Waiting for a free slot", client=client)
        with self._lock:
            self._drop_old_checkpoints(session)
            self._jobs[job_id] = job
            self._queue.append(job_id)
            job.version += 1
        self._pump()
        return job_id

    def _drop_old_checkpoints(self, session: str) -> None:
        """Only a session's latest job can be resumed: earlier checkpoints are removed (disk space)."""
        for job in self._jobs.values():
            if job.session == session and job.status in FINISHED:
                out = Path(job.request.out_dir)
                for name in ("checkpoint", "checkpoint.old", "checkpoint.tmp"):
                    shutil.rmtree(out / name, ignore_errors=True)

    def active_jobs(self) -> int:
        """Jobs queued or training (a speed probe now would measure a shared CPU, and slow them)."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.status in ACTIVE)

    def _running_count(self) -> int:
        return sum(1 for j in self._jobs.values() if j.status in ("starting", "running", "stopping"))

    def _pump(self) -> None:
        """Start queued jobs while slots are free."""
        with self._lock:
            while self._queue and self._running_count() < self.config.max_concurrent:
                job = self._jobs[self._queue.pop(0)]
                self._launch(job)

    def _launch(self, job: Job) -> None:
        import multiprocessing as mp

        from aigc_demo.training.finetune import run_job

        ctx = mp.get_context("spawn")
        job.events, job.stop_event = ctx.Queue(), ctx.Event()
        job.status, job.message, job.error = "starting", "Starting the training process", None
        job.runs += 1
        job.process = ctx.Process(target=self.target or run_job, args=(job.request, job.events, job.stop_event),
                                  daemon=True, name=f"finetune-{job.id}")
        job.process.start()
        job.version += 1
        threading.Thread(target=self._monitor, args=(job,), daemon=True, name=f"monitor-{job.id}").start()

    # -- watching ---------------------------------------------------------------------------
    def _monitor(self, job: Job) -> None:
        process, events = job.process, job.events
        while True:
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                if process.is_alive():
                    continue
                while True:  # the process ended: take what it sent last
                    try:
                        self._apply(job, events.get(timeout=0.3))
                    except queue.Empty:
                        break
                break
            except (EOFError, OSError):
                break
            self._apply(job, event)
        process.join(timeout=5)
        code = process.exitcode
        with self._lock:
            if job.status not in FINISHED:
                if job.result is not None and code == 0:
                    self._finish(job, "stopped" if job.result.get("stopped") else "done")
                else:
                    reason = job.error or (
                        f"The training process ended unexpectedly (exit code {code}"
                        + (", killed: most likely out of memory" if code in (-9, 137) else "")
                        + "). The app is fine: try a smaller batch or fewer steps.")
                    job.error = reason
                    self._finish(job, "failed", reason)
            job.process, job.events = None, None
        try:
            events.close()
        except (OSError, ValueError):
            pass
        self._pump()

    def _finish(self, job: Job, status: str, message: str = "") -> None:
        job.status = status
        # The status word is shown beside the message: the message never repeats it.
        job.message = message or {"done": "", "stopped": "what it learned is kept"}.get(status, "")
        job.version += 1

    def _apply(self, job: Job, event: dict[str, Any]) -> None:
        with self._lock:
            kind = event.get("type")
            if kind == "status":
                job.message = STAGE_MESSAGES.get(str(event.get("status")), "").format(**event)
                if event.get("status") == "first_step" and job.status == "starting":
                    job.status = "running"
            elif kind == "progress":
                if job.status in ("starting", "running"):
                    job.status, job.message = "running", ""
                preview = {"step": event["step"]}
                if "preview_png" in event:
                    preview["png"] = event.pop("preview_png")
                if "preview_text" in event:
                    preview["text"] = event.pop("preview_text")
                if len(preview) > 1:
                    if len(job.previews) >= MAX_PREVIEWS:
                        del job.previews[1]
                    if not (job.previews and job.previews[-1]["step"] == preview["step"]):
                        job.previews.append(preview)
                    else:
                        job.previews[-1] = preview
                if not job.history or job.history[-1]["step"] < event["step"]:
                    job.history.append({"step": event["step"], **event["losses"]})
                job.last = event
                if event.get("done") or event.get("stopped"):
                    job.message = "Saving the result"
            elif kind == "result":
                job.result = event
            elif kind == "error":
                job.error, job.traceback = event.get("message"), event.get("traceback")
                self._finish(job, "failed", job.error or "failed")
            job.version += 1

    # -- controls ---------------------------------------------------------------------------
    def _get(self, session: str, job_id: str | None) -> Job:
        from aigc_demo.services.validate import identifier

        job_id = identifier(job_id, "The job", max_chars=64, required=False)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.session != session:
                raise ValueError("No such job in this session (it may belong to another visitor, or the "
                                 "server restarted): start a new one.")
            return job

    def stop(self, session: str, job_id: str) -> str:
        """Ask a job to stop; it keeps what it learned (checkpoint + export). A queued job leaves the queue."""
        job = self._get(check_session(session), job_id)
        with self._lock:
            if job.status == "queued":
                self._queue.remove(job.id)
                self._finish(job, "cancelled", "Removed from the queue before it started")
                return job.message
            if job.status in ("starting", "running"):
                job.stop_event.set()
                job.status, job.message = "stopping", "saving what it learned so far"
                job.version += 1
                return job.message
            if job.status == "stopping":
                raise ValueError("Already stopping: the job is saving what it learned; wait a moment.")
            raise ValueError(f"This job is not running (it is {job.status}): there is nothing to stop.")

    def resume(self, session: str, job_id: str) -> str:
        """Continue a stopped job from its checkpoint (a finished one trains for as many steps again)."""
        from aigc_demo.training.engine import find_checkpoint

        job = self._get(check_session(session), job_id)
        with self._lock:
            if job.status in ACTIVE:
                raise ValueError(f"This job is {job.status}: it can be resumed once it has stopped.")
            others = [j for j in self._jobs.values() if j.session == session and j.status in ACTIVE]
            if others:
                raise ValueError(f"You already have a job {others[0].status}: stop it first.")
            if find_checkpoint(job.request.out_dir) is None:
                raise ValueError("There is no checkpoint to resume from (the job failed before its first "
                                 "save, or a newer job replaced it): start a new job.")
            steps_done = int(job.history[-1]["step"]) if job.history else 0
            settings = job.request.settings
            if steps_done >= settings.steps:  # finished: train as many steps again
                settings = replace(settings, steps=min(steps_done + job.steps_per_run,
                                                       steps_done + self.config.max_steps))
            job.request = replace(job.request, settings=settings, resume=True)
            job.result, job.error, job.traceback = None, None, None
            job.status, job.message = "queued", "Waiting for a free slot"
            job.version += 1
            self._queue.append(job.id)
        self._pump()
        return "Resuming from the last checkpoint"

    # -- reading ----------------------------------------------------------------------------
    def view(self, session: str, job_id: str) -> JobView:
        job = self._get(check_session(session), job_id)
        with self._lock:
            last, req = job.last, job.request
            position = self._queue.index(job.id) + 1 if job.id in self._queue else None
            has_export = (Path(req.out_dir) / "config.json").is_file()
            return JobView(
                id=job.id, status=job.status,
                message=(f"Waiting in the queue: position {position}" if position else job.message),
                family=req.family, base=req.base, base_title=req.base_title, data=req.data_summary,
                settings=asdict(req.settings), step=int(last.get("step", 0)),
                total_steps=int(last.get("total_steps", req.settings.steps)),
                losses=dict(last.get("losses", {})), history=list(job.history), previews=list(job.previews),
                steps_per_s=float(last.get("steps_per_s", 0.0)), items_per_s=float(last.get("items_per_s", 0.0)),
                eta_s=last.get("eta_s"), elapsed_s=float(last.get("elapsed_s", 0.0)),
                device=str(last.get("device", "")), queue_position=position, error=self._scrub(job.error),
                saved=list(job.saved), version=job.version,
                can_stop=job.status in ("queued", "starting", "running"),
                can_resume=job.status in ("stopped", "done", "failed") and (Path(req.out_dir) / "checkpoint").is_dir(),
                can_save=job.status in ("stopped", "done") and has_export,
            )

    def _scrub(self, text: str | None) -> str | None:
        """A message without this server's folders (a worker's error may name its files)."""
        if not text:
            return text
        for root in sorted({self.config.runs_dir, self.config.user_models_dir,
                            str(Path(self.config.runs_dir).resolve()),
                            str(Path(self.config.user_models_dir).resolve())}, key=len, reverse=True):
            text = text.replace(root, "…")
        return re.sub(r"…/[A-Za-z0-9_-]{6,64}", "…", text)

    def latest(self, session: str | None) -> JobView | None:
        """The session's most recent job (what a reloaded page re-attaches to)."""
        if not session or not _SESSION.match(session):
            return None
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.session == session]
        if not jobs:
            return None
        return self.view(session, max(jobs, key=lambda j: j.created).id)

    def wait(self, session: str, job_id: str, timeout: float = 120.0, until: tuple[str, ...] = FINISHED) -> JobView:
        """Block until the job reaches one of `until` (tests, scripts)."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.view(session, job_id)
            if view.status in until:
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {view.status} after {timeout} s")
            time.sleep(0.1)

    # -- keeping the result -----------------------------------------------------------------
    def save(self, session: str, job_id: str, name: str, shipped_names: tuple[str, ...] = ()) -> Path:
        """Copy the job's exported model to the session's model folder as `name`; never overwrites."""
        job = self._get(check_session(session), job_id)
        view = self.view(session, job_id)
        if not view.can_save:
            raise ValueError("There is nothing to save yet: wait until the job has stopped or finished.")
        name = (name or "").strip()
        if not _NAME.match(name):
            raise ValueError("Name the model with letters, digits, '-', '_' or '.' (up to 64 characters, "
                             "starting with a letter or digit), e.g. my-gan.")
        if name in shipped_names:
            raise ValueError(f"{name} is the name of a shipped model: pick another name.")
        target = self.user_dir(session) / name
        if target.exists():
            raise ValueError(f"You already have a model named {name}: pick another name.")
        source = Path(job.request.out_dir)
        self.storage().check_quota(session, folder_bytes(source))
        staging = target.parent / f".{name}.{secrets.token_hex(3)}.tmp"
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns("checkpoint*", "*.tmp"))
        retitle_card(staging, name, job.request.base_title)
        try:
            os.rename(staging, target)  # fails if `target` appeared meanwhile: never overwrite
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            raise ValueError(f"You already have a model named {name}: pick another name.") from None
        with self._lock:
            job.saved.append(str(target))
            job.version += 1
        return target

    def saved_models(self, session: str) -> list[Path]:
        folder = self.user_dir(session)
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []

    def zip_model(self, session: str, job_id: str | None = None, folder: str | None = None,
                  dest: str | Path | None = None) -> Path:
        """A zip of a saved model (or of the job's latest export) in Hugging Face layout, written in
        `dest` (the caller deletes it once served) or else in a new temp folder."""
        session = check_session(session)
        if folder:
            source = Path(folder).resolve()
            own = self.user_dir(session).resolve()
            if own not in source.parents:
                raise ValueError("You can download only your own saved models.")
        else:
            job = self._get(session, job_id)
            if job.saved:
                source = Path(job.saved[-1])
            elif self.view(session, job.id).can_save:
                source = Path(job.request.out_dir)
            else:
                raise ValueError("There is nothing to download yet: wait until the job has stopped or finished.")
        name = source.name if source.name != "out" else f"finetuned-{job_id}"
        target = Path(dest if dest is not None else tempfile.mkdtemp(prefix="aigc-finetune-")) / f"{name}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source)
                if path.is_file() and not rel.parts[0].startswith("checkpoint"):
                    archive.write(path, f"{name}/{rel.as_posix()}")
        return target

    # -- shutting down ----------------------------------------------------------------------
    def shutdown(self, timeout: float = 7.0) -> dict[str, int]:
        """The app is exiting: queued jobs are cancelled, running ones are asked to stop (they
        write a checkpoint and export what they learned), and any still alive after `timeout`
        seconds are terminated, then killed. Returns counts, for the log."""
        with self._lock:
            for job_id in list(self._queue):
                self._finish(self._jobs[job_id], "cancelled", "The server shut down before it started")
            self._queue.clear()
            jobs = [j for j in self._jobs.values() if j.process is not None]
            for job in jobs:
                if job.stop_event is not None:
                    job.stop_event.set()
                if job.status in ("starting", "running"):
                    job.status, job.message = "stopping", "The server is shutting down: saving what it learned"
        deadline = time.monotonic() + timeout
        counts = {"stopped": 0, "terminated": 0, "killed": 0}
        for job in jobs:
            process = job.process
            if process is None:
                continue
            process.join(timeout=max(deadline - time.monotonic(), 0.05))
            if not process.is_alive():
                counts["stopped"] += 1
                continue
            process.terminate()
            process.join(timeout=1.0)
            if process.is_alive():
                process.kill()
                process.join(timeout=1.0)
                counts["killed"] += 1
            else:
                counts["terminated"] += 1
        return counts

    def processes(self) -> list[Any]:
        """The job processes alive now (tests, the shutdown log)."""
        with self._lock:
            return [j.process for j in self._jobs.values() if j.process is not None and j.process.is_alive()]


def retitle_card(folder: Path, name: str, base_title: str) -> None:
    """Give a saved model its visitor-chosen name in the gallery."""
    from huggingface_hub import ModelCard

    from aigc_demo.modelcard import GALLERY_KEY

    path = folder / "README.md"
    if not path.is_file():
        return
    card = ModelCard.load(path)
    gallery = dict(getattr(card.data, GALLERY_KEY, None) or {})
    gallery["title"] = f"{name} (fine-tuned {base_title})"
    gallery["description"] = f"Fine-tuned in this app from {base_title}."
    setattr(card.data, GALLERY_KEY, gallery)
    card.save(path)


def push_to_hub(folder: str | Path, repo_id: str, token: str, private: bool = True) -> str:
    """Upload a saved model folder to the Hub with the visitor's token; the repo's URL."""
    from aigc_demo.catalog import validate_repo_id
    from aigc_demo.hub import hub_offline

    repo_id = validate_repo_id(repo_id)
    if not (token or "").strip():
        raise ValueError("Paste a Hugging Face access token with write permission (huggingface.co/settings/tokens).")
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError("Save the model first, then push it.")
    if hub_offline():
        raise ValueError("The Hugging Face Hub cannot be reached from this machine (it is offline): download "
                         "the zip and upload it from a machine that is online, e.g. with `hf upload`.")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token.strip())
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, ignore_patterns=["checkpoint*", "*.tmp"],
                          commit_message="Upload a model fine-tuned in the AIGC Gallery")
    except HfHubHTTPError as err:
        raise ValueError(f"The Hub refused the upload: {err}") from None
    except OSError as err:
        raise ValueError(f"The Hub could not be reached ({err}).") from None
    return f"https://huggingface.co/{repo_id}"


_manager: FinetuneManager | None = None
_manager_lock = threading.Lock()


def current_manager() -> FinetuneManager | None:
    """The app's manager if one was made (shutting down must not create one)."""
    return _manager


def get_manager() -> FinetuneManager:
    """The app's one manager (configured from the environment on first use)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = FinetuneManager()
            atexit.register(_manager.shutdown)
        return _manager
