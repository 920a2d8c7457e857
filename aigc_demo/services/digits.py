"""Digits studio services: what the Digits tab calls (GAN grids, handwriting, latent walks, sketches).

Plain values in, PIL images / numpy / bytes out; bad input raises ValueError with a message a user
can act on. Models load once through `loading.registry` from weights folders (an argument picks
the folder; defaults are the shipped ones). The `*_batched` functions take lists (one entry per
request) and run one forward pass for all of them, for Gradio's `batch=True`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aigc_demo.device import gpu_task

WEIGHTS_ROOT = Path(__file__).resolve().parents[2] / "weights"
GAN_FOLDER = WEIGHTS_ROOT / "dcgan-mnist"
VAE2D_FOLDER = WEIGHTS_ROOT / "vae-mnist-2d"
VAE_FOLDER = WEIGHTS_ROOT / "vae-mnist-32d"
CLASSIFIER_FOLDER = WEIGHTS_ROOT / "mnist-classifier"

MAX_GRID = 100  # digits in one grid; larger counts are clamped to this
MAX_TEXT = 40  # characters in the handwriting box
MAX_SEED = 2**32 - 1
MAX_WALK_STEPS = 64
TRUNCATION_RANGE = (0.1, 2.0)
TEXT_EXTRAS = ".- ,"  # rendered as small marks / gaps; anything else is rejected


# ---------------------------------------------------------------- downloads
DOWNLOAD_TTL_S = 3600  # named download files older than this are removed on the next write
_UNSAFE = __import__("re").compile(r"[^A-Za-z0-9._-]+")


def download_name(kind: str, *parts: Any, suffix: str = ".png") -> str:
    """A file name that says what is inside, e.g. handwriting-2026.png, digits-grid-seed42.png."""
    words = [kind, *(_UNSAFE.sub("_", str(p)).strip("._") for p in parts)]
    stem = "-".join(w for w in words if w)[:80]
    return stem + suffix


def named_file(name: str, data: Any) -> str:
    """Write `data` (PNG/GIF bytes or a PIL image) as `name` in a fresh folder; its path.

    Gradio offers the file for download under this name (rather than tmpXXXX.png). Old files are
    swept here so the folder does not grow without end."""
    import tempfile
    import time

    root = Path(tempfile.gettempdir()) / "aigc-downloads"
    root.mkdir(exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > DOWNLOAD_TTL_S:
                for f in old.iterdir():
                    f.unlink()
                old.rmdir()
        except OSError:
            pass
    folder = Path(tempfile.mkdtemp(dir=root))
    path = folder / name
    if isinstance(data, (bytes, bytearray)):
        path.write_bytes(data)
    else:
        data.save(path)
    return str(path)


# ---------------------------------------------------------------- validation
def check_seed(seed: Any) -> int:
    """A seed as int in [0, MAX_SEED]; anything else gets a clear message."""
    try:
        value = int(seed)
    except (TypeError, ValueError):
        raise ValueError(f"Seed must be a whole number, got {seed!r}") from None
    if isinstance(seed, float) and seed != value:
        raise ValueError(f"Seed must be a whole number, got {seed}")
    if value < 0:
        raise ValueError(f"Seed must be 0 or more (got {value})")
    if value > MAX_SEED:
        raise ValueError(f"Seed must be at most {MAX_SEED:,} (got {value:,})")
    return value


def check_truncation(truncation: Any) -> float:
    try:
        value = float(truncation)
    except (TypeError, ValueError):
        raise ValueError(f"Truncation must be a number, got {truncation!r}") from None
    low, high = TRUNCATION_RANGE
    if not low <= value <= high:
        raise ValueError(f"Truncation must be between {low} and {high} (got {value})")
    return value


def clamp_count(count: Any, maximum: int = MAX_GRID) -> int:
    """Digits to draw, clamped to [1, maximum] (the tab shows the limit)."""
    try:
        value = int(count)
    except (TypeError, ValueError):
        raise ValueError(f"Count must be a whole number, got {count!r}") from None
    return max(1, min(value, maximum))


def parse_digit_choice(digits: Any) -> list[int] | None:
    """'0123' / [0, 1] / 'random' / '' / None -> list of digits, or None for random digits."""
    if digits is None:
        return None
    if isinstance(digits, str):
        text = digits.strip().lower()
        if text in ("", "random", "any"):
            return None
        bad = sorted({ch for ch in text if not (ch.isdigit() or ch in ", ")})
        if bad:
            raise ValueError(f"Digits must be 0-9 (or 'random'); remove {' '.join(repr(b) for b in bad)}")
        return [int(ch) for ch in text if ch.isdigit()]
    values = [int(d) for d in digits]
    if not values:
        return None
    if any(not 0 <= d <= 9 for d in values):
        raise ValueError(f"Digits must be 0-9, got {values}")
    return values


def check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Type some digits to write, e.g. 2026 or 3.14159")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"At most {MAX_TEXT} characters can be written at once (got {len(text):,})")
    bad = sorted({ch for ch in text if not (ch.isdigit() or ch in TEXT_EXTRAS)})
    if bad:
        raise ValueError("Only digits 0-9 (and . - , or spaces) can be written; remove "
                         + " ".join(repr(b) for b in bad))
    if not any(ch.isdigit() for ch in text):
        raise ValueError("Type at least one digit, e.g. 2026")
    return text


# ---------------------------------------------------------------- models
def _device() -> Any:
    from aigc_demo.device import pick_device

    return pick_device().torch_device


def _get(kind: str, folder: str | Path | None, default: Path) -> Any:
    from aigc_demo.loading import registry
    from aigc_demo.models import digits_io

    from aigc_demo.services import validate

    folder = validate.identifier(folder, f"The {kind} model", required=False)
    path = Path(folder) if folder else default
    loader = {"gan": digits_io.load_generator, "vae": digits_io.load_vae,
              "classifier": digits_io.load_classifier}[kind]
    device = _device()
    try:
        found = (path / "model.safetensors").is_file()
    except OSError:  # a name the file system refuses
        found = False
    if not found:
        raise ValueError(f"The {kind} weights are missing ({path}); train them with "
                         f"`python -m aigc_demo train {kind}` or pick another folder")
    return registry.get(f"digits-{kind}:{path.resolve()}", lambda: loader(path, device), device.type)


def load_gan(folder: str | Path | None = None) -> Any:
    return _get("gan", folder, GAN_FOLDER)


def load_vae(folder: str | Path | None = None) -> Any:
    return _get("vae", folder, VAE_FOLDER)


def load_classifier(folder: str | Path | None = None) -> Any:
    return _get("classifier", folder, CLASSIFIER_FOLDER)


# ---------------------------------------------------------------- images
def _grid(images: np.ndarray, columns: int, pad: int = 2, invert: bool = False, scale: int = 1) -> Any:
    from PIL import Image

    from aigc_demo.data.images import image_grid

    rows = max(1, -(-len(images) // columns))
    image = image_grid(images, rows, columns, pad, invert)
    if scale <= 1:
        return image
    # Whole pixels doubled: crisp digits, and far cheaper than a bicubic filter.
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def _gif(frames: list[Any], ms_per_frame: int = 80) -> bytes:
    buffer = io.BytesIO()
    loop = frames + frames[-2:0:-1]  # there and back again
    loop[0].save(buffer, format="GIF", save_all=True, append_images=loop[1:], duration=ms_per_frame, loop=0)
    return buffer.getvalue()


# ---------------------------------------------------------------- GAN grid
@dataclass
class GridRequest:
    labels: np.ndarray
    seed: int
    truncation: float
    columns: int


def grid_request(digits: Any = None, count: Any = 16, seed: Any = 0, truncation: Any = 1.0) -> GridRequest:
    """Validate one grid request: digits repeat in order to fill `count`; None/'random' draws them from the seed."""
    n, seed, truncation = clamp_count(count), check_seed(seed), check_truncation(truncation)
    chosen = parse_digit_choice(digits)
    if chosen is None:
        labels = np.random.default_rng(seed).integers(0, 10, n)
    else:
        labels = np.asarray([chosen[i % len(chosen)] for i in range(n)])
    columns = 10 if n >= 10 and n % 10 == 0 else min(n, 8)
    return GridRequest(labels.astype(np.int64), seed, truncation, columns)


def generate_digits_batched(requests: Sequence[GridRequest], folder: str | Path | None = None) -> list[np.ndarray]:
    """uint8 digits (n_i, 28, 28) per request, all requests in one forward pass."""
    import torch

    from aigc_demo.models.digits_io import generate, noise

    G = load_gan(folder)
    z = torch.cat([noise(len(r.labels), G.z_dim, r.seed, r.truncation) for r in requests])
    labels = np.concatenate([r.labels for r in requests])
    images = generate(G, labels, z, batch_size=4096)
    out, start = [], 0
    for r in requests:
        out.append(images[start:start + len(r.labels)])
        start += len(r.labels)
    return out


def generate_grid(digits: Any = None, count: Any = 16, seed: Any = 0, truncation: Any = 1.0,
                  folder: str | Path | None = None, scale: int = 2) -> Any:
    """A PIL grid of GAN digits (white on black, like MNIST)."""
    return generate_grid_batched([digits], [count], [seed], [truncation], folder, scale)[0]


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def generate_grid_batched(digits: list, counts: list, seeds: list, truncations: list,
                          folder: str | Path | None = None, scale: int = 2) -> list[Any]:
    """Gradio batch form of `generate_grid`: lists in, list of PIL grids out."""
    requests = [grid_request(d, c, s, t) for d, c, s, t in zip(digits, counts, seeds, truncations)]
    images = generate_digits_batched(requests, folder)
    return [_grid(im, r.columns, scale=scale) for im, r in zip(images, requests)]


# ---------------------------------------------------------------- handwriting
def _render_line(text: str, digit_images: np.ndarray, invert: bool, scale: int) -> Any:
    from PIL import Image

    cells = []
    it = iter(digit_images)
    for ch in text:
        if ch.isdigit():
            cells.append(next(it))
        elif ch == " ":
            cells.append(np.zeros((28, 14), dtype=np.uint8))
        else:  # '.', ',', '-': a small mark in a narrow cell
            cell = np.zeros((28, 12), dtype=np.uint8)
            if ch == "-":
                cell[13:16, 2:10] = 230
            else:
                cell[21:25, 4:8] = 230
                if ch == ",":
                    cell[25:27, 4:6] = 200
            cells.append(cell)
    line = np.concatenate([np.pad(c, ((4, 4), (0, 0))) for c in cells], axis=1)
    line = np.pad(line, ((0, 0), (4, 4)))
    if invert:
        line = 255 - line
    image = Image.fromarray(line)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.BILINEAR) if scale > 1 else image


def handwriting(text: Any, seed: Any = 0, truncation: Any = 0.8, folder: str | Path | None = None,
                invert: bool = True, scale: int = 2) -> Any:
    """Text like '2026' or '3.14159' as one line of generated digits in one style (shared noise)."""
    return handwriting_batched([text], [seed], [truncation], folder, invert, scale)[0]


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def handwriting_batched(texts: list, seeds: list, truncations: list, folder: str | Path | None = None,
                        invert: bool = True, scale: int = 2) -> list[Any]:
    import torch

    from aigc_demo.models.digits_io import generate, noise

    checked = [(check_text(t), check_seed(s), check_truncation(tr)) for t, s, tr in zip(texts, seeds, truncations)]
    G = load_gan(folder)
    zs, labels = [], []
    for text, seed, trunc in checked:
        digits = [int(ch) for ch in text if ch.isdigit()]
        zs.append(noise(1, G.z_dim, seed, trunc).repeat(len(digits), 1))  # one style for the whole line
        labels += digits
    images = generate(G, np.asarray(labels), torch.cat(zs), batch_size=4096)
    out, start = [], 0
    for text, _, _ in checked:
        n = sum(ch.isdigit() for ch in text)
        out.append(_render_line(text, images[start:start + n], invert, scale))
        start += n
    return out


# ---------------------------------------------------------------- latent walks
@dataclass
class WalkResult:
    frames: list[Any]  # PIL images, one per step
    strip: Any  # all frames side by side
    gif: bytes  # animated GIF (forward and back)
    info: dict[str, Any] = field(default_factory=dict)


def _slerp(a: Any, b: Any, t: Any) -> Any:
    """Spherical interpolation: stays at the typical norm of Gaussian noise (no grey middle)."""
    import torch

    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t.view(-1, 1)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def _walk_result(images: np.ndarray, scale: int, info: dict[str, Any]) -> WalkResult:
    from PIL import Image

    frames = [Image.fromarray(im).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST) for im in images]
    return WalkResult(frames, _grid(images, len(images), scale=scale), _gif(frames), info)


def _check_steps(steps: Any) -> int:
    try:
        value = int(steps)
    except (TypeError, ValueError):
        raise ValueError(f"Steps must be a whole number, got {steps!r}") from None
    if not 2 <= value <= MAX_WALK_STEPS:
        raise ValueError(f"Steps must be between 2 and {MAX_WALK_STEPS} (got {value})")
    return value


def _check_digit(d: Any) -> int:
    try:
        value = int(d)
    except (TypeError, ValueError):
        raise ValueError(f"Pick a digit 0-9, got {d!r}") from None
    if not 0 <= value <= 9:
        raise ValueError(f"Pick a digit 0-9, got {value}")
    return value


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def gan_walk(seed_a: Any, seed_b: Any, digit: Any = 3, steps: Any = 16, truncation: Any = 1.0,
             folder: str | Path | None = None, scale: int = 4) -> WalkResult:
    """The GAN's digit morphing from the noise of seed A to that of seed B (same label)."""
    import torch

    from aigc_demo.models.digits_io import generate, noise

    sa, sb, d, n, tr = check_seed(seed_a), check_seed(seed_b), _check_digit(digit), _check_steps(steps), check_truncation(truncation)
    G = load_gan(folder)
    z = _slerp(noise(1, G.z_dim, sa, tr)[0], noise(1, G.z_dim, sb, tr)[0], torch.linspace(0, 1, n))
    images = generate(G, np.full(n, d), z)
    return _walk_result(images, scale, {"model": "gan", "digit": d, "seeds": [sa, sb]})


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def vae_walk(digit_a: Any, digit_b: Any, steps: Any = 16, seed: Any = 0, folder: str | Path | None = None,
             gan_folder: str | Path | None = None, scale: int = 4) -> WalkResult:
    """The VAE decoding points on the line between a digit A and a digit B in its latent space.

    The two end digits are drawn by the GAN (the app ships no dataset), then encoded by the VAE.
    """
    import torch

    from aigc_demo.models.digits_io import generate, noise

    a, b, n, seed = _check_digit(digit_a), _check_digit(digit_b), _check_steps(steps), check_seed(seed)
    G, V = load_gan(gan_folder), load_vae(folder)
    ends = generate(G, np.asarray([a, b]), noise(1, G.z_dim, seed, 0.8).repeat(2, 1))
    device = next(V.parameters()).device
    with torch.no_grad():
        mean, _ = V.encode(torch.from_numpy(ends).float().div(255).unsqueeze(1).to(device))
        t = torch.linspace(0, 1, n, device=device).view(-1, 1)
        z = (1 - t) * mean[0] + t * mean[1]
        probs = torch.sigmoid(V.decode(z).float()).squeeze(1).cpu().numpy()
    images = (probs * 255).round().astype(np.uint8)
    return _walk_result(images, scale, {"model": "vae", "digits": [a, b], "latent_dim": int(V.latent_dim)})


# ---------------------------------------------------------------- sketches
MAX_DATA_URL = 4_000_000  # characters: a 280x280 PNG drawing is ~10-40 kB


def decode_data_url(url: str) -> Any:
    """A drawing sent by the page's canvas ('data:image/png;base64,...') -> PIL image."""
    import base64
    import binascii
    import io

    from PIL import Image

    if not url:
        raise ValueError("The sketch is blank: draw a digit first")
    if len(url) > MAX_DATA_URL:
        raise ValueError("The drawing is too large: draw on the sketchpad instead")
    head, _, payload = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise ValueError("The drawing could not be read (expected a PNG data URL)")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
    except (binascii.Error, OSError, ValueError):
        raise ValueError("The drawing could not be read (not an image)") from None
    if max(image.size) > 2048:
        raise ValueError("The drawing is too large: at most 2048 x 2048 pixels")
    return image


def _to_array(sketch: Any) -> np.ndarray:
    """A Sketchpad value / data URL / PIL image / numpy array / Path -> float grey array (H, W), ink bright."""
    from PIL import Image

    if isinstance(sketch, dict):
        value = sketch.get("composite")
        if value is None and sketch.get("layers"):
            value = sketch["layers"][-1]
        if value is None:
            raise ValueError("The sketch is empty: draw a digit first")
        sketch = value
    if isinstance(sketch, str) and (sketch == "" or sketch.startswith("data:")):
        sketch = decode_data_url(sketch)
    if isinstance(sketch, str):  # a visitor's text is never a server path
        raise ValueError("The drawing could not be read (not an image): draw on the canvas.")
    if isinstance(sketch, Path):
        from aigc_demo.services.validate import open_image

        sketch = open_image(sketch, "The drawing")
    if isinstance(sketch, Image.Image):
        if sketch.mode in ("RGBA", "LA", "P"):
            sketch = sketch.convert("RGBA")
        sketch = np.asarray(sketch)
    if not isinstance(sketch, np.ndarray):
        raise ValueError(f"Expected an image (drawing, PIL image or array), got {type(sketch).__name__}")
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
        raise ValueError(f"Expected a 2-D image, got an array of shape {sketch.shape}")
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
        raise ValueError("The sketch is blank: draw a digit first")
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


# ---------------------------------------------------------------- latent map and scatter
MAP_SIZE = 15  # the latent map and the scatter are cached in the registry, within its memory budget


def _folder(folder: str | Path | None, default: Path, role: str) -> Path:
    from aigc_demo.services import validate

    ref = validate.identifier(None if folder is None else str(folder), f"The {role} model", required=False)
    return Path(ref) if ref else default


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def latent_map(folder: str | Path | None = None, n: int = MAP_SIZE) -> Any:
    """The 2-D VAE's decoded manifold: an n x n grid of digits over the latent plane (cached)."""
    import torch

    from aigc_demo.models.vae import latent_grid

    from aigc_demo.loading import registry

    folder = _folder(folder, VAE2D_FOLDER, "VAE")
    V = load_vae(folder)
    if V.latent_dim != 2:
        raise ValueError(f"The latent map needs a VAE with a 2-D latent; {folder.name} has {V.latent_dim}")

    def draw() -> Any:
        with torch.no_grad():
            probs = torch.sigmoid(V.decode(latent_grid(n).to(next(V.parameters()).device)).float())
        images = (probs.squeeze(1).cpu().numpy() * 255).round().astype(np.uint8)
        return _grid(images, n, pad=0, scale=2)

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

    from aigc_demo.loading import registry

    folder = _folder(folder, VAE2D_FOLDER, "VAE")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder.name} is not a model folder: pick a VAE from the list.")
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
