"""A visitor's drawings as a small training set: one `.npz` in their session folder.

Kept apart from the jobs: drawing needs no job, and a job only reads the set once it starts
(services/finetune.PreparedData). One lock serialises the read-add-write of concurrent adds.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.errors import UserError
from aigc_demo.services.finetune import PreparedData
from aigc_demo.services.finetune_data import ImageSet, sketch_image

TITLE = "your drawings"
FILE = "sketches.npz"


class Sketches:
    """The drawings of each session, under `<session folder>/sketches.npz`."""

    def __init__(self, max_sketches: int) -> None:
        self.max_sketches = max_sketches
        self._lock = threading.Lock()

    def load(self, folder: Path) -> ImageSet | None:
        path = folder / FILE
        return ImageSet.load(path, TITLE) if path.is_file() else None

    def add(self, folder: Path, sketch: Any, label: int | str | None) -> ImageSet:
        """Add one drawing (with its digit, or -1) to the session's small dataset."""
        image = sketch_image(sketch)
        digit = -1 if label is None or label == "" else int(label)
        if not -1 <= digit <= 9:
            raise UserError(f"The digit must be 0-9 (got {label}).")
        with self._lock:
            current = self.load(folder)
            count = len(current) if current is not None else 0
            if count >= self.max_sketches:
                raise UserError(f"You have {count} drawings, the most one session keeps; train on them "
                                "or clear them.")
            images = np.concatenate([current.images, image[None]]) if current is not None else image[None]
            labels = np.concatenate([current.labels, [digit]]) if current is not None else np.asarray([digit])
            updated = ImageSet(images, labels.astype(np.int64), TITLE)
            updated.save(folder / FILE)
        return updated

    def clear(self, folder: Path) -> None:
        (folder / FILE).unlink(missing_ok=True)

    def prepare(self, folder: Path) -> PreparedData:
        images = self.load(folder)
        if images is None or len(images) == 0:
            raise UserError("No drawings yet: draw a digit and press Add, a few dozen times.")
        return PreparedData("images", images.summary(), images=images)
