"""What a fine-tune job is, as plain values: the settings a visitor picks, the job request, and the
dicts a job reports (progress events, error lines).

Split from training/finetune.py so the family tasks (finetune_tasks.py, finetune_diffusion.py,
lab.py) can take a JobRequest without importing the job process that builds them: imports point
one way, job process -> tasks -> this module. Light at import; nothing here imports gradio.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aigc_demo.data.images import png_bytes
from aigc_demo.errors import UserError
from aigc_demo.training.engine import OPTIMIZERS, ProgressEvent, TrainSettings
from aigc_demo.training.finetune_card import FinetuneOrigin

FAMILIES = ("gan", "vae", "gpt", "lora", "diffusion")
LAB = "lab"  # a job of the Lab tab: several runs side by side (training/lab.py), not one fine-tune
MAX_LR = 1.0  # above this every family here diverges at once
# The page's bounds (ui/finetune.py) and the checks below; the messages' numbers are in the locale
# tables too (msg.ft.*), which tests/test_i18n.py matches against these messages.
MAX_BATCH = 1024
BLOCK_RANGE = (8, 4096)  # GPT / LoRA context in tokens
MAX_SEED = 2**32 - 1
MAX_LORA_RANK = 256
MAX_SAMPLER_STEPS = 50  # diffusion previews: DPM-Solver++ gains nothing visible beyond ~25


@dataclass
class FinetuneSettings:
    """What a visitor chooses. Defaults show a visible change within a minute on a laptop CPU."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 2e-4
    optimizer: str = "adam"  # adam | rmsprop | sgd
    seed: int = 0
    gan_loss: str = "nsgan"  # nsgan | hinge | wgan-gp
    kl_weight: float = 1.0  # VAE: weight of the KL term
    sample_every: int = 25  # a preview every N steps
    log_every: int = 5
    block_size: int = 128  # GPT / LoRA context in tokens (capped by the model and the data)
    lora_rank: int = 8
    unlabelled_digit: int = 0  # GAN, diffusion: the class of images without a digit (-1: diffusion's "no digit")
    sampler_steps: int = 0  # diffusion: DPM-Solver++ steps of each preview (0: the model's own)

    def check(self, max_steps: int = 0, family: str | None = None) -> None:
        """Refuse settings that cannot train, with a message a visitor can act on (`family`: the
        base model's, for the settings only one family has)."""
        if not isinstance(self.steps, int) or self.steps < 1:
            raise UserError(f"Steps must be a whole number of at least 1 (got {self.steps}).")
        if max_steps and self.steps > max_steps:
            raise UserError(f"Steps can be at most {max_steps} on this server (got {self.steps}).")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise UserError(f"Batch size must be between 1 and 1024 (got {self.batch_size}).")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"The learning rate must be a positive number (got {self.lr}): "
                            "with 0 nothing would change. Try 2e-4 for a GAN, 1e-3 for a VAE.")
        if self.lr > MAX_LR:
            raise UserError(f"A learning rate of {self.lr:g} makes training diverge at once: "
                            f"use at most {MAX_LR:g} (2e-4 for a GAN, 1e-3 for a VAE, 3e-4 for a GPT).")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"The optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r}).")
        from aigc_demo.training.losses import (
            GAN_LOSSES,  # imports torch: only when checking
        )

        if self.gan_loss not in GAN_LOSSES:
            raise UserError(f"The GAN loss must be one of {', '.join(GAN_LOSSES)} (got {self.gan_loss!r}).")
        if not (math.isfinite(self.kl_weight) and 0 <= self.kl_weight <= 100):
            raise UserError(f"The KL weight must be between 0 and 100 (got {self.kl_weight}).")
        if self.sample_every < 0 or self.log_every < 1:
            raise UserError("Preview and log intervals must be positive.")
        if not BLOCK_RANGE[0] <= self.block_size <= BLOCK_RANGE[1]:
            raise UserError(f"The context length must be between 8 and 4096 tokens (got {self.block_size}).")
        if not 1 <= self.lora_rank <= MAX_LORA_RANK:
            raise UserError(f"The LoRA rank must be between 1 and 256 (got {self.lora_rank}).")
        if family == "gan" and self.unlabelled_digit == -1:
            raise UserError("A GAN has no \"no digit\" class: pick a digit 0-9 for the images without a label.")
        if not -1 <= self.unlabelled_digit <= 9:
            raise UserError(f"The digit for unlabelled images must be 0-9 (got {self.unlabelled_digit}).")
        if not 0 <= self.sampler_steps <= MAX_SAMPLER_STEPS:
            raise UserError(f"Sampler steps must be between 0 (the model's own) and {MAX_SAMPLER_STEPS} "
                            f"(got {self.sampler_steps}).")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"The seed must be between 0 and 2^32 - 1 (got {self.seed}).")


# Sized from the speed probe (services/finetune_probe.py) on a shared 2-core CPU with one torch thread,
# under load: GAN 1.6 s/step at batch 16, VAE 0.43 s/step at batch 32, char GPT 5.4 s/step at
# batch 4 x 64 tokens; diffusion 0.4-0.6 s/step at batch 16 and 2.8-3.9 s per 40-digit preview at
# 10 sampler steps. An idle laptop core is several times faster: these runs take 1-2 minutes there.
# The tab shows the measured estimate for this machine before Start, and how many steps fit in 90 s.
DEFAULTS: dict[str, dict[str, Any]] = {
    "gan": dict(steps=150, batch_size=16, lr=2e-4, sample_every=25),
    "vae": dict(steps=150, batch_size=32, lr=5e-4, sample_every=25),
    "gpt": dict(steps=60, batch_size=4, lr=3e-4, sample_every=20, block_size=64),
    "lora": dict(steps=30, batch_size=2, lr=1e-3, sample_every=10, block_size=64),
    "diffusion": dict(steps=150, batch_size=16, lr=5e-4, sample_every=50, unlabelled_digit=-1),
}


def default_settings(family: str) -> FinetuneSettings:
    """The starting settings the tab shows for a family."""
    if family not in DEFAULTS:
        raise UserError(f"Fine-tuning supports {', '.join(FAMILIES)} models (got {family!r}).")
    return FinetuneSettings(**DEFAULTS[family])


@dataclass
class JobRequest:
    """Everything the job process needs, as plain values (it is pickled for the job process)."""

    job_id: str
    family: str  # gan | vae | gpt | lora | diffusion
    base: str  # a weights folder, or a hub id (lora)
    base_title: str
    data: dict[str, Any]  # {"kind": "images", "path": npz} | {"kind": "builtin", "dir", "dataset"} | {"kind": "text", "path"}
    data_summary: str
    settings: FinetuneSettings
    out_dir: str
    resume: bool = False
    threads: int = 0  # torch threads in the job process (0: torch's default)
    cpu: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def origin(self) -> FinetuneOrigin:
        """What the fine-tuned folder's card and finetune.json say about where it came from."""
        return FinetuneOrigin(base=self.base, base_title=self.base_title, family=self.family,
                              data_summary=self.data_summary, settings=asdict(self.settings))


def loop_log_every(s: FinetuneSettings) -> int:
    """How often the loop logs. It draws previews only on logged steps: logging every gcd(log, preview)
    steps gives each preview the visitor asked for (a preview every 4 steps with a log every 5 would
    otherwise show none until step 20)."""
    return math.gcd(s.log_every, s.sample_every) if s.sample_every else s.log_every


def train_settings(req: JobRequest, checkpoint_every: int = 0) -> TrainSettings:
    """The loop settings of a job (no checkpoints along the way: a stopped job saves one)."""
    s = req.settings
    log_every = loop_log_every(s)
    return TrainSettings(steps=s.steps, batch_size=s.batch_size, lr=s.lr, optimizer=s.optimizer,
                         seed=s.seed, out_dir=req.out_dir, log_every=log_every,
                         sample_every=s.sample_every, checkpoint_every=checkpoint_every,
                         resume=req.resume, cpu=req.cpu, progress_bar=False)


def event_dict(event: ProgressEvent) -> dict[str, Any]:
    """A ProgressEvent as a plain dict (previews as PNG bytes or text): safe to pickle and to store."""
    preview = event.preview
    data = {"type": "progress", "step": event.step, "total_steps": event.total_steps,
            "losses": {k: float(v) for k, v in event.losses.items()}, "elapsed_s": event.elapsed_s,
            "steps_per_s": event.steps_per_s, "items_per_s": event.items_per_s,
            "eta_s": event.eta_s if math.isfinite(event.eta_s) else None, "device": event.device,
            "done": event.done, "stopped": event.stopped, "time": time.time()}
    if isinstance(preview, str):
        data["preview_text"] = preview
    elif preview is not None:
        data["preview_png"] = png_bytes(preview)
    return data


def describe_error(err: BaseException) -> str:
    """One line a visitor can act on."""
    text = str(err) or type(err).__name__
    if isinstance(err, MemoryError) or "out of memory" in text.lower():
        return "Out of memory: lower the batch size or the context length, or pick a smaller model."
    if isinstance(err, UserError):
        return text
    return f"{type(err).__name__}: {text}"
