"""The operator's limits for fine-tuning jobs, as a plain dataclass the caller constructs.

`FinetuneConfig.from_env` reads the AIGC_* variables for now; the settings module is meant to
take that over (one place for every variable), after which only the dataclass stays here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from aigc_demo.services.finetune_data import DataLimits
from aigc_demo.settings import PROJECT_ROOT, PublicSettings


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


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
    def from_env(cls) -> "FinetuneConfig":
        env = os.environ
        runs = Path(env["AIGC_RUNS_DIR"]) if env.get("AIGC_RUNS_DIR") else PROJECT_ROOT / "runs"
        return cls(
            max_steps=int(env.get("AIGC_FT_MAX_STEPS", cls.max_steps)),
            max_upload_mb=float(env.get("AIGC_FT_MAX_UPLOAD_MB", cls.max_upload_mb)),
            max_concurrent=max(1, int(env.get("AIGC_FT_MAX_JOBS", cls.max_concurrent))),
            max_queued=max(0, int(env.get("AIGC_FT_MAX_QUEUE", cls.max_queued))),
            runs_dir=str(runs / "finetune"),
            user_models_dir=env.get("AIGC_USER_MODELS_DIR") or str(runs / "user_models"),
            publish_user_models=_truthy(env.get("AIGC_PUBLISH_USER_MODELS")),
            job_threads=int(env.get("AIGC_FT_THREADS", cls.job_threads)),
            allow_download=env.get("AIGC_FT_DOWNLOADS", "1").strip().lower() not in ("0", "false", "no", "off"),
            public=PublicSettings.from_env(),
        )

    def limits(self) -> DataLimits:
        return DataLimits(max_upload_bytes=int(self.max_upload_mb * 2**20))

    def threads(self) -> int:
        if self.job_threads > 0:
            return self.job_threads
        return max(1, ((os.cpu_count() or 2) - 1) // self.max_concurrent)


def job_on_cpu() -> bool:
    """Whether jobs (and the speed probe, which must match them) are asked to train on the CPU."""
    return os.environ.get("AIGC_DEVICE", "auto").lower() == "cpu"
