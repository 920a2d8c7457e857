"""Digit images as grids and PNGs: what training previews, exports, evaluation and the tabs share.

numpy only at import; Pillow is imported where a PIL image is made, because the GPU boxes that
train may not have it (`save_png` writes a PNG without it). The page's PNG files (many at once,
in parallel, in a temporary folder) are `data/png.py`'s job.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np


def grid_array(images_uint8: Any, rows: int, cols: int, pad: int = 2, invert: bool = False) -> np.ndarray:
    """uint8 (N, H, W) -> one uint8 grid array, `pad` pixels between and around the tiles."""
    arr = np.asarray(images_uint8, dtype=np.uint8)
    n, h, w = arr.shape
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.uint8)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = arr[i]
    return 255 - grid if invert else grid


def image_grid(images_uint8: Any, rows: int, cols: int, pad: int = 2, invert: bool = False) -> Any:
    """uint8 (N, H, W) -> one PIL grayscale grid image."""
    from PIL import Image

    return Image.fromarray(grid_array(images_uint8, rows, cols, pad, invert))


def preview_grid(images_uint8: Any, rows: int, cols: int) -> Any:
    """A PIL grid for progress previews, or None where Pillow is missing (headless GPU boxes)."""
    try:
        return image_grid(images_uint8, rows, cols)
    except ImportError:
        return None


def encode_png(gray: Any) -> bytes:
    """A uint8 grayscale array as PNG bytes, without Pillow."""
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def save_png(gray: Any, path: str | Path) -> Path:
    """Write a uint8 grayscale array as a PNG file (no Pillow needed)."""
    Path(path).write_bytes(encode_png(gray))
    return Path(path)


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG bytes (a job's preview travels to the page as these)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def read_image(path: str | Path) -> Any:
    """A PIL copy of the image file at `path`, or None when it cannot be read (e.g. a job's sample
    that expired): the file is closed before the copy is handed to a page."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except OSError:
        return None
