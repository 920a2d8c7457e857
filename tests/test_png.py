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
