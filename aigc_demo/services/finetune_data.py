"""A visitor's training data for the Fine-tune tab: text, images (files or a zip), sketches, built-in sets.

Everything here refuses bad input with a UserError whose message says what to do:
- text: empty, binary (NUL bytes), not UTF-8, too large, too short;
- zips: never extracted to disk; members are read in memory under limits on their number, on
  each member's and the total uncompressed size (read with a cap, so a header that lies about
  sizes cannot blow up memory), and a name that points outside the archive (`../`, absolute
  paths, drive letters) refuses the whole zip;
- images: any mode (1, L, P, RGB, RGBA, LA, CMYK, 16-bit, float) and size become 28x28
  grayscale digits the MNIST way (ink bright on black, ink box scaled to 20 px, centred by mass);
  blank, corrupt or gigantic images are skipped and counted.
- built-in MNIST / Fashion-MNIST: from a local folder (AIGC_DATA_DIR, the project's data/,
  Debian's /usr/share/datasets), else downloaded with checksum verification when a network exists.
numpy and Pillow only (torch is not needed to prepare data).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import numpy as np

from aigc_demo.data.idx import load_split
from aigc_demo.data.images import grid_array
from aigc_demo.data.text import decode_text
from aigc_demo.errors import UserError
from aigc_demo.services.digits_sketch import sketch_to_mnist
from aigc_demo.settings import PROJECT_ROOT
from aigc_demo.settings import current as current_settings

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
MIN_TEXT_CHARS = 200
MAX_IMAGE_PIXELS = 40_000_000  # one decoded image; larger ones are skipped (decompression bombs)
_LABEL_NAME = re.compile(r"^([0-9])(?:[^0-9]|$)")


@dataclass
class DataLimits:
    """Operator limits on uploads (services/job_config.py fills them from the operator's settings)."""

    max_upload_bytes: int = 20 * 2**20  # one uploaded file (text, image or zip)
    max_zip_members: int = 5000
    max_zip_total_bytes: int = 100 * 2**20  # uncompressed, all members together
    max_zip_member_bytes: int = 16 * 2**20
    max_images: int = 5000
    max_sketches: int = 500


# ---------------------------------------------------------------- text

def load_text(pasted: str | None = None, file: str | Path | None = None,
              limits: DataLimits | None = None) -> str:
    """The training text: the uploaded .txt file when there is one, else the pasted text."""
    limits = limits or DataLimits()
    if file:
        path = Path(file)
        name = path.name
        if path.suffix.lower() not in (".txt", ".md", ".py", ".csv", ".text", ""):
            raise UserError(f"{name}: upload a plain text file (.txt).")
        if not path.is_file():
            raise UserError(f"{name} was not received; upload it again.")
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise UserError(f"{name} is {size / 2**20:.1f} MB; this server accepts at most "
                             f"{limits.max_upload_bytes / 2**20:.0f} MB of text.")
        text = decode_text(path.read_bytes(), name, limits.max_upload_bytes)
    elif pasted is not None and pasted.strip():
        text = decode_text(pasted.encode("utf-8"), "The pasted text", limits.max_upload_bytes)
    else:
        raise UserError("No text yet: paste some text or upload a .txt file.")
    if len(text) < MIN_TEXT_CHARS:
        raise UserError(f"The text has {len(text)} characters; give at least {MIN_TEXT_CHARS} "
                         "(a few paragraphs) so there is something to learn and to validate on.")
    return text


def text_summary(text: str, source: str) -> str:
    lines = text.count("\n") + 1
    return f"{source}: {len(text):,} characters, {lines:,} lines"


# ---------------------------------------------------------------- images

def to_mnist(image: Any) -> np.ndarray:
    """Any PIL image -> uint8 (28, 28), ink bright on black, the MNIST way."""
    from PIL import Image, ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a broken EXIF block is no reason to refuse the image
        pass
    mode = image.mode
    if mode in ("RGBA", "LA", "P", "PA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode in ("I", "F") or mode.startswith("I;"):  # 16-bit and float: stretch to 0..255
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        image = Image.fromarray(arr.astype(np.uint8))
    elif mode != "L":
        image = image.convert("L")
    return (sketch_to_mnist(image) * 255).round().astype(np.uint8)


def label_from_name(name: str) -> int:
    """A digit label from `3/foo.png` or `3_foo.png` / `3-foo.png` / `3.png`; -1 when there is none."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    for part in reversed(parts[:-1]):
        if len(part) == 1 and part.isdigit():
            return int(part)
    match = _LABEL_NAME.match(parts[-1]) if parts else None
    return int(match.group(1)) if match else -1


def _open_image(data: bytes, name: str) -> Any:
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise UserError(f"{name} is {width}x{height} pixels, too large to read")
        image.seek(0)  # the first frame of an animation
        image.load()
        return image
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - PIL raises many kinds for a corrupt file
        raise UserError(f"{name} cannot be read as an image ({type(err).__name__})") from None


@dataclass
class ImageSet:
    """Training images prepared for the digit models, with what the model card says about them."""

    images: np.ndarray  # uint8 (N, 28, 28), 0 = background
    labels: np.ndarray  # int64 (N,), -1 = unlabelled
    source: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(len(self.images))

    def summary(self) -> str:
        labelled = int((self.labels >= 0).sum())
        text = f"{self.source}: {len(self)} images (28x28 grayscale)"
        if labelled:
            classes = sorted(set(int(v) for v in self.labels[self.labels >= 0]))
            text += f", {labelled} labelled ({', '.join(map(str, classes))})"
        if self.skipped:
            text += f"; {len(self.skipped)} files skipped"
        return text

    def preview(self, count: int = 64, columns: int = 8) -> Any:
        """A grid of what the model will see (white ink on black, as in MNIST)."""
        from PIL import Image

        shown = self.images[:count]
        rows = max(1, -(-len(shown) // columns))
        grid = grid_array(shown, rows, columns)
        return Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.Resampling.NEAREST)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, images=self.images, labels=self.labels)
        return path

    @classmethod
    def load(cls, path: str | Path, source: str = "saved images") -> "ImageSet":
        with np.load(path) as stored:
            return cls(stored["images"], stored["labels"].astype(np.int64), source)


def _check_member_name(name: str) -> None:
    clean = name.replace("\\", "/")
    if (clean.startswith("/") or re.match(r"^[A-Za-z]:", clean)
            or any(part == ".." for part in clean.split("/"))):
        raise UserError(f"The zip holds a file named {name!r}, which points outside the archive "
                         "(path traversal): it was refused. Zip the images without such paths.")


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """A member's bytes, stopping as soon as more than `cap` come out (headers can lie)."""
    with archive.open(info) as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise UserError(f"{info.filename} unpacks to more than {cap / 2**20:.0f} MB")
    return data


def read_zip(path: str | Path, limits: DataLimits | None = None) -> list[tuple[str, bytes]]:
    """(name, bytes) of the image files in a zip, under the limits; refuses unsafe archives."""
    limits = limits or DataLimits()
    name = Path(path).name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{name} is not a readable zip file ({err}).") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        for member in archive.infolist():
            _check_member_name(member.filename)
        if len(members) > limits.max_zip_members:
            raise UserError(f"{name} holds {len(members):,} files; this server reads at most "
                             f"{limits.max_zip_members:,} per zip.")
        declared = sum(m.file_size for m in members)
        if declared > limits.max_zip_total_bytes:
            raise UserError(f"{name} unpacks to {declared / 2**20:.0f} MB (a zip bomb?); this server "
                             f"unpacks at most {limits.max_zip_total_bytes / 2**20:.0f} MB.")
        found, total = [], 0
        for member in members:
            base = PurePosixPath(member.filename.replace("\\", "/")).name
            if base.startswith(".") or "__MACOSX" in member.filename:
                continue
            if not base.lower().endswith(IMAGE_SUFFIXES):
                continue
            if member.flag_bits & 0x1:
                raise UserError(f"{name} is password-protected ({member.filename}); zip the images without a password.")
            if member.file_size > limits.max_zip_member_bytes:
                raise UserError(f"{member.filename} in {name} unpacks to {member.file_size / 2**20:.0f} MB; "
                                 f"at most {limits.max_zip_member_bytes / 2**20:.0f} MB per image.")
            cap = min(limits.max_zip_member_bytes, limits.max_zip_total_bytes - total)
            try:
                data = _read_capped(archive, member, cap)
            except ValueError as err:
                raise UserError(f"{name} was refused: {err} (a zip bomb?).") from None
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                raise UserError(f"{name} is damaged ({member.filename}: {err}).") from None
            total += len(data)
            found.append((member.filename, data))
    if not found:
        raise UserError(f"{name} holds no images (looked for {', '.join(IMAGE_SUFFIXES[:5])} …). "
                         "Zip a folder of image files, e.g. PNGs of handwritten digits.")
    return found


def load_images(files: Iterable[str | Path], limits: DataLimits | None = None, source: str = "your images") -> ImageSet:
    """Image files and zips of images -> an ImageSet; labels from names like `3/a.png` or `3_a.png`."""
    limits = limits or DataLimits()
    entries: list[tuple[str, bytes]] = []
    for file in files or []:
        path = Path(file)
        if not path.is_file():
            raise UserError(f"{path.name} was not received; upload it again.")
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise UserError(f"{path.name} is {size / 2**20:.1f} MB; this server accepts files of at most "
                             f"{limits.max_upload_bytes / 2**20:.0f} MB.")
        if zipfile.is_zipfile(path):
            entries += read_zip(path, limits)
        else:
            entries.append((path.name, path.read_bytes()))
    if not entries:
        raise UserError("No images yet: upload image files or a zip of images.")
    images, labels, skipped = [], [], []
    for name, data in entries[: limits.max_images]:
        try:
            images.append(to_mnist(_open_image(data, PurePosixPath(name).name)))
            labels.append(label_from_name(name))
        except ValueError as err:
            skipped.append(f"{PurePosixPath(name).name}: {err}")
    if len(entries) > limits.max_images:
        skipped.append(f"{len(entries) - limits.max_images} images over the limit of {limits.max_images}")
    if not images:
        reasons = "; ".join(skipped[:3])
        raise UserError(f"None of the files could be used as an image ({reasons}).")
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), source, skipped)


def sketch_image(sketch: Any) -> np.ndarray:
    """A sketchpad drawing -> uint8 (28, 28); a blank canvas is refused."""
    return (sketch_to_mnist(sketch) * 255).round().astype(np.uint8)


# ---------------------------------------------------------------- built-in sets

BUILTIN = ("mnist", "fashion-mnist")
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# sha256 and size of each file's *decompressed* IDX bytes: valid for any mirror and any gzip level.
CHECKSUMS: dict[str, dict[str, tuple[str, int]]] = {
    "mnist": {
        "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
        "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
        "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
        "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
        "train-labels-idx1-ubyte": ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
        "t10k-images-idx3-ubyte": ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
        "t10k-labels-idx1-ubyte": ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
    },
}
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def data_roots() -> list[Path]:
    """Where built-in sets are looked for, in order."""
    roots = []
    if current_settings().data_dir:
        roots.append(Path(current_settings().data_dir))
    roots += [PROJECT_ROOT / "data", PROJECT_ROOT.parent / "shared" / "data", Path("/usr/share/datasets")]
    return roots


def _has_train_files(folder: Path) -> bool:
    return all(any((folder / f"{stem}{ext}").is_file() for ext in (".gz", "")) for stem in _FILES[:2])


def find_builtin(dataset: str, roots: list[Path] | None = None) -> Path | None:
    """A local folder with the dataset's training IDX files, or None."""
    if dataset not in BUILTIN:
        raise UserError(f"Built-in sets: {', '.join(BUILTIN)} (got {dataset!r}).")
    names = (dataset, dataset.replace("-", "_"))
    for root in roots if roots is not None else data_roots():
        candidates = [root / name for name in names] + ([root] if root.name in names else [])
        for folder in candidates:
            if folder.is_dir() and _has_train_files(folder):
                return folder
    return None


def verify_idx(path: Path, expected: tuple[str, int]) -> None:
    """Check a downloaded file's decompressed sha256 and size; ValueError when it does not match."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    opener: Any = gzip.open if head == b"\x1f\x8b" else open
    digest, size = hashlib.sha256(), 0
    with opener(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
            size += len(chunk)
    if (digest.hexdigest(), size) != expected:
        raise UserError(f"{path.name} does not match the published dataset (checksum mismatch); "
                         "the download was corrupt or tampered with and was deleted.")


def download_builtin(dataset: str, target: Path, timeout: float = 10.0, mirrors: tuple[str, ...] | None = None) -> Path:
    """Download the four IDX files into `target`, verifying each; ValueError when it fails."""
    target.mkdir(parents=True, exist_ok=True)
    errors = []
    for stem in _FILES:
        final = target / f"{stem}.gz"
        if final.is_file():
            continue
        for mirror in mirrors or MIRRORS[dataset]:
            tmp = target / f".{stem}.gz.part"
            try:
                with urllib.request.urlopen(mirror + f"{stem}.gz", timeout=timeout) as response, open(tmp, "wb") as out:
                    shutil.copyfileobj(response, out)
                verify_idx(tmp, CHECKSUMS[dataset][stem])
                os.replace(tmp, final)
                break
            except (OSError, ValueError) as err:
                tmp.unlink(missing_ok=True)
                errors.append(f"{mirror}: {err}")
        else:
            raise UserError(f"{DATASET_TITLES[dataset]} could not be downloaded ({errors[-1] if errors else 'no mirror'}).")
    return target


def builtin_folder(dataset: str, allow_download: bool = True, roots: list[Path] | None = None) -> Path:
    """A folder holding the built-in set: found locally, else downloaded (verified), else a clear error."""
    found = find_builtin(dataset, roots)
    if found is not None:
        return found
    roots = roots if roots is not None else data_roots()
    where = ", ".join(str(r) for r in roots)
    title = DATASET_TITLES[dataset]
    hint = (f"put the four IDX files (train-images-idx3-ubyte.gz, …) in a folder named {dataset} under "
            "AIGC_DATA_DIR")
    if not allow_download:
        raise UserError(f"{title} is not on this machine (looked in {where}) and downloads are off: {hint}.")
    try:
        return download_builtin(dataset, roots[0] / dataset)
    except (ValueError, OSError) as err:
        raise UserError(f"{title} is not on this machine (looked in {where}) and could not be downloaded "
                         f"({err}): {hint}, or connect this machine to the internet.") from None


def builtin_preview(folder: Path, dataset: str, count: int = 64) -> tuple[Any, str]:
    """A preview grid of the first images and a one-line summary."""
    images, labels = load_split(folder, "train")
    shown = ImageSet(images[:count], labels[:count].astype(np.int64), DATASET_TITLES[dataset])
    return shown.preview(count), f"{DATASET_TITLES[dataset]} training split: {len(images):,} images"


def safe_copy_text(text: str, folder: Path) -> Path:
    """The training text as a UTF-8 file in the job folder (what the GPT trainer reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.txt"
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)
    return path
