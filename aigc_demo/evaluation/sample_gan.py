"""`python -m aigc_demo sample gan --model weights/NAME --digits 0123456789 --per-digit 100 --seed 0 --out FILE.npz`.

Writes `images` (N x 28 x 28 uint8, 0 = background) and `labels` (N uint8), grouped by digit in
the order given. Noise is drawn on the CPU from the seed, so the same seed gives the same images
whatever the batch size (and, up to float rounding, whatever the device).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def parse_digits(text: str) -> list[int]:
    digits = [int(ch) for ch in text if ch.isdigit()]
    if not digits or any(not (ch.isdigit() or ch in ", ") for ch in text):
        raise ValueError(f"--digits must be digits 0-9, e.g. 0123456789 (got {text!r})")
    return digits


def sample_parser(prog: str, description: str, model_help: str, batch_size: int) -> argparse.ArgumentParser:
    """The flags every `sample <digit family>` command takes (each adds its own)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--model", required=True, help=model_help)
    parser.add_argument("--digits", default="0123456789")
    parser.add_argument("--per-digit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--out", required=True, help="output .npz file")
    return parser


def checked_digits(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[int]:
    """The digits asked for; bad `--digits` or `--per-digit` end with argparse's usage message."""
    if args.per_digit < 1:
        parser.error("--per-digit must be at least 1")
    try:
        return parse_digits(args.digits)
    except ValueError as err:
        parser.error(str(err))


def save_samples(out: str | Path, images: np.ndarray, labels: np.ndarray) -> None:
    """`images` and `labels` in one compressed .npz (the format every `sample` command writes)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels)
    print(f"wrote {len(images)} digits to {out}")


def main(argv: list[str] | None = None) -> int:
    from aigc_demo.models.digits_io import generate_per_digit, load_generator, torch_device

    parser = sample_parser("python -m aigc_demo sample gan", __doc__.split("\n")[0], "GAN weights folder", 1000)
    parser.add_argument("--truncation", type=float, default=1.0)
    args = parser.parse_args(argv)
    digits = checked_digits(parser, args)
    generator = load_generator(args.model, torch_device(args.device))
    images, labels = generate_per_digit(generator, digits, args.per_digit, args.seed, args.truncation, args.batch_size)
    save_samples(args.out, images, labels)
    return 0
