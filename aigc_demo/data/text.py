"""Text corpora for the small GPTs: plain text files, the Python stdlib, and token-id arrays.

Training reads token ids from uint16 `.npy` files (one array per split), so a prepared corpus
is a few MB, loads in milliseconds and fits on the GPU as one tensor. numpy only at module
level: this runs on the GPU box without gradio and in the app without torch.
"""

from __future__ import annotations

import fnmatch
import json
import sysconfig
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.errors import UserError

# Folders never read from the stdlib: tests, installed packages, build leftovers.
STDLIB_SKIP_DIRS = ("test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
                    "turtledemo")
# Generated files that are data, not code people write (codec tables, pydoc's topic dump).
STDLIB_SKIP_GLOBS = ("pydoc_data/topics.py", "_sysconfigdata_*.py", "config-*/*",
                     "encodings/cp*.py", "encodings/mac_*.py", "encodings/iso8859_*.py",
                     "encodings/koi8_*.py", "encodings/hp_roman8.py", "encodings/ptcp154.py",
                     "encodings/tis_620.py", "encodings/palmos.py", "encodings/kz1048.py")
# Held out for validation: whole modules, so the val loss measures code the model never saw.
STDLIB_VAL_MODULES = ("argparse.py", "csv.py", "dataclasses.py", "fractions.py", "heapq.py",
                      "json/", "pathlib.py", "shlex.py", "statistics.py", "textwrap.py",
                      "urllib/", "zipfile.py")
FILE_SEPARATOR = "<|endoftext|>"
MAX_TEXT_BYTES = 200 * 2**20


class CorpusError(UserError):
    """A corpus that cannot be used; the message says why and what to do."""


def decode_text(raw: bytes, name: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Bytes -> text, refusing empty, oversized, binary, non-UTF-8 and blank input by `name`."""
    if not raw:
        raise CorpusError(f"{name} is empty: give some text to learn from")
    if len(raw) > max_bytes:
        raise CorpusError(f"{name} is {len(raw) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB of text")
    if b"\x00" in raw[:65536]:
        raise CorpusError(f"{name} looks binary (it contains NUL bytes): give a plain UTF-8 text file")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is not text
    except UnicodeDecodeError as err:
        raise CorpusError(f"{name} is not UTF-8 text (bad byte at offset {err.start}): "
                          "save it as UTF-8 and try again") from None
    if not text.strip():
        raise CorpusError(f"{name} holds only whitespace: give some text to learn from")
    return text


def read_text_file(path: str | Path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Read a UTF-8 text file, refusing empty, binary and oversized files with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path} does not exist or is not a file")
    size = path.stat().st_size
    if size > max_bytes:  # checked before reading a huge file into memory
        raise CorpusError(f"{path} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB of text")
    return decode_text(path.read_bytes(), str(path), max_bytes)


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """First (1 - val_fraction) for training, the rest for validation (the char-rnn split)."""
    if not 0 < val_fraction < 1:
        raise CorpusError(f"val_fraction must be between 0 and 1 (got {val_fraction})")
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def stdlib_dir() -> Path:
    """The `Lib/` folder of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def _skipped(rel: str) -> bool:
    parts = rel.split("/")
    if any(part in STDLIB_SKIP_DIRS for part in parts[:-1]):
        return True
    if parts[-1].startswith("test_"):
        return True
    return any(fnmatch.fnmatch(rel, pattern) for pattern in STDLIB_SKIP_GLOBS)


def _is_val(rel: str) -> bool:
    return any(rel == m or (m.endswith("/") and rel.startswith(m)) for m in STDLIB_VAL_MODULES)


@dataclass
class PythonCorpus:
    """The stdlib sources split by module, with the exact file list for the model card."""

    root: str
    python_version: str
    train_files: list[str] = field(default_factory=list)
    val_files: list[str] = field(default_factory=list)
    train_text: str = ""
    val_text: str = ""

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("train_text"), data.pop("val_text")
        data.update(skip_dirs=list(STDLIB_SKIP_DIRS), skip_globs=list(STDLIB_SKIP_GLOBS),
                    val_modules=list(STDLIB_VAL_MODULES), separator=FILE_SEPARATOR,
                    train_bytes=len(self.train_text.encode()), val_bytes=len(self.val_text.encode()))
        return data


def build_python_corpus(root: str | Path | None = None) -> PythonCorpus:
    """Every `*.py` under the stdlib (tests and generated tables excluded), files joined by a
    separator token; held-out modules go to validation."""
    import platform

    root = Path(root) if root else stdlib_dir()
    if not root.is_dir():
        raise CorpusError(f"{root} is not a folder of Python sources")
    corpus = PythonCorpus(root=str(root), python_version=platform.python_version())
    train, val = [], []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if _skipped(rel):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a few stdlib files carry other encodings on purpose; not worth a special case
        if not text.strip():
            continue
        (corpus.val_files if _is_val(rel) else corpus.train_files).append(rel)
        (val if _is_val(rel) else train).append(text)
    if not train or not val:
        raise CorpusError(f"{root} has no Python files to train on (or none of the held-out modules)")
    corpus.train_text = FILE_SEPARATOR.join(train) + FILE_SEPARATOR
    corpus.val_text = FILE_SEPARATOR.join(val) + FILE_SEPARATOR
    return corpus


def read_code_folder(folder: str | Path) -> str:
    """All `.py` files under a folder (a user's own code), joined by the separator token."""
    folder = Path(folder)
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.rglob("*.py"))]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise CorpusError(f"{folder} holds no non-empty .py files")
    return FILE_SEPARATOR.join(texts) + FILE_SEPARATOR


# ---- token-id arrays -------------------------------------------------------------------------

def save_tokens(path: str | Path, ids: Any) -> Path:
    """Save token ids as a uint16 `.npy` (vocabularies here are far below 65536)."""
    arr = np.asarray(ids)
    if arr.size and int(arr.max()) >= 2**16:
        raise CorpusError(f"token id {int(arr.max())} does not fit uint16; use a smaller vocabulary")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr.astype(np.uint16))
    return path


def load_tokens(path: str | Path) -> np.ndarray:
    """A uint16 token array, memory-mapped (no copy until it is moved to a tensor)."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path} is missing: run the prepare step first")
    return np.load(path, mmap_mode="r")


PREPARED_META = "meta.json"


def write_prepared(folder: str | Path, train_ids: Any, val_ids: Any, meta: dict[str, Any]) -> Path:
    """A prepared corpus folder: train.npy, val.npy, meta.json (+ the tokenizer, saved by the caller)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_tokens(folder / "train.npy", train_ids)
    save_tokens(folder / "val.npy", val_ids)
    meta = dict(meta, train_tokens=int(len(train_ids)), val_tokens=int(len(val_ids)))
    (folder / PREPARED_META).write_text(json.dumps(meta, indent=2))
    return folder


def is_prepared(folder: str | Path) -> bool:
    return (Path(folder) / PREPARED_META).is_file()


def read_prepared_meta(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / PREPARED_META
    if not path.is_file():
        raise CorpusError(f"{folder} is not a prepared corpus ({PREPARED_META} is missing)")
    return json.loads(path.read_text())
