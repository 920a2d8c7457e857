"""The Fine-tune tab's JSON endpoints (gr.api): the pre-flight estimate and a job's progress."""

from __future__ import annotations

from typing import Any

from gradio.context import LocalContext

from aigc_demo.errors import UserError
from aigc_demo.services import finetune as svc
from aigc_demo.services import finetune_probe as probe
from aigc_demo.services.job_config import job_on_cpu
from aigc_demo.services.jobs import FinetuneManager
from aigc_demo.ui import model_refs, sessions
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.strings import t


def estimate_api(manager: FinetuneManager) -> Any:
    @user_errors
    def finetune_estimate(model_ref: str, steps: int = 0, batch_size: int = 0, block_size: int = 0) -> dict[str, Any]:
        """How long a fine-tune would take here, measured by a few real steps: seconds per step, startup,
        total seconds and peak memory in MB. Zeros mean the family's defaults."""
        base = svc.base_model(model_refs.resolve(model_ref))
        overrides = {"steps": steps, "batch_size": batch_size, "block_size": block_size}
        settings = svc.make_settings({k: int(v) for k, v in overrides.items() if v}, manager.config.max_steps,
                                     family=base.family)
        return probe.estimate(probe.get_prober(), base, settings, manager.config.threads(), job_on_cpu()).public()
    return finetune_estimate


def job_status_api(manager: FinetuneManager) -> Any:
    @user_errors
    def finetune_status(job_id: str = "") -> dict[str, Any]:
        """A fine-tuning job's progress as JSON: status, step, losses history, ETA, steps/s, device, queue position."""
        session = sessions.resolve(None, LocalContext.request.get(None))  # gr.api injects no gr.Request
        view = manager.view(session, job_id) if job_id else manager.latest(session)
        if view is None:
            raise UserError(t("finetune.no_job"))
        return view.public()
    return finetune_status
