"""`python -m aigc_demo eval diffusion --model weights/diffusion-mnist --data-dir DIR`: FID, floor, accuracy, speed.

The same measures as `eval gan` (10,000 digits, 1,000 per class, seed 0, against the 10,000 test
digits on the shipped classifier's features; floor = training vs test digits), plus the wall time
of sampling those digits on this machine, since a diffusion model pays for its quality with steps.
`--steps` and `--guidance` override the folder's defaults; `--write-defaults` stores them in its
config.json (use it once the sweep has picked them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from aigc_demo.evaluation.digits_eval_common import base_parser, classifier_folder, record
from aigc_demo.evaluation.eval_gan import digit_metrics, eval_splits, score_digits


def sampler_settings(defaults: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """The folder's sampler defaults with --guidance-interval and --precision applied."""
    interval = defaults.guidance_interval
    if args.guidance_interval == "all":
        interval = (0.0, float("inf"))
    elif args.guidance_interval:
        try:
            lo, hi = (float(v) for v in args.guidance_interval.split(","))
        except ValueError:
            parser.error(f"--guidance-interval takes lo,hi or all (got {args.guidance_interval!r})")
        if not 0 <= lo <= hi:
            parser.error("--guidance-interval needs 0 <= lo <= hi")
        interval = (lo, hi)
    sigma_range = defaults.sigma_range
    if args.sigma_range == "t":
        sigma_range = None
    elif args.sigma_range:
        from aigc_demo.models.diffusion import parse_sigma_range

        try:
            sigma_range = parse_sigma_range(args.sigma_range)
        except ValueError as err:
            parser.error(f"{err}, or t for steps evenly spaced in training time")
    return dataclasses.replace(defaults, guidance_interval=interval, precision=args.precision or defaults.precision,
                               sigma_range=sigma_range)


def sampler_words(defaults: Any, bf16: bool) -> str:
    """The sampler settings in words, for the card's note."""
    lo, hi = defaults.guidance_interval
    words = f"guidance {defaults.guidance:g}"
    if defaults.guidance != 1.0 and (lo, hi) != (0.0, float("inf")):
        words += f" at noise levels sigma {lo:g}-{hi:g} only"
    if defaults.sigma_range:
        words += f", steps evenly spaced in log sigma {defaults.sigma_range[0]:g}-{defaults.sigma_range[1]:g}"
    return words + (", bf16 autocast" if defaults.precision == "auto" and bf16 else ", fp32")


def main(argv: list[str] | None = None) -> int:
    import torch

    from aigc_demo.models.diffusion import BATCH_SIZE, bf16_ok, generate_per_digit, load_diffusion
    from aigc_demo.models.digits_io import load_classifier, torch_device

    parser = base_parser("python -m aigc_demo eval diffusion", "FID, conditional accuracy and sampling time "
                         "of the class-conditional diffusion model")
    parser.add_argument("--classifier", default=None, help="classifier weights folder "
                        "(default: mnist-classifier beside --model)")
    parser.add_argument("--per-class", type=int, default=1000, help="generated digits per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=0, help="sampler steps (0: the folder's default)")
    parser.add_argument("--guidance", type=float, default=-1.0, help="classifier-free guidance (<0: the folder's default)")
    parser.add_argument("--guidance-interval", default=None, help="lo,hi: guide only at noise levels sigma in "
                        "[lo, hi] ('all': every step; default: the folder's)")
    parser.add_argument("--precision", default=None, choices=("auto", "fp32"),
                        help="auto: bf16 autocast where the device has native bf16 (default: the folder's)")
    parser.add_argument("--sigma-range", default=None, help="max,min: sampler steps evenly spaced in log sigma "
                        "over this range of noise levels ('t': evenly in training time; default: the folder's)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--write-defaults", action="store_true",
                        help="store the sampler settings used (steps, guidance, interval, precision) in config.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    device = torch_device(args.device)
    test_images, train_images = eval_splits(args.data_dir, args.dataset, args.limit)
    classifier_dir = classifier_folder(args.model, args.classifier)
    model = load_diffusion(args.model, device)
    model.defaults = sampler_settings(model.defaults, args, parser)
    steps = args.steps or model.default_steps
    guidance = model.default_guidance if args.guidance < 0 else args.guidance
    model.defaults = dataclasses.replace(model.defaults, steps=steps, guidance=guidance)
    sampling_started = time.perf_counter()
    fake, labels = generate_per_digit(model, range(10), args.per_class, args.seed, steps, guidance, args.batch_size)
    sampling_s = time.perf_counter() - sampling_started
    result = score_digits(fake, labels, load_classifier(classifier_dir, device), test_images, train_images, device)
    calls = model.model_calls(steps, guidance)
    where = "GPU" if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    sampler = sampler_words(model.defaults, bf16_ok(device))
    metrics = digit_metrics(result, args.per_class, classifier_dir) + [
        {"name": "Sampling time", "value": round(sampling_s, 1), "unit": "s", "lower_is_better": True,
         "note": f"{len(fake):,} digits, {steps} DPM-Solver++ steps ({calls} model calls per digit), "
                 f"{sampler}, batches of {args.batch_size}, {where}"},
    ]
    if args.write_defaults:
        config_path = Path(args.model) / "config.json"
        config = json.loads(config_path.read_text())
        config.update(model.defaults.as_config())
        config_path.write_text(json.dumps(config, indent=2))
    record(args.model, metrics, {**result, **model.defaults.as_config(), "model_calls_per_digit": calls,
                                 "sampling_steps": steps, "guidance": guidance,
                                 "sampling_seconds": round(sampling_s, 1), "torch_threads": torch.get_num_threads(),
                                 "seconds": round(time.perf_counter() - started, 1), "device": str(device),
                                 "classifier": str(classifier_dir)}, not args.no_card)
    return 0
