"""PNG files written in parallel for a batch of images: same pixels, same order, old files removed."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aigc_demo.data.png import encode_pngs, write_pngs


def test_pngs_keep_pixels_and_order_and_old_files_go(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (60, 40 + i), dtype=np.uint8)) for i in range(5)]
    stale = tmp_path / "old.png"
    images[0].save(stale)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    paths = write_pngs(images, folder=tmp_path, keep_s=600)
    assert not stale.exists()
    assert len(set(paths)) == 5
    for image, path in zip(images, paths):
        with Image.open(path) as read:
            assert read.format == "PNG" and np.array_equal(np.asarray(read), np.asarray(image))


def test_png_bytes_in_memory_keep_pixels_and_order() -> None:
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (30, 20 + i), dtype=np.uint8)) for i in range(4)]
    for count in (1, 4):  # one image skips the pool
        encoded = encode_pngs(images[:count])
        assert len(encoded) == count
        for image, data in zip(images, encoded):
            with Image.open(io.BytesIO(data)) as read:
                assert read.format == "PNG" and np.array_equal(np.asarray(read), np.asarray(image))


def test_grids_and_pngs_without_pillow_round_trip(tmp_path: Path) -> None:
    from aigc_demo.data.images import grid_array, image_grid, save_png

    tiles = np.stack([np.full((4, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    grid = grid_array(tiles, rows=2, cols=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 4 + 1)
    assert grid[1, 1] == 10 and grid[1, 5] == 20 and grid[6, 1] == 40 and grid[6, 9] == 0  # 6th tile empty
    assert np.array_equal(np.asarray(image_grid(tiles, 2, 3, pad=1, invert=True)), 255 - grid)
    with Image.open(save_png(grid, tmp_path / "g.png")) as read:
        assert read.mode == "L" and np.array_equal(np.asarray(read), grid)
