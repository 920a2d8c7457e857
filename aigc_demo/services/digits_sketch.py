"""Reading a visitor's drawing: any sketch -> a 28x28 MNIST-style digit, its VAE reconstruction,
its place on the 2-D latent map and what the classifier thinks it is."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.device import gpu_task
from aigc_demo.errors import UserError
from aigc_demo.services import validate
from aigc_demo.services.digits import VAE2D_FOLDER, load_classifier, load_vae
from aigc_demo.services.digits_map import latent_map, scatter_plot

MAX_DATA_URL = 4_000_000  # characters: a 280x280 PNG drawing is ~10-40 kB


def decode_data_url(url: str) -> Any:
    """A drawing sent by the page's canvas ('data:image/png;base64,...') -> PIL image."""
    from PIL import Image

    if not url:
        raise UserError("The sketch is blank: draw a digit first")
    if len(url) > MAX_DATA_URL:
        raise UserError("The drawing is too large: draw on the sketchpad instead")
    head, _, payload = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise UserError("The drawing could not be read (expected a PNG data URL)")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
    except (binascii.Error, OSError, ValueError):
        raise UserError("The drawing could not be read (not an image)") from None
    if max(image.size) > 2048:
        raise UserError("The drawing is too large: at most 2048 x 2048 pixels")
    return image


def _to_array(sketch: Any) -> np.ndarray:
    """A Sketchpad value / data URL / PIL image / numpy array / Path -> float grey array (H, W), ink bright."""
    from PIL import Image

    if isinstance(sketch, dict):
        value = sketch.get("composite")
        if value is None and sketch.get("layers"):
            value = sketch["layers"][-1]
        if value is None:
            raise UserError("The sketch is empty: draw a digit first")
        sketch = value
    if isinstance(sketch, str) and (sketch == "" or sketch.startswith("data:")):
        sketch = decode_data_url(sketch)
    if isinstance(sketch, str):  # a visitor's text is never a server path
        raise UserError("The drawing could not be read (not an image): draw on the canvas.")
    if isinstance(sketch, Path):
        sketch = validate.open_image(sketch, "The drawing")
    if isinstance(sketch, Image.Image):
        if sketch.mode in ("RGBA", "LA", "P"):
            sketch = sketch.convert("RGBA")
        sketch = np.asarray(sketch)
    if not isinstance(sketch, np.ndarray):
        raise UserError(f"Expected an image (drawing, PIL image or array), got {type(sketch).__name__}")
    arr = sketch.astype(np.float64)
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        if arr.shape[2] in (2, 4):  # alpha: transparent = background (white paper)
            alpha = arr[..., -1:] / 255.0
            colour = arr[..., :-1]
            if alpha.min() < 1.0:
                colour = colour * alpha + 255.0 * (1 - alpha)
            arr = colour
        arr = arr.mean(axis=2)
    if arr.ndim != 2 or min(arr.shape) < 4:
        raise UserError(f"Expected a 2-D image, got an array of shape {sketch.shape}")
    if arr.max() <= 1.0 and arr.dtype != np.uint8 and sketch.dtype.kind == "f":
        arr = arr * 255.0
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    return 255.0 - arr if np.median(border) > 127 else arr


def sketch_to_mnist(sketch: Any) -> np.ndarray:
    """Any drawing -> float (28, 28) in [0, 1] the MNIST way: ink box scaled to 20 px, centred by mass."""
    from PIL import Image

    ink = _to_array(sketch)
    ink = np.clip(ink - np.percentile(ink, 5), 0, None)
    if ink.max() < 40 or (ink > 0.3 * ink.max()).sum() < 3:
        raise UserError("The sketch is blank: draw a digit first")
    mask = ink > 0.2 * ink.max()
    rows, cols = np.where(mask)
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    new = (max(1, round(w * s)), max(1, round(h * s)))
    small = np.asarray(Image.fromarray((crop / crop.max() * 255).astype(np.uint8)).resize(new, Image.Resampling.LANCZOS),
                       dtype=np.float64)
    canvas = np.zeros((28, 28))
    total = small.sum() or 1.0
    cy, cx = (np.arange(small.shape[0]) @ small.sum(1)) / total, (np.arange(small.shape[1]) @ small.sum(0)) / total
    top, left = int(round(14 - cy)), int(round(14 - cx))
    top, left = min(max(top, 0), 28 - small.shape[0]), min(max(left, 0), 28 - small.shape[1])
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(canvas / 255.0, 0, 1)


@dataclass
class SketchResult:
    digit: Any  # the drawing as the models see it (28x28, scaled up)
    reconstruction: Any  # the VAE's reconstruction (PIL)
    latent: tuple[float, float] | None  # position on the 2-D latent map (None for a larger latent)
    probabilities: dict[str, float]  # classifier: '0'..'9' -> probability
    latent_map: Any  # the 2-D VAE's decoded manifold (PIL)
    scatter: Any  # test-digit latents coloured by class, with this drawing marked (PIL)


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def reconstruct_sketch(sketch: Any, folder: str | Path | None = None, classifier_folder: str | Path | None = None,
                       scale: int = 6) -> SketchResult:
    """Encode a drawing with the 2-D VAE, decode it back, place it on the latent map, classify it."""
    import torch
    from PIL import Image

    x = sketch_to_mnist(sketch)
    folder = Path(folder) if folder else VAE2D_FOLDER
    V, C = load_vae(folder), load_classifier(classifier_folder)
    device = next(V.parameters()).device
    with torch.no_grad():
        xt = torch.from_numpy(x).float().view(1, 1, 28, 28).to(device)
        mean, _ = V.encode(xt)
        recon = torch.sigmoid(V.decode(mean).float())[0, 0].cpu().numpy()
        probs = torch.softmax(C(xt.to(next(C.parameters()).device)).float(), 1)[0].cpu().numpy()
    latent = (float(mean[0, 0]), float(mean[0, 1])) if V.latent_dim == 2 else None

    def big(a: np.ndarray) -> Any:
        return Image.fromarray((a * 255).round().astype(np.uint8)).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)

    return SketchResult(big(x), big(recon), latent, {str(i): float(p) for i, p in enumerate(probs)},
                        latent_map(folder), scatter_plot(folder, latent))
