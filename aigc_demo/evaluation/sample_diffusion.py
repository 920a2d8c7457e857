"""`python -m aigc_demo sample diffusion --model weights/diffusion-mnist --digits 0123456789 --per-digit 100 --seed 0 --out FILE.npz`.

Writes `images` (N x 28 x 28 uint8, 0 = background) and `labels` (N uint8), grouped by digit in
the order given, exactly like `sample gan`. The starting noise is drawn on the CPU from the seed
and the sampler (DPM-Solver++) adds none after it, so the same seed gives the same digits
whatever the batch size (and, up to float rounding, whatever the device).
"""

from __future__ import annotations

from aigc_demo.evaluation.sample_gan import checked_digits, sample_parser, save_samples


def main(argv: list[str] | None = None) -> int:
    from aigc_demo.models.diffusion import BATCH_SIZE, generate_per_digit, load_diffusion
    from aigc_demo.models.digits_io import torch_device

    parser = sample_parser("python -m aigc_demo sample diffusion", __doc__.split("\n")[0],
                           "diffusion weights folder (unet/ and scheduler/)", BATCH_SIZE)
    parser.add_argument("--steps", type=int, default=0, help="sampler steps (0: the folder's default)")
    parser.add_argument("--guidance", type=float, default=-1.0, help="classifier-free guidance (<0: the folder's default)")
    args = parser.parse_args(argv)
    digits = checked_digits(parser, args)
    if args.steps < 0 or args.steps > 1000:
        parser.error("--steps must be from 1 to 1000 (0: the folder's default)")
    try:
        model = load_diffusion(args.model, torch_device(args.device))
    except FileNotFoundError as err:
        parser.error(str(err))
    images, labels = generate_per_digit(model, digits, args.per_digit, args.seed, args.steps or None,
                                        None if args.guidance < 0 else args.guidance, args.batch_size)
    save_samples(args.out, images, labels)
    return 0
