"""The 2-D VAE's latent plane: its decoded manifold (the latent map) and the test digits' scatter.

Both are drawn once per model folder and kept in `loading.registry`, within its memory budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.device import gpu_task
from aigc_demo.errors import UserError
from aigc_demo.loading import registry
from aigc_demo.services.digits import VAE2D_FOLDER, grid_image, load_vae, model_folder

MAP_SIZE = 15  # digits along each side of the latent map


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def latent_map(folder: str | Path | None = None, n: int = MAP_SIZE) -> Any:
    """The 2-D VAE's decoded manifold: an n x n grid of digits over the latent plane (cached)."""
    import torch

    from aigc_demo.models.vae import latent_grid  # torch: on first use

    folder = model_folder(folder, VAE2D_FOLDER, "VAE")
    V = load_vae(folder)
    if V.latent_dim != 2:
        raise UserError(f"The latent map needs a VAE with a 2-D latent; {folder.name} has {V.latent_dim}")

    def draw() -> Any:
        with torch.no_grad():
            probs = torch.sigmoid(V.decode(latent_grid(n).to(next(V.parameters()).device)).float())
        images = (probs.squeeze(1).cpu().numpy() * 255).round().astype(np.uint8)
        return grid_image(images, n, pad=0, scale=2)

    return registry.get(f"latent-map:{folder.resolve()}:{n}", draw, "cpu").copy()


def _scatter_base(folder: Path) -> tuple[Any, tuple[float, float, float, float], tuple[float, float, float, float]]:
    """Render the test-digit scatter once: (image, axes box in pixels (x0, y0, x1, y1), limits)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    path = folder / "latents.npz"
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    limit = 3.0
    if path.is_file():
        data = np.load(path)
        z, labels = data["z"].astype(np.float32), data["labels"]
        points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=4, alpha=0.6)
        fig.colorbar(points, ax=ax, ticks=range(10), fraction=0.046, pad=0.04)
        ax.set_title("Test digits in the 2-D latent space")
    else:
        ax.set_title("latents.npz missing: run `python -m aigc_demo eval vae`")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    fig.tight_layout()
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    x0, y0, x1, y1 = ax.get_window_extent().extents  # display coords, origin bottom-left
    plt.close(fig)
    return image, (x0, height - y1, x1, height - y0), (-limit, limit, -limit, limit)


def scatter_plot(folder: str | Path | None = None, point: tuple[float, float] | None = None) -> Any:
    """Scatter of test-digit latents coloured by class (from latents.npz), with `point` marked."""
    from PIL import ImageDraw

    folder = model_folder(folder, VAE2D_FOLDER, "VAE")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder.name} is not a model folder: pick a VAE from the list.")
    key = f"latent-scatter:{folder.resolve()}"
    base, (px0, py0, px1, py1), (xmin, xmax, ymin, ymax) = registry.get(key, lambda: _scatter_base(folder), "cpu")
    image = base.copy()
    if point is not None:
        x = px0 + (min(max(point[0], xmin), xmax) - xmin) / (xmax - xmin) * (px1 - px0)
        y = py1 - (min(max(point[1], ymin), ymax) - ymin) / (ymax - ymin) * (py1 - py0)
        draw = ImageDraw.Draw(image)
        draw.ellipse([x - 9, y - 9, x + 9, y + 9], outline=(0, 0, 0), width=3)
        draw.line([x - 13, y, x + 13, y], fill=(0, 0, 0), width=2)
        draw.line([x, y - 13, x, y + 13], fill=(0, 0, 0), width=2)
    return image
