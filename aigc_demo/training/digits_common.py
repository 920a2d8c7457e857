"""What the three digit trainers (GAN, VAE, classifier) share: flags, schedules, export helpers."""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aigc_demo.cliargs import add_dataclass_args, dataclass_from_args
from aigc_demo.training.engine import TrainResult, TrainSettings

DRY_RUN_STEPS = 5
DRY_RUN_LIMIT = 512  # training images a dry run loads


def build_parser(prog: str, config_cls: type, defaults: dict[str, Any]) -> argparse.ArgumentParser:
    """Loop flags (TrainSettings) + the family's flags + `--out` and `--dry-run`."""
    parser = argparse.ArgumentParser(prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dataclass_args(parser, TrainSettings)
    add_dataclass_args(parser, config_cls)
    parser.add_argument("--out", dest="out_dir", default=argparse.SUPPRESS,
                        help="weights folder to write (same as --out-dir)")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"{DRY_RUN_STEPS} steps on {DRY_RUN_LIMIT} images: checks the whole path quickly")
    parser.set_defaults(**defaults)
    return parser


def parse(parser: argparse.ArgumentParser, config_cls: type, argv: list[str] | None) -> tuple[TrainSettings, Any]:
    args = parser.parse_args(argv)
    settings = dataclass_from_args(TrainSettings, args)
    config = dataclass_from_args(config_cls, args)
    if args.dry_run:
        settings.steps = min(settings.steps, DRY_RUN_STEPS)
        settings.log_every = 1
        settings.checkpoint_every = 0
        config.limit = DRY_RUN_LIMIT
        if hasattr(config, "eval_limit"):
            config.eval_limit = DRY_RUN_LIMIT
    return settings, config


class Progress:
    """Training progress in [0, 1]: steps done or time used, whichever is further along, so a
    schedule (lr decay, KL warm-up) completes even when `--max-minutes` ends the run early."""

    def __init__(self, steps: int, max_minutes: float) -> None:
        self.steps, self.budget_s = steps, max_minutes * 60.0
        self.started: float | None = None

    def __call__(self, step: int) -> float:
        if self.started is None:
            self.started = time.perf_counter()
        frac = step / max(self.steps, 1)
        if self.budget_s > 0:
            frac = max(frac, (time.perf_counter() - self.started) / self.budget_s)
        return min(frac, 1.0)


def lr_factor(progress: float, step: int, schedule: str, warmup_steps: int, min_factor: float = 0.02) -> float:
    """Multiplier of the base learning rate: linear warm-up, then constant or cosine decay."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "constant":
        return warm
    if schedule == "cosine":
        return warm * (min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise ValueError(f"lr schedule must be constant or cosine (got {schedule!r})")


def set_lr(optimizer: Any, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def device_seed_generator(accelerator: Any, seed: int, step: int) -> Any:
    """A random stream on the training device, distinct per process and per resume point."""
    import torch

    gen = torch.Generator(device=accelerator.device)
    gen.manual_seed(int(seed) * 1_000_003 + int(step) * 7919 + accelerator.process_index)
    return gen


def hardware_name(device: Any) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"


def save_module(model: Any, folder: Path, fp16: bool) -> None:
    """`save_pretrained` (config.json + model.safetensors), optionally with fp16 storage."""
    to_save = copy.deepcopy(model).float()
    if fp16:
        to_save = to_save.half()
    to_save.cpu().save_pretrained(folder)


def write_training_record(folder: Path, settings: TrainSettings, config: Any, result: TrainResult,
                          device: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`training.json`: how the weights were made, read back by the model card and the recipe."""
    record = {
        "settings": asdict(settings), "config": asdict(config),
        "steps_done": result.steps_done, "stopped_early": result.stopped,
        "wall_seconds": round(result.seconds, 1), "steps_per_s": round(result.steps_per_s, 2),
        "items_per_s": round(result.items_per_s, 1), "hardware": hardware_name(device),
        "final_losses": {k: round(v, 4) for k, v in result.final_losses.items()},
        **(extra or {}),
    }
    (folder / "training.json").write_text(json.dumps(record, indent=2))
    return record


def card_body(title: str, what: str, record: dict[str, Any], note: str = "") -> str:
    """Model card text: what the model is, how it was made, with which settings."""
    s, c = record["settings"], record["config"]
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in c.items() if k not in ("data_dir", "note", "limit"))
    lines = [
        f"# {title}", "", what, "",
        "## How it was made", "",
        f"- Dataset: {c.get('dataset', 'mnist')} training split (60,000 digits, IDX files)"
        + (f", first {c['limit']} only" if c.get("limit") else ""),
        f"- Hardware: {record['hardware']}",
        f"- Steps: {record['steps_done']} of {s['steps']}"
        + (" (stopped by the time budget)" if record["stopped_early"] else "")
        + f", batch size {s['batch_size']}, wall time {record['wall_seconds']} s "
        f"({record['steps_per_s']} steps/s)",
        f"- Optimizer: {s['optimizer']}, learning rate {s['lr']}, mixed precision {s['mixed_precision']}, seed {s['seed']}",
        f"- Model/data settings: `{flags}`",
        f"- Final training losses: {record['final_losses']}",
    ]
    for key, value in record.items():
        if key.startswith("note_"):
            lines.append(f"- {value}")
    if note:
        lines += ["", note]
    lines += ["", "Metrics in the header are measured by `python -m aigc_demo eval ...` on the test split.",
              "Full settings: `training.json`."]
    return "\n".join(lines)


def grid_array(images_uint8: Any, rows: int, cols: int, pad: int = 2, invert: bool = False) -> Any:
    """uint8 (N, 28, 28) -> one uint8 grid array (numpy only)."""
    import numpy as np

    arr = np.asarray(images_uint8, dtype=np.uint8)
    n, h, w = arr.shape
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.uint8)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = arr[i]
    return 255 - grid if invert else grid


def image_grid(images_uint8: Any, rows: int, cols: int, pad: int = 2, invert: bool = False) -> Any:
    """uint8 (N, 28, 28) -> one PIL grayscale grid image."""
    from PIL import Image

    return Image.fromarray(grid_array(images_uint8, rows, cols, pad, invert))


def save_png(gray: Any, path: str | Path) -> Path:
    """Write a uint8 grayscale array as PNG without Pillow (the GPU box may not have it)."""
    import struct
    import zlib

    import numpy as np

    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)
    return Path(path)

def enable_tf32() -> None:
    """TF32 matmuls/convolutions on Ampere+ GPUs (cuDNN already defaults to it for convolutions)."""
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def preview_grid(images_uint8: Any, rows: int, cols: int) -> Any:
    """A PIL grid for progress previews, or None where Pillow is missing (headless GPU boxes)."""
    try:
        return image_grid(images_uint8, rows, cols)
    except ImportError:
        return None


def train_main(family: str, config_cls: type, defaults: dict[str, Any], task_cls: type,
               argv: list[str] | None) -> int:
    """`python -m aigc_demo train FAMILY ...`: parse flags, train, say where the weights are."""
    from aigc_demo.training.engine import run_training

    parser = build_parser(f"python -m aigc_demo train {family}", config_cls, defaults)
    settings, config = parse(parser, config_cls, argv)
    result = run_training(task_cls(config, settings), settings)
    print(f"trained {result.steps_done} steps in {result.seconds:.1f} s "
          f"({result.steps_per_s:.1f} steps/s); weights in {result.out_dir}; losses {result.final_losses}")
    return 0
