"""The one learning-rate schedule every trainer uses: linear warm-up, then constant or cosine.

Hand-written rather than transformers' `get_cosine_schedule_with_warmup` because the schedule
follows *progress*, steps done or time used, whichever is further along: a run bounded by
`--max-minutes` still completes its decay (and the VAE its KL warm-up) instead of stopping at a
high learning rate. Step-indexed LambdaLR schedules cannot follow a clock.
"""

from __future__ import annotations

import math
import time
from typing import Any

SCHEDULES = ("constant", "cosine")


class Progress:
    """Training progress in [0, 1]: steps done or time used, whichever is further along.

    The clock starts at the first call in this process (so a resumed run has its full budget);
    `budget_fraction` < 1 ends the decay a little before the time budget, so the last steps
    run at the low learning rate."""

    def __init__(self, steps: int, max_minutes: float, budget_fraction: float = 1.0) -> None:
        self.steps, self.budget_s = steps, max_minutes * 60.0 * budget_fraction
        self.started: float | None = None

    def __call__(self, step: int) -> float:
        if self.started is None:
            self.started = time.perf_counter()
        frac = step / max(self.steps, 1)
        if self.budget_s > 0:
            frac = max(frac, (time.perf_counter() - self.started) / self.budget_s)
        return min(frac, 1.0)


def lr_factor(progress: float, step: int, schedule: str, warmup_steps: int, min_factor: float = 0.02) -> float:
    """Multiplier of the base learning rate: linear warm-up over `warmup_steps`, then constant,
    or cosine from 1 to `min_factor` as progress goes 0 -> 1 (and stays there past the end)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "constant":
        return warm
    if schedule == "cosine":
        progress = min(max(progress, 0.0), 1.0)
        return warm * (min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise ValueError(f"lr schedule must be one of {', '.join(SCHEDULES)} (got {schedule!r})")


def set_lr(optimizer: Any, lr: float) -> None:
    """Give every parameter group of `optimizer` the learning rate `lr`."""
    for group in optimizer.param_groups:
        group["lr"] = lr
