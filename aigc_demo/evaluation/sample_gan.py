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


def main(argv: list[str] | None = None) -> int:
    from aigc_demo.models.digits_io import generate_per_digit, load_generator, torch_device

    parser = argparse.ArgumentParser(prog="python -m aigc_demo sample gan", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="GAN weights folder")
    parser.add_argument("--digits", default="0123456789")
    parser.add_argument("--per-digit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncation", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--out", required=True, help="output .npz file")
    args = parser.parse_args(argv)
    if args.per_digit < 1:
        parser.error("--per-digit must be at least 1")
    try:
        digits = parse_digits(args.digits)
    except ValueError as err:
        parser.error(str(err))
    generator = load_generator(args.model, torch_device(args.device))
    images, labels = generate_per_digit(generator, digits, args.per_digit, args.seed, args.truncation, args.batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels)
    print(f"wrote {len(images)} digits to {out}")
    return 0
