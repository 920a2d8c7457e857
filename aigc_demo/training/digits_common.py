"""What the three digit trainers (GAN, VAE, classifier) share: flags, seeds, records, model cards."""

from __future__ import annotations

import copy
import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aigc_demo.errors import UserError
from aigc_demo.training.engine import TrainResult, TrainSettings, run_training

DRY_RUN_STEPS = 5
DRY_RUN_LIMIT = 512  # training images a dry run loads


def parse(prog: str, config_cls: type, defaults: dict[str, Any],
          argv: list[str] | None) -> tuple[TrainSettings, Any]:
    """Loop flags (TrainSettings, `--out` = `--out-dir`) + the family's flags + `--dry-run`."""
    from aigc_demo.cliargs import dataclass_parser, parse_dataclasses  # imports transformers

    parser = dataclass_parser(prog, TrainSettings, config_cls, defaults=defaults)
    parser.add_argument("--dry-run", action="store_true",
                        help=f"{DRY_RUN_STEPS} steps on {DRY_RUN_LIMIT} images: checks the whole path quickly")
    settings, config, extra = parse_dataclasses(parser, argv)
    if extra.dry_run:
        settings.steps = min(settings.steps, DRY_RUN_STEPS)
        settings.log_every = 1
        settings.checkpoint_every = 0
        config.limit = DRY_RUN_LIMIT
        if hasattr(config, "eval_limit"):
            config.eval_limit = DRY_RUN_LIMIT
    return settings, config


def read_config(folder: str | Path) -> dict[str, Any]:
    """A weights folder's config.json (what `init_from` takes the architecture from)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise UserError(f"{folder} has no config.json: it is not a weights folder")
    return json.loads(path.read_text())


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


def enable_tf32() -> None:
    """TF32 matmuls/convolutions on Ampere+ GPUs (cuDNN already defaults to it for convolutions)."""
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def train_main(family: str, config_cls: type, defaults: dict[str, Any], task_cls: type,
               argv: list[str] | None) -> int:
    """`python -m aigc_demo train FAMILY ...`: parse flags, train, say where the weights are."""
    settings, config = parse(f"python -m aigc_demo train {family}", config_cls, defaults, argv)
    result = run_training(task_cls(config, settings), settings)
    print(f"trained {result.steps_done} steps in {result.seconds:.1f} s "
          f"({result.steps_per_s:.1f} steps/s); weights in {result.out_dir}; losses {result.final_losses}")
    return 0
