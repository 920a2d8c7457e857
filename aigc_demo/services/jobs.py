"""Fine-tuning jobs: a fair queue across visitors, one process per job, its events tailed from disk.

Why a separate process per job (forked from a server that has imported torch & co once, see
services/job_process.py): a crash, a segfault or the kernel's out-of-memory killer ends that
process only; the app keeps serving and reports what happened.
The process appends its events (losses, step, ETA, steps/s, device, samples) to a JSON Lines
file in the job's folder (services/job_events.py); a monitor thread tails that file. The file
and the job's record (services/job_records.py) outlive the app: a restarted app lists every
visitor's past jobs with their curves and samples (read back on that visitor's first request).

- Stop sets the engine's stop flag: the job writes a checkpoint and exports what it learned.
  Resume restarts the job from that checkpoint (the engine's resume).
- At most `max_concurrent` jobs train at once (default 1); the others wait in a visible queue.
  The queue is fair across visitors: each has at most one active job, and each client address
  at most AIGC_FT_MAX_PER_CLIENT, so nobody holds more than their place in line.
- A visitor only ever sees their own jobs; what they create counts against their quota and
  expires (services/storage.py), event files and samples included.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import threading
import time
from dataclasses import replace
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Callable

from aigc_demo.errors import UserError
from aigc_demo.services import user_models
from aigc_demo.services.finetune import BaseModel, PreparedData, base_model, check_settings
from aigc_demo.services.finetune_data import ImageSet, safe_copy_text
from aigc_demo.services.job_config import FinetuneConfig, job_on_cpu
from aigc_demo.services.job_process import job_context
from aigc_demo.services.job_events import EventLog, EventTail
from aigc_demo.services.job_records import (
    ACTIVE,
    FINISHED,
    Job,
    JobView,
    apply_event,
    finish,
    job_view,
    load_jobs,
    save_record,
)
from aigc_demo.services.sketches import Sketches
from aigc_demo.services.storage import Storage
from aigc_demo.services.validate import identifier
from aigc_demo.services.visitors import check_session, is_session_id
from aigc_demo.settings import operator_settings
from aigc_demo.training.engine import find_checkpoint
from aigc_demo.training.finetune import LAB, FinetuneSettings, JobRequest, run_job

POLL_S = 0.1  # how often a monitor looks for new events
NO_SUCH_JOB = ("No such job in this session (it may belong to another visitor, or the server restarted): "
               "start a new one.")
NOTHING_YET = "There is nothing to {what} yet: wait until the job has stopped or finished."


class FinetuneManager:
    """Starts, watches, stops and resumes fine-tuning jobs; lists them again after a restart."""

    def __init__(self, config: FinetuneConfig | None = None, target: Callable[..., None] | None = None,
                 context: BaseContext | None = None) -> None:
        self.config = config or FinetuneConfig.from_settings()
        self.target = target  # the job process's main (tests swap in one that crashes)
        self.context = context  # how job processes start (default: services/job_process.job_context)
        self._jobs: dict[str, Job] = {}
        self._queue: list[str] = []
        self._lock = threading.RLock()
        self._reserved: list[tuple[str, str]] = []  # (session, client) of jobs being prepared
        self._read: set[str] = set()  # sessions whose jobs of earlier runs of the app are read back
        self.drawings = Sketches(self.config.limits().max_sketches)

    def _read_back(self, session: str) -> None:
        """Add the session's jobs recorded by earlier runs of the app (read on the visitor's first
        request, so starting the app costs nothing however many jobs are on disk)."""
        with self._lock:
            if session in self._read:
                return
            self._read.add(session)
            for job in load_jobs(Path(self.config.runs_dir) / session):
                self._jobs.setdefault(job.id, job)

    # -- paths ------------------------------------------------------------------------------
    def session_dir(self, session: str) -> Path:
        return Path(self.config.runs_dir) / check_session(session)

    def user_dir(self, session: str) -> Path:
        return Path(self.config.user_models_dir) / check_session(session)

    def user_dirs(self, session: str | None) -> list[str]:
        """The model folders a session sees: its own, or everyone's when publishing is on."""
        return user_models.visible_dirs(Path(self.config.user_models_dir), session, self.config.publish_user_models)

    def storage(self) -> Storage:
        """Quotas and expiry over the visitors' job and model folders."""
        return Storage(self.config.public, [Path(self.config.runs_dir), Path(self.config.user_models_dir)])

    def sweep(self, now: float | None = None, extra_dirs: list[Path] | None = None) -> list[Path]:
        """Delete expired jobs (events and samples with them), drawings and saved models (never an
        active job); forget swept jobs."""
        with self._lock:
            active = {j.folder.resolve() for j in self._jobs.values() if j.status in ACTIVE}
        storage = self.storage()
        storage.extra_dirs = list(extra_dirs or [])
        gone = storage.sweep(now, keep=lambda path: path.resolve() in active)
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if job.status not in ACTIVE and not job.folder.exists():
                    del self._jobs[job_id]
                else:
                    job.saved = [p for p in job.saved if Path(p).exists()]
        return gone

    # -- drawings (services/sketches.py) ----------------------------------------------------
    def sketches(self, session: str) -> ImageSet | None:
        return self.drawings.load(self.session_dir(session))

    def add_sketch(self, session: str, sketch: Any, label: int | None) -> ImageSet:
        """Add one drawing (with its digit, or -1) to the session's small dataset."""
        return self.drawings.add(self.session_dir(session), sketch, label)

    def clear_sketches(self, session: str) -> None:
        self.drawings.clear(self.session_dir(session))

    def prepare_sketches(self, session: str) -> PreparedData:
        return self.drawings.prepare(self.session_dir(session))

    # -- starting ---------------------------------------------------------------------------
    def start(self, session: str, base: BaseModel | str, data: PreparedData, settings: FinetuneSettings,
              client: str | None = None) -> str:
        """Queue a job (it starts at once when a slot is free); returns its id."""
        session = check_session(session)
        self._read_back(session)  # its earlier checkpoints are dropped below like any other's
        base = base if isinstance(base, BaseModel) else base_model(base)
        check_settings(settings, self.config.max_steps, base.family)
        data.fits(base.family)
        self.storage().check_quota(session, len(data.text or "") + (data.images.images.nbytes if data.images else 0))
        return self.submit(session, client, lambda job_id, folder: self._request(job_id, folder, base, data, settings))

    def submit(self, session: str, client: str | None, make_request: Callable[[str, Path], JobRequest]) -> str:
        """Queue the job that `make_request(job_id, folder)` describes (a fine-tune, or a Lab's runs).

        Limits count per visitor (one active job) and per client address (`client`, at most
        AIGC_FT_MAX_PER_CLIENT active jobs), so one person with many sessions cannot fill the queue."""
        session = check_session(session)
        self._read_back(session)
        client = (client or "")[:100]
        with self._lock:
            active = [(j.status, j.id) for j in self._jobs.values() if j.session == session and j.status in ACTIVE]
            active += [("being prepared", "-") for s, _ in self._reserved if s == session]
            if active:
                raise UserError(f"You already have a job {active[0][0]} ({active[0][1]}): stop it "
                                "before starting another.")
            per_client = operator_settings().jobs_per_client
            from_client = [j for j in self._jobs.values() if client and j.client == client and j.status in ACTIVE]
            from_client += [c for _, c in self._reserved if client and c == client]
            if len(from_client) >= per_client:
                raise UserError(f"Your network address already has {len(from_client)} job(s) queued or "
                                f"training, the most this server allows per address ({per_client}): wait "
                                "until one ends, or stop one.")
            if len(self._queue) >= self.config.max_queued and self._running_count() >= self.config.max_concurrent:
                raise UserError(f"The server is busy: {len(self._queue)} jobs are already waiting. "
                                "Try again in a few minutes.")
            job_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
            reservation = (session, client)
            self._reserved.append(reservation)  # counted by the checks above until the job is queued
        try:
            folder = self.session_dir(session) / "jobs" / job_id
            folder.mkdir(parents=True, exist_ok=True)
            request = make_request(job_id, folder)
            job = Job(id=job_id, session=session, request=request, steps_per_run=request.settings.steps,
                      message="Waiting for a free slot", client=client)
            with self._lock:
                self._drop_old_checkpoints(session)
                self._jobs[job_id] = job
                self._queue.append(job_id)
                job.version += 1
                save_record(job)
        except BaseException:
            shutil.rmtree(self.session_dir(session) / "jobs" / job_id, ignore_errors=True)
            raise
        finally:
            with self._lock:
                self._reserved.remove(reservation)
        self._pump()
        return job_id

    def _request(self, job_id: str, folder: Path, base: BaseModel, data: PreparedData,
                 settings: FinetuneSettings) -> JobRequest:
        if data.kind == "text":
            spec: dict[str, Any] = {"kind": "text", "path": str(safe_copy_text(data.text or "", folder / "data"))}
        elif data.kind == "images":
            assert data.images is not None
            spec = {"kind": "images", "path": str(data.images.save(folder / "data" / "images.npz"))}
        else:
            spec = {"kind": "builtin", "dir": data.folder, "dataset": data.dataset}
        return JobRequest(job_id=job_id, family=base.family, base=base.ref, base_title=base.title, data=spec,
                          data_summary=data.summary, settings=settings, out_dir=str(folder / "out"),
                          threads=self.config.threads(), cpu=job_on_cpu())

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
                self._launch(self._jobs[self._queue.pop(0)])

    def _launch(self, job: Job) -> None:
        ctx = self.context or job_context()
        job.stop_event = ctx.Event()
        tail = EventTail(job.events_path)
        tail.offset = job.events_path.stat().st_size if job.events_path.is_file() else 0  # a resume appends
        job.status, job.message, job.error = "starting", "Starting the training process", None
        job.runs += 1
        job.process = ctx.Process(target=self.target or run_job, args=(job.request, EventLog(job.folder), job.stop_event),
                                  daemon=True, name=f"finetune-{job.id}")
        job.process.start()
        job.version += 1
        save_record(job)
        threading.Thread(target=self._monitor, args=(job, tail), daemon=True, name=f"monitor-{job.id}").start()

    # -- watching ---------------------------------------------------------------------------
    def _monitor(self, job: Job, tail: EventTail) -> None:
        process = job.process
        while True:
            alive = process.is_alive()  # asked before reading: what it wrote before exiting is read below
            events = tail.read()
            with self._lock:
                for event in events:
                    apply_event(job, event)
            if not events:
                if not alive:
                    break
                time.sleep(POLL_S)
        process.join(timeout=5)
        code = process.exitcode
        with self._lock:
            if job.status not in FINISHED:
                if job.result is not None and code == 0:
                    finish(job, "stopped" if job.result.get("stopped") else "done")
                else:
                    reason = job.error or (
                        f"The training process ended unexpectedly (exit code {code}"
                        + (", killed: most likely out of memory" if code in (-9, 137) else "")
                        + "). The app is fine: try a smaller batch or fewer steps.")
                    job.error = reason
                    finish(job, "failed", reason)
            job.process = None
            save_record(job)
        self._pump()

    # -- controls ---------------------------------------------------------------------------
    def _get(self, session: str, job_id: str | None) -> Job:
        job_id = identifier(job_id, "The job", max_chars=64, required=False)
        self._read_back(session)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.session != session:
                raise UserError(NO_SUCH_JOB)
            return job

    def stop(self, session: str, job_id: str) -> str:
        """Ask a job to stop; it keeps what it learned (checkpoint + export). A queued job leaves the queue."""
        job = self._get(check_session(session), job_id)
        with self._lock:
            if job.status == "queued":
                self._queue.remove(job.id)
                finish(job, "cancelled", "Removed from the queue before it started")
                save_record(job)
                return job.message
            if job.status in ("starting", "running"):
                job.stop_event.set()
                job.status, job.message = "stopping", "saving what it learned so far"
                job.version += 1
                return job.message
            if job.status == "stopping":
                raise UserError("Already stopping: the job is saving what it learned; wait a moment.")
            raise UserError(f"This job is not running (it is {job.status}): there is nothing to stop.")

    def resume(self, session: str, job_id: str) -> str:
        """Continue a stopped job from its checkpoint (a finished one trains for as many steps again)."""
        job = self._get(check_session(session), job_id)
        with self._lock:
            if job.status in ACTIVE:
                raise UserError(f"This job is {job.status}: it can be resumed once it has stopped.")
            others = [j for j in self._jobs.values() if j.session == session and j.status in ACTIVE]
            if others:
                raise UserError(f"You already have a job {others[0].status}: stop it first.")
            if find_checkpoint(job.request.out_dir) is None:
                raise UserError("There is no checkpoint to resume from (the job failed before its first "
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
            save_record(job)
        self._pump()
        return "Resuming from the last checkpoint"

    # -- reading ----------------------------------------------------------------------------
    def view(self, session: str, job_id: str) -> JobView:
        job = self._get(check_session(session), job_id)
        roots = [self.config.runs_dir, self.config.user_models_dir]
        with self._lock:
            position = self._queue.index(job.id) + 1 if job.id in self._queue else None
            return job_view(job, position, roots)

    def jobs(self, session: str | None) -> list[JobView]:
        """The session's jobs, oldest first (those of earlier runs of the app included)."""
        if not is_session_id(session):
            return []
        self._read_back(str(session))
        with self._lock:
            mine = sorted((j for j in self._jobs.values() if j.session == session), key=lambda j: j.created)
        return [self.view(str(session), job.id) for job in mine]

    def latest(self, session: str | None) -> JobView | None:
        """The session's most recent job (what a reloaded page re-attaches to)."""
        if not is_session_id(session):
            return None
        self._read_back(str(session))
        with self._lock:  # a Lab's job is shown by the Lab tab (services/lab.py), not as a fine-tune
            mine = [j for j in self._jobs.values() if j.session == session and j.request.family != LAB]
        if not mine:
            return None
        return self.view(str(session), max(mine, key=lambda j: j.created).id)

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

    # -- keeping the result (services/user_models.py) ---------------------------------------
    def save(self, session: str, job_id: str, name: str, shipped_names: tuple[str, ...] = ()) -> Path:
        """Copy the job's exported model to the session's model folder as `name`; never overwrites."""
        job = self._get(check_session(session), job_id)
        if not self.view(session, job_id).can_save:
            raise UserError(NOTHING_YET.format(what="save"))
        target = user_models.save_export(Path(job.request.out_dir), self.user_dir(session), name,
                                         job.request.base_title, self.storage(), session, shipped_names)
        with self._lock:
            job.saved.append(str(target))
            job.version += 1
            save_record(job)
        return target

    def saved_models(self, session: str) -> list[Path]:
        return user_models.list_models(self.user_dir(session))

    def zip_model(self, session: str, job_id: str | None = None, folder: str | None = None,
                  dest: str | Path | None = None) -> Path:
        """A zip of a saved model (or of the job's latest export) in Hugging Face layout, written in
        `dest` (the caller deletes it once served) or else in a new temp folder."""
        session = check_session(session)
        if folder:
            source = user_models.check_own(folder, self.user_dir(session))
        else:
            job = self._get(session, job_id)
            if job.saved:
                source = Path(job.saved[-1])
            elif self.view(session, job.id).can_save:
                source = Path(job.request.out_dir)
            else:
                raise UserError(NOTHING_YET.format(what="download"))
        name = source.name if source.name != "out" else f"finetuned-{job_id}"
        return user_models.zip_folder(source, name, dest)

    # -- shutting down ----------------------------------------------------------------------
    def shutdown(self, timeout: float = 7.0) -> dict[str, int]:
        """The app is exiting: queued jobs are cancelled, running ones are asked to stop (they
        write a checkpoint and export what they learned), and any still alive after `timeout`
        seconds are terminated, then killed. Returns counts, for the log."""
        with self._lock:
            for job_id in list(self._queue):
                finish(self._jobs[job_id], "cancelled", "The server shut down before it started")
                save_record(self._jobs[job_id])
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


_manager: FinetuneManager | None = None
_manager_lock = threading.Lock()


def current_manager() -> FinetuneManager | None:
    """The app's manager if one was made (shutting down must not create one)."""
    return _manager


def get_manager() -> FinetuneManager:
    """The app's one manager (configured from the settings on first use)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = FinetuneManager()
            atexit.register(_manager.shutdown)
        return _manager
