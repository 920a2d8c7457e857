"""`python -m aigc_demo eval vae --model weights/vae-mnist-32d --data-dir DIR`: IWAE NLL, ELBO, recon, KL.

Also (re)writes `sample.png`, and for a 2-D latent `latents.npz` (test-digit latent means and
labels, for the latent map's scatter plot), so the folder is complete after an eval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.data.idx import DigitsData
from aigc_demo.data.images import grid_array, save_png
from aigc_demo.evaluation.digits_eval_common import base_parser, record

SCATTER_POINTS = 5000


def write_vae_sample(model: Any, out_dir: Path, device: Any) -> None:
    """sample.png: decoded random normal noise (8 x 8), or the latent map for a 2-D VAE."""
    import torch

    from aigc_demo.models.vae import latent_grid

    with torch.no_grad():
        if model.latent_dim == 2:
            z = latent_grid(12).to(device)
            rows = 12
        else:
            z = torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
            rows = 8
        probs = torch.sigmoid(model.decode(z).float())
    save_png(grid_array((probs * 255).round().byte().squeeze(1).cpu().numpy(), rows, rows), Path(out_dir) / "sample.png")


def write_latent_scatter(model: Any, test: Any, out_dir: Path, device: Any, points: int = SCATTER_POINTS) -> Path:
    """latents.npz: `z` (N, 2) float16 latent means of the first N test digits, `labels` (N,) uint8."""
    import torch

    from aigc_demo.evaluation.nll import binarize_fixed

    x = binarize_fixed(test.images[:points]).to(device)
    with torch.no_grad():
        mean = torch.cat([model.encode(x[i:i + 1000])[0].float().cpu() for i in range(0, len(x), 1000)])
    path = Path(out_dir) / "latents.npz"
    np.savez_compressed(path, z=mean.numpy().astype(np.float16), labels=test.labels[:points].cpu().numpy().astype(np.uint8))
    return path


def main(argv: list[str] | None = None) -> int:
    from aigc_demo.evaluation.nll import binarize_fixed, iwae_nll
    from aigc_demo.models.digits_io import load_vae, torch_device

    parser = base_parser("python -m aigc_demo eval vae", "test NLL (IWAE) and ELBO of a VAE")
    parser.add_argument("--k", type=int, default=1000, help="importance samples per digit (>= 1000 for the card)")
    parser.add_argument("--images-per-batch", type=int, default=0, help="0: 50 on CUDA, 4 elsewhere")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error("--k must be at least 1")
    started = time.perf_counter()
    device = torch_device(args.device)
    model = load_vae(args.model, device)
    test = DigitsData.load(args.data_dir, "test", "cpu", args.limit, args.dataset)
    x = binarize_fixed(test.images).to(device)
    cuda = device.type == "cuda"
    per_batch = args.images_per_batch or (50 if cuda else 4)
    result = iwae_nll(model, x, k=args.k, seed=args.seed, images_per_batch=per_batch,
                      samples_per_pass=50_000 if cuda else 4_000)
    write_vae_sample(model, Path(args.model), device)
    if model.latent_dim == 2:
        write_latent_scatter(model, test, Path(args.model), device)
    n, k = result["n"], result["k"]
    data = f"{n} {args.dataset} test digits, stochastically binarized once (seed 0)"
    metrics = [
        {"name": "Test NLL (IWAE)", "value": round(result["nll"], 2), "unit": "nats", "lower_is_better": True,
         "note": f"importance-weighted bound, k={k} samples per digit, {data}"},
        {"name": "Test ELBO", "value": round(result["elbo"], 2), "unit": "nats", "lower_is_better": False,
         "note": f"mean over the {k} samples"},
        {"name": "Reconstruction", "value": round(result["recon"], 2), "unit": "nats", "lower_is_better": True,
         "note": "-log p(x|z), z ~ q(z|x)"},
        {"name": "KL", "value": round(result["kl"], 2), "unit": "nats", "note": "KL(q(z|x) || N(0, I))"},
    ]
    record(args.model, metrics, {**result, "seconds": round(time.perf_counter() - started, 1), "device": str(device)},
           not args.no_card)
    return 0
