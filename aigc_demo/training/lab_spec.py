"""What a Lab trains: one family, one choice to vary, 2-3 runs that differ only in that choice.

A lab is the article's lesson as an experiment: the same small model (fresh weights from the
same seed), the same batches in the same order (the same data seed), trained side by side in
lock-step, and only the chosen setting differs between the runs: the optimizer, the learning
rate, or the loss (GAN: non-saturating / hinge / WGAN-GP; VAE: KL weight or MSE vs BCE
reconstruction; GPT: label smoothing; diffusion: noise vs v-prediction, or with and without
training the "no digit" class that classifier-free guidance needs).

Light at import (no torch): the tab, the API and the share link read the choices from here;
training/lab.py runs what `LabSpec.runs()` describes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from aigc_demo.errors import UserError

FAMILIES = ("vae", "gan", "gpt", "diffusion")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
MIN_RUNS, MAX_RUNS = 2, 3
MAX_STEPS = 1000  # per run; the server's time budget (LabLimits.max_minutes) stops a lab before that too
MAX_BATCH = 128
LR_RANGE = (1e-5, 1.0)

# Each family's choices: axis -> the values a run may take (None: a number in a range, below).
AXES: dict[str, dict[str, tuple[str, ...] | None]] = {
    "vae": {"optimizer": OPTIMIZERS, "lr": None, "kl_weight": None, "recon": ("bce", "mse")},
    "gan": {"optimizer": OPTIMIZERS, "lr": None, "loss": ("nsgan", "hinge", "wgan-gp")},
    "gpt": {"optimizer": OPTIMIZERS, "lr": None, "label_smoothing": None},
    "diffusion": {"optimizer": OPTIMIZERS, "lr": None, "prediction": ("epsilon", "v_prediction"),
                  "guidance_training": ("off", "on")},
}
NUMBER_RANGES = {"lr": LR_RANGE, "kl_weight": (0.0, 10.0), "label_smoothing": (0.0, 0.5)}
ALL_AXES = tuple(dict.fromkeys(axis for axes in AXES.values() for axis in axes))

# What a run starts from when nothing is varied. The models are small fresh ones (same seed for
# every run) so that 2 runs x 200 steps fit in about two minutes on a 2-core CPU.
BASE: dict[str, dict[str, Any]] = {
    "vae": dict(optimizer="adam", lr=1e-3, kl_weight=1.0, recon="bce", batch_size=32),
    "gan": dict(optimizer="adam", lr=2e-4, loss="nsgan", batch_size=32),
    "gpt": dict(optimizer="adam", lr=1e-3, label_smoothing=0.0, batch_size=16),
    "diffusion": dict(optimizer="adam", lr=1e-3, prediction="epsilon", guidance_training="on", batch_size=16),
}
# The values a new lab compares for each axis (the tab's defaults and the API's).
DEFAULT_VALUES: dict[str, list[str]] = {
    "optimizer": ["adam", "sgd"], "lr": ["0.001", "0.0001"], "kl_weight": ["1.0", "0.1"],
    "recon": ["bce", "mse"], "loss": ["nsgan", "hinge"], "label_smoothing": ["0.0", "0.1"],
    "prediction": ["epsilon", "v_prediction"], "guidance_training": ["off", "on"],
}
# The measured metric of each family, and whether higher is better.
METRICS = {"vae": ("elbo", True), "gan": ("accuracy", True), "gpt": ("val_loss", False),
           "diffusion": ("accuracy", True)}
# The training loss plotted for each family (the first of its losses).
MAIN_LOSS = {"vae": "neg_elbo", "gan": "g_loss", "gpt": "loss", "diffusion": "mse"}


@dataclass
class LabSpec:
    """A lab as the visitor chose it (plain values: pickled for the job process, put in links)."""

    family: str = "vae"
    vary: str = "optimizer"
    values: list[str] = field(default_factory=lambda: list(DEFAULT_VALUES["optimizer"]))
    steps: int = 200
    seed: int = 0  # the weights' seed and the batches' seed: the same for every run
    batch_size: int = 0  # 0: the family's
    eval_every: int = 0  # the metric, measured on every run at these steps and at step 0 (0: steps / 8)
    sample_every: int = 0  # sample grids, drawn from every run at the same steps (0: steps / 4)
    log_every: int = 5

    def check(self, max_steps: int = MAX_STEPS) -> "LabSpec":
        """This spec if it can run here; UserError saying what to change otherwise."""
        if self.family not in FAMILIES:
            raise UserError(f"The lab trains one of {', '.join(FAMILIES)} (got {str(self.family)[:40]!r}).")
        axes = AXES[self.family]
        if self.vary not in axes:
            raise UserError(f"A {self.family.upper()} lab can vary {', '.join(axes)} (got {str(self.vary)[:40]!r}).")
        if not isinstance(self.values, list) or not MIN_RUNS <= len(self.values) <= MAX_RUNS:
            raise UserError(f"A lab compares {MIN_RUNS} or {MAX_RUNS} runs: give one value per run.")
        self.values = [normalize_value(self.vary, v) for v in self.values]
        if len(set(self.values)) != len(self.values):
            raise UserError("Each run needs a different value, or there is nothing to compare.")
        if not 0 <= self.seed < 2**31:
            raise UserError(f"The seed must be between 0 and 2^31 - 1 (got {self.seed}).")
        if not 0 <= self.batch_size <= MAX_BATCH:
            raise UserError(f"The batch size must be between 1 and {MAX_BATCH} (got {self.batch_size}).")
        if self.eval_every < 0 or self.sample_every < 0 or self.log_every < 1:
            raise UserError("The metric, sample and log intervals must be at least 1 step.")
        if not 1 <= self.steps <= max_steps:
            raise UserError(f"Steps per run must be between 1 and {max_steps} on this server (got {self.steps}).")
        self.eval_every = self.eval_every or max(1, self.steps // 8)
        self.sample_every = self.sample_every or max(1, self.steps // 4)
        return self

    def batch(self) -> int:
        return self.batch_size or int(BASE[self.family]["batch_size"])

    def runs(self) -> list[dict[str, Any]]:
        """Each run's settings: the family's base with the varied setting replaced, nothing else."""
        out = []
        for index, value in enumerate(self.values):
            settings = {k: v for k, v in BASE[self.family].items() if k != "batch_size"}
            settings[self.vary] = float(value) if self.vary in NUMBER_RANGES else value
            out.append({"label": run_label(index, self.vary, value), "settings": settings})
        return out

    def public(self) -> dict[str, Any]:
        return asdict(self)


def normalize_value(axis: str, value: Any) -> str:
    """A run's value as text the spec keeps (numbers in a canonical form), or a UserError."""
    choices = ALL_CHOICES.get(axis)
    if choices is not None:
        text = str(value).strip().lower() if isinstance(value, str) else ""
        if text not in choices:
            raise UserError(f"{axis} takes one of {', '.join(choices)} (got {str(value)[:40]!r}).")
        return text
    low, high = NUMBER_RANGES[axis]
    try:
        number = float(str(value).strip()) if not isinstance(value, bool) and len(str(value)) <= 32 else math.nan
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and low <= number <= high) or (axis == "lr" and number <= 0):
        raise UserError(f"{axis} must be a number from {low:g} to {high:g} (got {str(value)[:40]!r}).")
    return f"{number:g}"


ALL_CHOICES: dict[str, tuple[str, ...]] = {
    axis: values for axes in AXES.values() for axis, values in axes.items() if values is not None}

LETTERS = "ABC"
SHOWN = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "nsgan": "non-saturating", "hinge": "hinge",
         "wgan-gp": "WGAN-GP", "bce": "BCE", "mse": "MSE", "epsilon": "noise prediction",
         "v_prediction": "v-prediction", "off": "guidance-free", "on": "guidance-trained"}


def run_label(index: int, axis: str, value: str) -> str:
    """'A: Adam', 'B: lr 0.0001', 'C: KL weight 0.1' (the letter keeps runs apart in plots)."""
    if axis in NUMBER_RANGES:
        shown = {"lr": "lr", "kl_weight": "KL weight", "label_smoothing": "label smoothing"}[axis] + f" {value}"
    else:
        shown = SHOWN.get(value, value)
    return f"{LETTERS[index]}: {shown}"


def default_spec(family: str = "vae", vary: str = "") -> LabSpec:
    """A new lab of `family` varying `vary` (the optimizer when not given), with its default values."""
    vary = vary or "optimizer"
    return LabSpec(family=family, vary=vary, values=list(DEFAULT_VALUES.get(vary, DEFAULT_VALUES["optimizer"])))
