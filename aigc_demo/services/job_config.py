"""The operator's limits for fine-tuning jobs, as a plain dataclass the caller constructs.

`FinetuneConfig.from_settings` takes them from settings.JobSettings (the AIGC_FT_* variables,
read and checked once in aigc_demo/settings.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from aigc_demo.device import requested_device
from aigc_demo.services.finetune_data import DataLimits
from aigc_demo.settings import PROJECT_ROOT, JobSettings, PublicSettings
from aigc_demo.settings import current as current_settings


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
    public: PublicSettings = field(default_factory=PublicSettings)  # quotas and expiry

    @classmethod
    def from_settings(cls, jobs: JobSettings | None = None, public: PublicSettings | None = None) -> "FinetuneConfig":
        """The limits and folders of settings.JobSettings (the process's, by default)."""
        jobs = jobs or current_settings().jobs
        return cls(max_steps=jobs.max_steps, max_upload_mb=jobs.max_upload_mb, max_concurrent=jobs.max_concurrent,
                   max_queued=jobs.max_queued, runs_dir=str(Path(jobs.runs_dir) / "finetune"),
                   user_models_dir=jobs.user_models_dir, publish_user_models=jobs.publish_user_models,
                   job_threads=jobs.job_threads, allow_download=jobs.allow_download,
                   public=public or current_settings().public)

    def limits(self) -> DataLimits:
        return DataLimits(max_upload_bytes=int(self.max_upload_mb * 2**20))

    def threads(self) -> int:
        if self.job_threads > 0:
            return self.job_threads
        return max(1, ((os.cpu_count() or 2) - 1) // self.max_concurrent)


def job_on_cpu() -> bool:
    """Whether jobs (and the speed probe, which must match them) are asked to train on the CPU."""
    return requested_device() == "cpu"
