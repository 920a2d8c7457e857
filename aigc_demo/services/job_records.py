"""A job as the app knows it: its record on disk, the state its events build, and the view shown.

Each job folder holds `job.json` (who started it, the request, its status as the app last set
it) and `events.jsonl` (what its process reported). Replaying the events over the record gives
the same Job a running app holds, which is how a restarted app lists past jobs with their
curves and samples. Nothing here starts or watches a process (services/jobs.py does).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aigc_demo.services.job_events import EVENTS_FILE, read_events
from aigc_demo.training.export_mark import export_complete
from aigc_demo.training.finetune import FinetuneSettings, JobRequest

ACTIVE = ("queued", "starting", "running", "stopping")
FINISHED = ("done", "stopped", "failed", "cancelled")
RECORD_FILE = "job.json"
MAX_PREVIEWS = 40  # kept per job (the first, then the latest)
# What a job is doing, by the stage events its process sends (training/finetune.py run_job).
STAGE_MESSAGES = {
    "loading": "loading the model and the data",
    "first_step": "running the first step",
    "first_step_done": "first step took {seconds:.1f} s",
}
INTERRUPTED = "interrupted: the server restarted before it finished"
NOT_STARTED = "The server restarted before it started"


@dataclass
class Job:
    id: str
    session: str
    request: JobRequest
    status: str = "queued"
    client: str = ""  # the client address that started it (per-address limits)
    message: str = ""
    created: float = field(default_factory=time.time)
    history: list[dict[str, float]] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)  # {"step", "image": path} | {"step", "text"}
    last: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    saved: list[str] = field(default_factory=list)
    lab: list[dict[str, Any]] = field(default_factory=list)  # a Lab's per-run events (services/lab.py reads them)
    version: int = 0
    runs: int = 0
    steps_per_run: int = 0
    process: Any = None
    stop_event: Any = None

    @property
    def folder(self) -> Path:
        """The job's folder: its data, output, record, events and samples."""
        return Path(self.request.out_dir).parent

    @property
    def events_path(self) -> Path:
        return self.folder / EVENTS_FILE


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
    previews: list[dict[str, Any]]  # {"step", "image": PNG file path} or {"step", "text": str}
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
        data["previews"] = [{"step": p["step"], "text": p.get("text"), "image": "image" in p} for p in self.previews]
        data["base"] = self.base_title
        data["saved"] = [Path(p).name for p in self.saved]
        return data


# ---------------------------------------------------------------- events -> state

def finish(job: Job, status: str, message: str = "") -> None:
    job.status = status
    # The status word is shown beside the message: the message never repeats it.
    job.message = message or {"done": "", "stopped": "what it learned is kept"}.get(status, "")
    job.version += 1


def _keep_preview(job: Job, preview: dict[str, Any]) -> None:
    if job.previews and job.previews[-1]["step"] == preview["step"]:
        job.previews[-1] = preview
        return
    if len(job.previews) >= MAX_PREVIEWS:
        dropped = job.previews.pop(1).get("image")
        if dropped and not any(p.get("image") == dropped for p in job.previews + [preview]):
            Path(dropped).unlink(missing_ok=True)  # only the kept samples stay on disk
    job.previews.append(preview)


def apply_event(job: Job, event: dict[str, Any]) -> None:
    """Update `job` with one event its process sent (the caller holds the manager's lock)."""
    kind = event.get("type")
    if kind == "status":
        job.message = STAGE_MESSAGES.get(str(event.get("status")), "").format(**event)
        if event.get("status") == "first_step" and job.status == "starting":
            job.status = "running"
    elif kind == "progress":
        if job.status in ("starting", "running"):
            job.status, job.message = "running", ""
        preview: dict[str, Any] = {"step": event["step"]}
        if "preview_file" in event:
            preview["image"] = str(job.folder / event.pop("preview_file"))
        if "preview_text" in event:
            preview["text"] = event.pop("preview_text")
        if len(preview) > 1:
            _keep_preview(job, preview)
        if not job.history or job.history[-1]["step"] < event["step"]:
            job.history.append({"step": event["step"], **event["losses"]})
        job.last = event
        if event.get("done") or event.get("stopped"):
            job.message = "Saving the result"
    elif kind == "lab":  # one run's losses, metric or sample at a step (training/lab.py)
        if "preview_file" in event:
            event["image"] = str(job.folder / event.pop("preview_file"))
        job.lab.append(event)
    elif kind == "result":
        job.result = event
    elif kind == "error":
        job.error, job.traceback = event.get("message"), event.get("traceback")
        finish(job, "failed", job.error or "failed")
    job.version += 1


# ---------------------------------------------------------------- the record on disk

def save_record(job: Job) -> None:
    """Write `job.json` (atomically: a reader never sees half of it)."""
    record = {"id": job.id, "session": job.session, "client": job.client, "created": job.created,
              "status": job.status, "message": job.message, "error": job.error, "saved": job.saved,
              "runs": job.runs, "steps_per_run": job.steps_per_run, "request": asdict(job.request)}
    path = job.folder / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(partial, path)


def _request(data: dict[str, Any]) -> JobRequest:
    return JobRequest(**{**data, "settings": FinetuneSettings(**data["settings"])})


def load_job(folder: Path, session: str) -> Job | None:
    """The job in `folder` as a new app sees it, or None when it holds no readable record.

    A job the record calls active has no process any more (the app that ran it is gone): it is
    shown as stopped (interrupted) with what it had learned, or cancelled if it never started."""
    try:
        record = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
        if record.get("session") != session or record.get("id") != folder.name:
            return None  # a record copied from elsewhere is not this visitor's
        request = _request(record["request"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if Path(request.out_dir).parent != folder:
        request = replace(request, out_dir=str(folder / "out"))
    job = Job(id=folder.name, session=session, request=request, status=str(record.get("status", "stopped")),
              client=str(record.get("client", "")), message=str(record.get("message", "")),
              created=float(record.get("created", 0.0)), saved=[p for p in record.get("saved", []) if Path(p).exists()],
              runs=int(record.get("runs", 0)), steps_per_run=int(record.get("steps_per_run", 0)))
    status, message, error = job.status, job.message, record.get("error")
    for event in read_events(job.events_path):
        apply_event(job, event)
    job.status, job.message, job.error = status, message, error or job.error
    if job.status in ACTIVE:  # its process ended with the app that ran it
        if job.result is not None:
            finish(job, "stopped" if job.result.get("stopped") else "done")
        elif job.error:
            finish(job, "failed", job.error)
        elif job.runs == 0:
            finish(job, "cancelled", NOT_STARTED)
        else:
            finish(job, "stopped", INTERRUPTED)
        _rewrite_keeping_age(job)
    return job


def _rewrite_keeping_age(job: Job) -> None:
    """Record a status the app decided on reading the job back, without making the job look
    recently used (the sweeper deletes by age)."""
    path = job.folder / RECORD_FILE
    stamp = path.stat()
    save_record(job)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))


def load_jobs(session_dir: Path) -> list[Job]:
    """Every job recorded under `session_dir/jobs/` (one visitor's folder), oldest first."""
    jobs = []
    for record in sorted(session_dir.glob(f"jobs/*/{RECORD_FILE}")):
        job = load_job(record.parent, session_dir.name)
        if job is not None:
            jobs.append(job)
    return sorted(jobs, key=lambda j: j.created)


# ---------------------------------------------------------------- the view

def scrub(text: str | None, roots: list[str]) -> str | None:
    """A message without this server's folders (a worker's error may name its files)."""
    if not text:
        return text
    for root in sorted(set(roots) | {str(Path(r).resolve()) for r in roots}, key=len, reverse=True):
        text = text.replace(root, "…")
    return re.sub(r"…/[A-Za-z0-9_-]{6,64}", "…", text)


def job_view(job: Job, position: int | None, roots: list[str]) -> JobView:
    """What the page and the API show of `job` (`position`: its place in the queue, if waiting)."""
    last, req = job.last, job.request
    out = Path(req.out_dir)
    return JobView(
        id=job.id, status=job.status,
        message=(f"Waiting in the queue: position {position}" if position else job.message),
        family=req.family, base=req.base, base_title=req.base_title, data=req.data_summary,
        settings=asdict(req.settings), step=int(last.get("step", 0)),
        total_steps=int(last.get("total_steps", req.settings.steps)),
        losses=dict(last.get("losses", {})), history=list(job.history), previews=list(job.previews),
        steps_per_s=float(last.get("steps_per_s", 0.0)), items_per_s=float(last.get("items_per_s", 0.0)),
        eta_s=last.get("eta_s"), elapsed_s=float(last.get("elapsed_s", 0.0)),
        device=str(last.get("device", "")), queue_position=position, error=scrub(job.error, roots),
        saved=list(job.saved), version=job.version,
        can_stop=job.status in ("queued", "starting", "running"),
        can_resume=job.status in ("stopped", "done", "failed") and (out / "checkpoint").is_dir(),
        can_save=job.status in ("stopped", "done") and export_complete(out),  # never a half-written one
    )
