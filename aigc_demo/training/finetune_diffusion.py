"""A visitor's fine-tune of our diffusion model: the normal DiffusionTask from the base folder.

The base's UNet and noise schedule are trained on the visitor's images (or a built-in set) with a
constant learning rate and no warm-up (a short interactive run). Labelled images train their digit;
images without a label train the class the visitor chose: the model's own "no digit" class by
default (-1, the class classifier-free guidance uses), or a digit. The one change from the CLI's
task is the preview: it draws only the classes present in the data, with the visitor's number
of sampler steps, so a preview every few steps costs little. Imported when a job starts (torch).
"""

from __future__ import annotations

from typing import Any

from aigc_demo.data.images import preview_grid
from aigc_demo.training.diffusion import DiffusionConfig, DiffusionTask
from aigc_demo.training.engine import TrainSettings
from aigc_demo.training.finetune import JobRequest

PREVIEW_COLUMNS = 8
PREVIEW_SEED = 1234
MIN_ROWS = 4  # with fewer classes, each is drawn on several rows (different noise on each)
EMA_DECAY = 0.995  # a short run: the average must follow the weights within a few dozen steps


class FinetuneDiffusionTask(DiffusionTask):
    """DiffusionTask whose previews show the data's classes at the visitor's sampler steps."""

    def __init__(self, config: DiffusionConfig, settings: TrainSettings, origin: Any, preview_steps: int = 0) -> None:
        super().__init__(config, settings, origin)
        self.preview_steps = preview_steps or self.config.sampling_steps  # the base's own, read by resolve_init

    def preview_labels(self) -> tuple[list[int], bool]:
        """The class of each preview row, and whether rows share their noise (one row per class)."""
        if len(self.present) >= MIN_ROWS:
            return list(self.present[:10]), True
        rows = [self.present[i % len(self.present)] for i in range(MIN_ROWS)]
        return rows, False

    def preview(self) -> Any:
        import numpy as np

        from aigc_demo.models.diffusion import DigitDiffusion, initial_noise

        rows, shared = self.preview_labels()
        model = DigitDiffusion(self._ema_unet(), dict(self.noise_scheduler.config), self.preview_steps,
                               self.config.guidance)
        labels = np.repeat(np.asarray(rows), PREVIEW_COLUMNS)
        if shared:  # the same noise in each column: the rows differ only by their digit
            noise = initial_noise(PREVIEW_COLUMNS, PREVIEW_SEED).repeat(len(rows), 1, 1, 1)
        else:
            noise = initial_noise(len(labels), PREVIEW_SEED)
        return preview_grid(model.sample(labels, noise), len(rows), PREVIEW_COLUMNS)


def diffusion_task(req: JobRequest, settings: TrainSettings, data: dict[str, Any]) -> FinetuneDiffusionTask:
    """The task for a diffusion fine-tune (`data`: data_dir, dataset, limit, as the digit trainers take)."""
    s = req.settings
    config = DiffusionConfig(**data, init_from=req.base, lr_schedule="constant", warmup_steps=0,
                             ema_decay=EMA_DECAY, unlabelled_digit=s.unlabelled_digit)
    return FinetuneDiffusionTask(config, settings, req.origin(), preview_steps=s.sampler_steps)
