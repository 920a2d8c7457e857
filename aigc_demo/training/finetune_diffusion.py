"""A visitor's fine-tune of our diffusion model: the normal DiffusionTask from the base folder.

The base's UNet and noise schedule are trained on the visitor's images (or a built-in set) with a
constant learning rate and no warm-up (a short interactive run). Labelled images train their digit;
images without a label train the class the visitor chose: the model's own "no digit" class by
default (-1, the class classifier-free guidance uses), or a digit. The one change from the CLI's
task is the preview: it draws only the classes present in the data, with the visitor's number
of sampler steps, so a preview every few steps costs little. Imported when a job starts (torch).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aigc_demo.data.images import preview_grid
from aigc_demo.training.diffusion import DiffusionConfig, DiffusionTask
from aigc_demo.training.engine import TrainSettings
from aigc_demo.training.finetune_request import JobRequest

PREVIEW_ROWS = 4  # samples of each class in a preview
PREVIEW_SEED = 1234
MIN_COLUMNS = 4  # with fewer classes, each is drawn in several columns (different noise in each)
EMA_DECAY = 0.995  # a short run: the average must follow the weights within a few dozen steps


class FinetuneDiffusionTask(DiffusionTask):
    """DiffusionTask whose previews show the data's classes at the visitor's sampler steps.

    A preview is a small grid, one column per class in the data (4 samples each): 40 samples for all
    ten digits. Measured with the shipped architecture at 10 sampler steps on one CPU thread of a
    loaded 2-core machine: 2.8-3.9 s a preview (an 80-sample grid took 11-12 s), beside 0.4-0.6 s a
    step at batch 16, so a preview every 50 steps adds about a sixth to a run."""

    def __init__(self, config: DiffusionConfig, settings: TrainSettings, origin: Any, preview_steps: int = 0) -> None:
        super().__init__(config, settings, origin)
        self.preview_steps = preview_steps or self.config.sampling_steps  # the base's own, read by resolve_init

    def preview_columns(self) -> tuple[list[int], bool]:
        """The class of each preview column, and whether a row shares its noise (one column per class)."""
        if len(self.present) >= MIN_COLUMNS:
            return list(self.present[:10]), True
        return [self.present[i % len(self.present)] for i in range(MIN_COLUMNS)], False

    def preview(self) -> Any:
        import numpy as np

        from aigc_demo.models.diffusion import DigitDiffusion, initial_noise

        columns, shared = self.preview_columns()
        defaults = dataclasses.replace(self.config.sampler_defaults(), steps=self.preview_steps)
        model = DigitDiffusion(self._ema_unet(), dict(self.noise_scheduler.config), defaults=defaults)
        labels = np.tile(np.asarray(columns), PREVIEW_ROWS)  # row by row
        if shared:  # the same noise along a row: the columns differ only by their class
            noise = initial_noise(PREVIEW_ROWS, PREVIEW_SEED).repeat_interleave(len(columns), dim=0)
        else:
            noise = initial_noise(len(labels), PREVIEW_SEED)
        return preview_grid(model.sample(labels, noise), PREVIEW_ROWS, len(columns))


def diffusion_task(req: JobRequest, settings: TrainSettings, data: dict[str, Any]) -> FinetuneDiffusionTask:
    """The task for a diffusion fine-tune (`data`: data_dir, dataset, limit, as the digit trainers take)."""
    s = req.settings
    config = DiffusionConfig(**data, init_from=req.base, lr_schedule="constant", warmup_steps=0,
                             ema_decay=EMA_DECAY, unlabelled_digit=s.unlabelled_digit)
    return FinetuneDiffusionTask(config, settings, req.origin(), preview_steps=s.sampler_steps)
