"""Train the digit classifier: `python -m aigc_demo train classifier --data-dir DIR --out weights/NAME`.

Small random affine distortions (rotation, scale, shift) on the GPU keep it honest on drawn
digits and push test accuracy past 99%. It is the judge of GAN samples and FID's feature map.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_demo.data.idx import DigitsData, load_split, resolve_data_dir
from aigc_demo.data.images import grid_array, save_png
from aigc_demo.evaluation.eval_classifier import test_accuracy
from aigc_demo.modelcard import write_model_card
from aigc_demo.training import digits_common as common
from aigc_demo.training.engine import TrainResult, TrainSettings, make_optimizer
from aigc_demo.training.schedule import Progress, lr_factor, set_lr


@dataclass
class ClassifierConfig:
    data_dir: str = "data/mnist"
    dataset: str = "mnist"
    channels: int = 32
    feature_dim: int = 128
    dropout: float = 0.3
    augment: bool = True
    rotate_deg: float = 10.0
    shift_px: float = 2.0
    scale: float = 0.1
    label_smoothing: float = 0.0
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    weight_decay: float = 5e-4
    limit: int = 0
    eval_limit: int = 0  # test digits for the fp16 storage check (0: all)
    fp16: bool = True
    note: str = ""


def random_affine(x: Any, rng: Any, rotate_deg: float, shift_px: float, scale: float) -> Any:
    """Per-image random rotation/scale/shift of a batch (B, 1, H, W), with zero (background) fill."""
    import torch
    import torch.nn.functional as F

    B, device = x.shape[0], x.device
    u = torch.rand(B, 4, device=device, generator=rng) * 2 - 1
    angle = u[:, 0] * math.radians(rotate_deg)
    s = 1 + u[:, 1] * scale
    tx, ty = u[:, 2] * shift_px * 2 / x.shape[-1], u[:, 3] * shift_px * 2 / x.shape[-2]
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


class ClassifierTask:
    def __init__(self, config: ClassifierConfig, settings: TrainSettings) -> None:
        self.config, self.settings = config, settings
        self.items_per_step = settings.batch_size
        self.progress = Progress(settings.steps, settings.max_minutes)
        self.rng: Any = None

    def build(self, accelerator: Any) -> None:
        from aigc_demo.models.classifier import DigitClassifier

        cfg, s = self.config, self.settings
        self.accelerator = accelerator
        common.enable_tf32()
        self.data = DigitsData.load(cfg.data_dir, "train", accelerator.device, cfg.limit, cfg.dataset)
        model = DigitClassifier(channels=cfg.channels, feature_dim=cfg.feature_dim, dropout=cfg.dropout)
        opt = make_optimizer(s.optimizer, model.parameters(), s.lr, weight_decay=cfg.weight_decay)
        self.model, self.opt = accelerator.prepare(model, opt)

    def train_step(self, step: int) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg, s, acc = self.config, self.settings, self.accelerator
        if self.rng is None:
            self.rng = common.device_seed_generator(acc, s.seed, step)
        set_lr(self.opt, s.lr * lr_factor(self.progress(step), step, cfg.lr_schedule, cfg.warmup_steps))
        x, y = self.data.batch(s.batch_size, self.rng)
        if cfg.augment:
            x = random_affine(x, self.rng, cfg.rotate_deg, cfg.shift_px, cfg.scale)
        self.model.train()
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        self.opt.step()
        values = torch.stack([loss.detach(), (logits.argmax(1) == y).float().mean()]).tolist()
        return {"loss": values[0], "train_accuracy": values[1]}

    def preview(self) -> Any:
        return None

    def export(self, out_dir: Path, result: TrainResult) -> None:
        cfg, device = self.config, self.accelerator.device
        model = self.accelerator.unwrap_model(self.model).float().eval()
        images, labels = load_split(resolve_data_dir(cfg.data_dir, cfg.dataset), "test")
        if cfg.eval_limit:
            images, labels = images[:cfg.eval_limit], labels[:cfg.eval_limit]
        acc32 = test_accuracy(model, images, labels, device)
        acc16 = test_accuracy(copy.deepcopy(model).half().float(), images, labels, device)
        use_fp16 = cfg.fp16 and abs(acc16 - acc32) <= 1e-4
        common.save_module(model, out_dir, fp16=use_fp16)
        storage = (f"Storage: {'fp16' if use_fp16 else 'fp32'} (test accuracy on {len(labels)} digits: "
                   f"fp32 weights {100 * acc32:.2f}%, fp16-rounded {100 * acc16:.2f}%).")
        # sample.png: test digits with the classifier's answer is not an image of its own; show its inputs
        save_png(grid_array(images[:100], 10, 10), out_dir / "sample.png")
        record = common.write_training_record(out_dir, self.settings, cfg, result, device, {"note_storage": storage})
        write_classifier_card(out_dir, record)


def write_classifier_card(out_dir: Path, record: dict[str, Any]) -> None:
    dataset = record["config"]["dataset"]
    title = f"Digit classifier ({dataset})"
    body = common.card_body(
        title,
        "A small CNN (two conv blocks, a 128-unit hidden layer) that names the digit in a 28x28 image. "
        "The gallery uses it to judge GAN samples (conditional accuracy), as the feature map for FID "
        "(its 128-unit penultimate layer) and to say what a drawn digit looks like. "
        "Class: `aigc_demo.models.classifier.DigitClassifier`; `sample.png` shows test digits.",
        record, record["config"].get("note", ""))
    write_model_card(out_dir, gallery={
        "title": title, "task": "classification", "family": "classifier", "tab": "digits",
        "sample": "sample.png", "metrics": []},
        body=body, datasets=[dataset], tags=["classifier", dataset], library_name="pytorch")


DEFAULTS = {"batch_size": 256, "lr": 2e-3, "steps": 4000, "out_dir": "runs/mnist-classifier",
            "log_every": 100, "checkpoint_every": 2000}


def main(argv: list[str] | None = None) -> int:
    return common.train_main("classifier", ClassifierConfig, DEFAULTS, ClassifierTask, argv)
