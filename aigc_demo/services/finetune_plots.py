"""Loss curves for the Fine-tune tab, drawn with matplotlib into a PIL image (no gradio here).

One panel per quantity the article discusses separately: generator and discriminator for a GAN,
reconstruction and KL for a VAE, training and validation loss (one panel) for a language model,
the noise-prediction MSE and the Min-SNR weighted loss it trains on for a diffusion model.
"""

from __future__ import annotations

import math
from typing import Any

PANELS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "gan": [("Generator loss", ("g_loss",)), ("Discriminator loss", ("d_loss",))],
    "vae": [("Reconstruction (nats)", ("recon",)), ("KL divergence (nats)", ("kl",))],
    "gpt": [("Language-model loss (nats/token)", ("loss", "val_loss"))],
    "lora": [("Language-model loss (nats/token)", ("loss", "val_loss"))],
    "diffusion": [("Noise-prediction error (MSE)", ("mse",)), ("Min-SNR weighted loss", ("weighted_loss",))],
}
LABELS = {"g_loss": "generator", "d_loss": "discriminator", "recon": "reconstruction", "kl": "KL",
          "loss": "train", "val_loss": "validation", "mse": "MSE", "weighted_loss": "weighted"}


def x_limits(steps: list[float], total_steps: int | None = None) -> tuple[float, float]:
    """The step axis: from 0 to the planned last step (or the last one seen), never a sliver around one point."""
    last = max([float(s) for s in steps] + [float(total_steps or 0), 1.0])
    return 0.0, last


def loss_plot(history: list[dict[str, float]], family: str, log_scale: bool = False,
              total_steps: int | None = None) -> Any:
    """A PIL image of the loss curves so far (an empty frame with a hint before the first point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    panels = PANELS.get(family, [("Loss", ("loss",))])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 2.8), dpi=100, squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        values_all = []
        for key in keys:
            points = [(row["step"], row[key]) for row in history
                      if key in row and row[key] is not None and math.isfinite(row[key])]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="." if len(points) < 30 else None, label=LABELS.get(key, key))
                values_all += ys
        ax.set_xlim(*x_limits([row["step"] for row in history], total_steps))
        if not values_all:
            ax.text(0.5, 0.5, "waiting for the first steps…", ha="center", va="center", transform=ax.transAxes,
                    fontsize=9, color="grey")
        elif log_scale:
            ax.set_yscale("log" if min(values_all) > 0 else "symlog")
        if len(keys) > 1 and values_all:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), bytes(fig.canvas.buffer_rgba())).convert("RGB")
    plt.close(fig)
    return image
