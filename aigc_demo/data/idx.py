"""MNIST-style IDX files (raw or .gz): the format of MNIST, Fashion-MNIST and EMNIST.

IDX is a big-endian header (two zero bytes, a type code, the number of dimensions, one uint32 per
dimension) followed by the raw array. We read it with numpy only, so the reader works on a box
without torch, and keep torch for `DigitsData`, which puts a whole split on the training device.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.errors import UserError

DATASETS = ("mnist", "fashion-mnist")
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
# IDX type code -> numpy big-endian dtype
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxFormatError(UserError):
    """A file that is not a valid IDX file; the message names the file and what is wrong."""


def _open_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(2)
    try:
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError) as err:
        raise IdxFormatError(f"{path}: cannot be read ({err}); is the download complete?") from err


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or raw), with its stored shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    data = _open_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxFormatError(f"{path}: not an IDX file (the first two bytes must be zero)")
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise IdxFormatError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise IdxFormatError(f"{path}: IDX header is truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise IdxFormatError(f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
                             f"{len(data) - header} bytes of data; the file is truncated or corrupt")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write `array` as an IDX file (gzip-compressed when the name ends in .gz); for tests and exports."""
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
    code = codes.get(array.dtype)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    payload = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    payload += array.astype(np.dtype(_DTYPES[code])).tobytes()
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(payload)
    return path


def _find(folder: Path, stem: str) -> Path:
    # Also accept the dotted names of some mirrors (train-images.idx3-ubyte).
    dotted = stem.replace("-idx", ".idx")
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{folder} has no {stem}[.gz]: pass --data-dir a folder with the four MNIST-style IDX files "
        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz)")


def load_split(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 28 x 28 with 0 = background, labels uint8 N) of one split."""
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_FILES)} (got {split!r})")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist")
    image_stem, label_stem = SPLIT_FILES[split]
    images, labels = read_idx(_find(folder, image_stem)), read_idx(_find(folder, label_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise IdxFormatError(f"{folder}: images {images.shape} and labels {labels.shape} do not pair up "
                             "(expected N x H x W and N)")
    if images.dtype != np.uint8:
        raise IdxFormatError(f"{folder}: images must be uint8, got {images.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise IdxFormatError(f"{folder}: labels must be 0-9, got {labels.min()}..{labels.max()}")
    return images, labels.astype(np.uint8)


def resolve_data_dir(data_dir: str | Path, dataset: str = "mnist") -> Path:
    """`data_dir` itself when it holds the files, else `data_dir/<dataset>` (a parent folder works too)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)} (got {dataset!r})")
    base = Path(data_dir)
    for candidate in (base, base / dataset, base / dataset.replace("-", "_")):
        if candidate.is_dir() and any(candidate.glob("t*-images*")):
            return candidate
    return base


def is_npz(path: str | Path) -> bool:
    """Whether `path` is an `.npz` file of images rather than an IDX folder."""
    return Path(path).suffix == ".npz" and Path(path).is_file()


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int (N,), -1 = unlabelled) from an `.npz` file."""
    with np.load(path) as stored:
        return np.ascontiguousarray(stored["images"]), stored["labels"]


@dataclass
class DigitsData:
    """A whole split as one uint8 tensor on the training device (60k x 784 bytes is 47 MB), so a
    batch is an index, not a DataLoader round trip: steps stay fast and batches always full."""

    images: Any  # torch uint8 N x 1 x 28 x 28, 0 = background
    labels: Any  # torch int64 N

    @classmethod
    def load(cls, folder: str | Path, split: str = "train", device: Any = "cpu", limit: int = 0,
             dataset: str = "mnist") -> "DigitsData":
        """A split of an IDX folder, or the images of an `.npz` file (`images` N x 28 x 28 uint8,
        `labels` N with -1 for unlabelled: a visitor's uploads, as the Fine-tune tab prepares them)."""
        import torch

        if is_npz(folder):
            images, labels = load_npz(folder)
        else:
            images, labels = load_split(resolve_data_dir(folder, dataset), split)
        if limit:
            images, labels = images[:limit], labels[:limit]
        return cls(torch.from_numpy(images).unsqueeze(1).to(device),
                   torch.from_numpy(labels.astype(np.int64)).to(device))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, batch_size: int, generator: Any) -> tuple[Any, Any]:
        """A random batch of exactly `batch_size` (with replacement across steps): (float 0..1, labels)."""
        import torch

        index = torch.randint(0, len(self), (batch_size,), device=self.images.device, generator=generator)
        return self.images[index].float().div_(255.0), self.labels[index]

    def floats(self) -> Any:
        """All images as float 0..1 (for evaluation)."""
        return self.images.float().div(255.0)


class IdxDataset:
    """A `torch.utils.data.Dataset` over one split, for code that wants a DataLoader."""

    def __init__(self, folder: str | Path, split: str = "train", dataset: str = "mnist") -> None:
        self.images, self.labels = load_split(resolve_data_dir(folder, dataset), split)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torch

        return torch.from_numpy(self.images[i]).float().div(255.0).unsqueeze(0), int(self.labels[i])
