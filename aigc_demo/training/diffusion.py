"""Train the class-conditional diffusion model: `python -m aigc_demo train diffusion --data-dir DIR --out weights/NAME`.

One step: take a batch of digits x0 (in [-1, 1], as 2x2 patches), pick a noise level t for each,
mix in Gaussian noise (x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps, diffusers' `add_noise`), and train
the UNet to predict eps with a mean squared error (the article's MSE loss). Each digit's loss is
weighted by min(SNR, 5) / SNR ("Min-SNR", Hang et al. 2023): the nearly-clean levels, which are
easy, no longer dominate, and training converges several times faster. One batch in ten trains
the "no digit" class, for classifier-free guidance. The weights that ship are an exponential
moving average (diffusers' `EMAModel`), which gives cleaner samples than the last step's.

`--init-from FOLDER` starts from a weights folder (fine-tuning; the Fine-tune tab's jobs add a
FinetuneOrigin, which changes only the card).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_demo.data.idx import DigitsData
from aigc_demo.data.images import grid_array, preview_grid, save_png
from aigc_demo.errors import UserError
from aigc_demo.modelcard import write_model_card
from aigc_demo.training import digits_common as common
from aigc_demo.training.engine import TrainResult, TrainSettings, make_optimizer
from aigc_demo.training.finetune_card import FinetuneOrigin, final_loss_metrics
from aigc_demo.training.schedule import Progress, lr_factor, set_lr


@dataclass
class DiffusionConfig:
    """Model and data settings of the diffusion model (saved in training.json and the model card)."""

    data_dir: str = "data/mnist"  # an IDX folder, or an .npz of images and labels (-1: unlabelled)
    dataset: str = "mnist"
    init_from: str = ""  # a weights folder to start from (its architecture wins over the flags below)
    channels: str = "32,64"  # UNet widths per resolution (14x14, 7x7 patches)
    layers_per_block: int = 1
    attention: bool = True
    null_label_prob: float = 0.1  # batches fraction trained as "no digit" (classifier-free guidance)
    snr_gamma: float = 5.0  # Min-SNR loss weight cap; 0: plain MSE
    prediction: str = "epsilon"  # epsilon (predict the noise) | v_prediction (predict the velocity)
    ema_decay: float = 0.9995
    ema_power: float = 0.75  # EMA warm-up: decay = 1 - (1 + step) ** -power, capped at ema_decay
    sampling_steps: int = 10  # DPM-Solver++ steps the app and `sample diffusion` use by default
    guidance: float = 1.0  # classifier-free guidance scale used by default (1: none, one model call per step)
    guidance_interval: str = ""  # "lo,hi": guide only at noise levels sigma in [lo, hi] (empty: every step)
    sigma_range: str = ""  # "max,min": sampler steps evenly spaced in log sigma (empty: evenly in t)
    precision: str = "auto"  # sampling: auto (bf16 autocast where the device has native bf16) | fp32
    lr_schedule: str = "cosine"
    warmup_steps: int = 200
    limit: int = 0
    unlabelled_digit: int = -1  # images without a label train the "no digit" class
    note: str = ""

    def shape(self) -> Any:
        from aigc_demo.models.diffusion import UNetShape

        try:
            channels = tuple(int(c) for c in str(self.channels).split(","))
        except ValueError:
            raise ValueError(f"--channels must be comma-separated integers, e.g. 32,64 (got {self.channels!r})")
        return UNetShape(channels=channels, layers_per_block=self.layers_per_block, attention=self.attention)

    def resolve_init(self) -> None:
        """Take the architecture and sampling defaults from `init_from`."""
        if not self.init_from:
            return
        from aigc_demo.models.diffusion import SamplerDefaults, UNetShape, is_diffusion_folder

        if not is_diffusion_folder(self.init_from):
            raise UserError(f"{self.init_from} does not hold a diffusion model (no unet/ and scheduler/ folders)")
        shape = UNetShape.of_unet(json.loads((Path(self.init_from) / "unet" / "config.json").read_text()))
        self.channels = ",".join(str(c) for c in shape.channels)
        self.layers_per_block, self.attention = shape.layers_per_block, shape.attention
        found = common.read_config(self.init_from) if (Path(self.init_from) / "config.json").is_file() else {}
        if found:
            base = SamplerDefaults.of_config(found)
            self.sampling_steps, self.guidance, self.precision = base.steps, base.guidance, base.precision
            lo, hi = base.guidance_interval
            self.guidance_interval = "" if (lo, hi) == (0.0, float("inf")) else f"{lo:g},{hi:g}"
            self.sigma_range = ",".join(f"{v:g}" for v in base.sigma_range) if base.sigma_range else ""
        scheduler = json.loads((Path(self.init_from) / "scheduler" / "scheduler_config.json").read_text())
        self.prediction = str(scheduler.get("prediction_type", self.prediction))

    def sampler_defaults(self) -> Any:
        """The sampling defaults written beside the UNet (config.json) and used by previews."""
        from aigc_demo.models.diffusion import SamplerDefaults, parse_sigma_range

        interval = (0.0, float("inf"))
        if self.guidance_interval:
            try:
                lo, hi = (float(v) for v in str(self.guidance_interval).split(","))
            except ValueError:
                raise ValueError(f"--guidance-interval must be two numbers lo,hi (got {self.guidance_interval!r})")
            interval = (lo, hi)
        sigma_range = parse_sigma_range(self.sigma_range) if self.sigma_range else None
        return SamplerDefaults(self.sampling_steps, self.guidance, interval, self.precision, sigma_range)

    def check(self) -> None:
        shape = self.shape()
        if not shape.channels or min(shape.channels) < 8 or any(c % 8 for c in shape.channels):
            raise ValueError("--channels must be multiples of 8, e.g. 32,64")
        if len(shape.channels) > 2:
            raise ValueError("--channels takes two widths (14x14 and 7x7 patches)")
        if not 0 <= self.null_label_prob < 1 or self.snr_gamma < 0 or not 0 <= self.ema_decay < 1:
            raise ValueError("--null-label-prob in [0, 1), --snr-gamma >= 0, --ema-decay in [0, 1)")
        from aigc_demo.models.diffusion import PREDICTIONS

        if self.prediction not in PREDICTIONS:
            raise ValueError(f"--prediction must be one of {', '.join(PREDICTIONS)} (got {self.prediction!r})")
        if not 1 <= self.sampling_steps <= 100 or not 0 <= self.guidance <= 10:
            raise ValueError("--sampling-steps in 1..100 and --guidance in 0..10")
        if self.precision not in ("auto", "fp32"):
            raise ValueError(f"--precision must be auto or fp32 (got {self.precision!r})")
        lo, hi = self.sampler_defaults().guidance_interval
        if not 0 <= lo <= hi:
            raise ValueError(f"--guidance-interval needs 0 <= lo <= hi (got {self.guidance_interval!r})")


class DiffusionTask:
    """TrainTask for the diffusion model, from scratch or from `init_from`."""

    def __init__(self, config: DiffusionConfig, settings: TrainSettings, origin: FinetuneOrigin | None = None) -> None:
        config.resolve_init()
        config.check()
        self.config, self.settings, self.origin = config, settings, origin
        self.items_per_step = settings.batch_size
        self.progress = Progress(settings.steps, settings.max_minutes)
        self.rng: Any = None

    def build(self, accelerator: Any) -> None:
        import torch
        from diffusers import UNet2DModel
        from diffusers.training_utils import EMAModel

        from aigc_demo.models.diffusion import NULL_CLASS, build_unet, train_scheduler

        cfg, s = self.config, self.settings
        self.accelerator = accelerator
        common.enable_tf32()
        self.data = DigitsData.load(cfg.data_dir, "train", accelerator.device, cfg.limit, cfg.dataset)
        unlabelled = NULL_CLASS if cfg.unlabelled_digit < 0 else cfg.unlabelled_digit
        self.data.labels = self.data.labels.masked_fill(self.data.labels < 0, unlabelled)
        if cfg.init_from:  # the saved UNet, whose shape resolve_init copied into the config
            unet = UNet2DModel.from_pretrained(str(Path(cfg.init_from) / "unet"), use_safetensors=True).float().train()
        else:
            unet = build_unet(cfg.shape())
        self.noise_scheduler = train_scheduler(cfg.prediction)
        opt = make_optimizer(s.optimizer, unet.parameters(), s.lr, weight_decay=0.0)
        self.unet, self.opt = accelerator.prepare(unet, opt)
        self.ema = EMAModel(accelerator.unwrap_model(self.unet).parameters(), decay=cfg.ema_decay,
                            use_ema_warmup=True, power=cfg.ema_power, foreach=True)
        self.ema.to(accelerator.device)
        accelerator.register_for_checkpointing(self.ema)
        self.present = sorted(set(int(v) for v in torch.unique(self.data.labels).tolist()) - {NULL_CLASS}) or [NULL_CLASS]
        self.alphas_cumprod = self.noise_scheduler.alphas_cumprod.to(accelerator.device)

    def train_step(self, step: int) -> dict[str, float]:
        import torch

        from aigc_demo.models.diffusion import NULL_CLASS, to_patches

        cfg, s, acc = self.config, self.settings, self.accelerator
        if self.rng is None:
            self.rng = common.device_seed_generator(acc, s.seed, step)
        rng, device = self.rng, acc.device
        set_lr(self.opt, s.lr * lr_factor(self.progress(step), step, cfg.lr_schedule, cfg.warmup_steps))
        grey, labels = self.data.batch(s.batch_size, rng)
        x0 = to_patches(grey * 2 - 1)  # (B, 4, 14, 14) in [-1, 1]
        B = len(x0)
        drop = torch.rand(B, device=device, generator=rng) < cfg.null_label_prob
        labels = labels.masked_fill(drop, NULL_CLASS)
        t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (B,), device=device, generator=rng)
        eps = torch.randn(x0.shape, device=device, generator=rng)
        noisy = self.noise_scheduler.add_noise(x0, eps, t)
        pred = self.unet(noisy, t, class_labels=labels).sample.float()
        v_pred = cfg.prediction == "v_prediction"
        target = self.noise_scheduler.get_velocity(x0, eps, t) if v_pred else eps
        per_digit = (pred - target).pow(2).mean(dim=(1, 2, 3))  # (B,)
        mse = per_digit.mean()
        if cfg.snr_gamma > 0:  # Min-SNR: min(SNR, gamma) / SNR for eps, / (SNR + 1) for v (same weight on x0)
            a = self.alphas_cumprod[t]
            snr = a / (1 - a)
            loss = (per_digit * snr.clamp(max=cfg.snr_gamma) / (snr + 1 if v_pred else snr)).mean()
        else:
            loss = mse
        self.opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        acc.clip_grad_norm_(self.unet.parameters(), 1.0)
        self.opt.step()
        self.ema.step(acc.unwrap_model(self.unet).parameters())
        values = torch.stack([mse.detach(), loss.detach()]).tolist()
        return {"mse": values[0], "weighted_loss": values[1]}

    def _ema_unet(self) -> Any:
        """A copy of the UNet holding the EMA weights (the live one keeps training)."""
        import copy

        unet = copy.deepcopy(self.accelerator.unwrap_model(self.unet)).float().eval()
        self.ema.copy_to(unet.parameters())
        return unet

    def _model(self) -> Any:
        from aigc_demo.models.diffusion import DigitDiffusion

        return DigitDiffusion(self._ema_unet(), dict(self.noise_scheduler.config),
                              defaults=self.config.sampler_defaults())

    def _grid(self, model: Any, rows: list[int], columns: int, seed: int) -> Any:
        import numpy as np

        from aigc_demo.models.diffusion import initial_noise

        labels = np.repeat(np.asarray(rows), columns)
        noise = initial_noise(columns, seed).repeat(len(rows), 1, 1, 1)
        return model.sample(labels, noise)

    def preview(self) -> Any:
        rows = [self.present[i % len(self.present)] for i in range(10)]
        return preview_grid(self._grid(self._model(), rows, 10, seed=1234), 10, 10)

    def export(self, out_dir: Path, result: TrainResult) -> None:
        cfg = self.config
        model = self._model()
        model.unet.cpu().save_pretrained(str(out_dir / "unet"), safe_serialization=True)
        self.noise_scheduler.save_pretrained(str(out_dir / "scheduler"))
        (out_dir / "config.json").write_text(json.dumps({
            "family": "diffusion", "patch": 2, "null_class": 10, "sampler": "DPMSolverMultistepScheduler (dpmsolver++, order 2)",
            **cfg.sampler_defaults().as_config()}, indent=2))
        model.unet.to(self.accelerator.device)
        rows = [self.present[r % len(self.present)] for r in range(10)]
        save_png(grid_array(self._grid(model, rows, 10, seed=1234), 10, 10), out_dir / "sample.png")
        if self.origin is not None:
            self.origin.write(
                out_dir, result,
                what=("A class-conditional diffusion model fine-tuned on your images: `unet/` is the denoiser "
                      "(EMA of the trained weights), `scheduler/` its noise schedule."),
                lines=[f"- Classes in the data: {self.present}; sampler: DPM-Solver++, {cfg.sampling_steps} steps"],
                record={"classes": self.present},
                gallery={"title": f"{self.origin.base_title} (fine-tuned)", "task": "image-generation",
                         "family": "diffusion", "tab": "digits", "sample": "sample.png",
                         "metrics": final_loss_metrics(result.final_losses, ("mse",))},
                tags=["diffusion", "fine-tuned"], library_name="diffusers")
            return
        record = common.write_training_record(
            out_dir, self.settings, cfg, result, self.accelerator.device,
            {"note_ema": f"Shipped UNet: EMA of the weights (decay up to {cfg.ema_decay}, warm-up power "
                         f"{cfg.ema_power}); fp32 storage."})
        write_diffusion_card(out_dir, record)


def write_diffusion_card(out_dir: Path, record: dict[str, Any]) -> None:
    dataset, c = record["config"]["dataset"], record["config"]
    title = f"Class-conditional diffusion model ({dataset})"
    body = common.card_body(
        title,
        "A denoising diffusion model: training adds Gaussian noise to digits at 1,000 levels and teaches "
        "a small UNet (diffusers `UNet2DModel`, the digit's class added to the time embedding) to predict "
        "that noise (MSE). Generating starts from pure noise and removes it step by step; DPM-Solver++ "
        f"does that in {c['sampling_steps']} steps"
        + (f", with classifier-free guidance {c['guidance']:g} (two model calls per guided step: with the "
           "digit and without it, pushed apart)" if c["guidance"] != 1 else "")
        + (f", guided only at noise levels sigma {c['guidance_interval'].replace(',', '-')} (guidance at the "
           "noisiest steps narrows the samples)" if c.get("guidance_interval") and c["guidance"] != 1 else "")
        + (", the UNet in bf16 autocast where the CPU or GPU has native bf16" if c.get("precision") == "auto" else "")
        + ". The UNet works on 2x2-pixel patches (14x14x4) "
        "for speed. Load with `aigc_demo.models.diffusion.load_diffusion`; `unet/` and `scheduler/` are "
        "standard diffusers folders.",
        record, c.get("note", ""))
    write_model_card(out_dir, gallery={
        "title": title, "task": "image-generation", "family": "diffusion", "tab": "digits",
        "sample": "sample.png", "metrics": []},
        body=body, datasets=[dataset], tags=["diffusion", "ddpm", "conditional", dataset], library_name="diffusers")


DEFAULTS = {"batch_size": 128, "lr": 2e-3, "steps": 8000, "out_dir": "runs/diffusion-mnist",
            "log_every": 100, "checkpoint_every": 1000}


def main(argv: list[str] | None = None) -> int:
    return common.train_main("diffusion", DiffusionConfig, DEFAULTS, DiffusionTask, argv)
