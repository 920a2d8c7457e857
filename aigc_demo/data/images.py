"""Image grids: many small uint8 digits tiled into one picture (numpy; Pillow only for a PIL image)."""

from __future__ import annotations

from typing import Any

import numpy as np


def grid_array(images_uint8: Any, rows: int, cols: int, pad: int = 2, invert: bool = False) -> Any:
    """uint8 (N, 28, 28) -> one uint8 grid array (numpy only)."""
    arr = np.asarray(images_uint8, dtype=np.uint8)
    n, h, w = arr.shape
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.uint8)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = arr[i]
    return 255 - grid if invert else grid


def image_grid(images_uint8: Any, rows: int, cols: int, pad: int = 2, invert: bool = False) -> Any:
    """uint8 (N, 28, 28) -> one PIL grayscale grid image (Pillow on first use: GPU boxes may lack it)."""
    from PIL import Image

    return Image.fromarray(grid_array(images_uint8, rows, cols, pad, invert))
