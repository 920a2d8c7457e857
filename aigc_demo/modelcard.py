"""Model cards: the README.md in each weights folder, whose YAML header the gallery reads.

The header is the Hugging Face card metadata (license, datasets, tags, library_name) plus one
key of ours, `aigc_gallery`, that says how the gallery shows the model:

    aigc_gallery:
      title: Conditional DCGAN (MNIST)
      task: image-generation      # see catalog.TASKS
      family: gan                 # gan | vae | gpt | classifier | diffusion
      tab: digits                 # the tab where it runs
      sample: sample.png          # file in the folder, or sample_text: "..."
      metrics:                    # measured, never typed in: written by the eval command
        - {name: FID, value: 4.1, lower_is_better: true, note: "10k samples vs test set"}
"""

from __future__ import annotations

import copy
import hashlib
import threading
from pathlib import Path
from typing import Any

from aigc_demo.errors import UserError

GALLERY_KEY = "aigc_gallery"


class ModelCardError(UserError):
    """A model card that is missing or cannot be read; the message says what to fix."""


# Parsed headers by card path and content hash. The catalog reads every card whenever a picker,
# the gallery or a Fine-tune start lists the models; parsing the YAML (pure Python) took 37 ms for
# the 7 shipped cards on each listing, reading and hashing them takes well under 1 ms. A card whose
# bytes changed is parsed again (file times are too coarse to tell two quick writes apart).
_parsed: dict[str, tuple[bytes, dict[str, Any]]] = {}
_PARSED_MAX = 4096  # cards remembered (visitors' saved models included); the oldest go first
_parsed_lock = threading.Lock()


def read_card_metadata(folder: str | Path) -> dict[str, Any]:
    """The YAML header of `folder/README.md` as a dict (a fresh copy: callers may change it)."""
    path = Path(folder) / "README.md"
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as err:
        raise ModelCardError(f"{path} cannot be read ({err})") from err
    if text is None:
        raise ModelCardError(f"{path} is missing: every weights folder needs a model card")
    key, digest = str(path.resolve()), hashlib.sha256(text.encode()).digest()
    known = _parsed.get(key)
    if known is None or known[0] != digest:
        known = digest, _parse_card(path, text)
        with _parsed_lock:
            _parsed[key] = known
            while len(_parsed) > _PARSED_MAX:
                del _parsed[next(iter(_parsed))]
    return copy.deepcopy(known[1])


def _parse_card(path: Path, text: str) -> dict[str, Any]:
    from huggingface_hub import ModelCard

    try:
        card = ModelCard(text)
    except Exception as err:  # yaml errors, bad front matter: reported in the card's place
        raise ModelCardError(f"{path}: the YAML header cannot be read ({err})") from err
    return card.data.to_dict()


def write_model_card(
    folder: str | Path,
    *,
    gallery: dict[str, Any],
    body: str,
    license: str = "mit",
    datasets: list[str] | None = None,
    tags: list[str] | None = None,
    library_name: str | None = None,
    pipeline_tag: str | None = None,
) -> Path:
    """Write `folder/README.md` with Hugging Face metadata and our gallery block."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        license=license,
        datasets=datasets,
        tags=["aigc-gallery", *(tags or [])],
        library_name=library_name,
        pipeline_tag=pipeline_tag,
        **{GALLERY_KEY: gallery},
    )
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n")
    path = Path(folder) / "README.md"
    card.save(path)
    return path


def update_card_metrics(folder: str | Path, metrics: list[dict[str, Any]]) -> Path:
    """Replace the measured metrics in an existing card, keeping everything else."""
    from huggingface_hub import ModelCard

    path = Path(folder) / "README.md"
    card = ModelCard.load(path)
    gallery = dict(getattr(card.data, GALLERY_KEY, None) or {})
    gallery["metrics"] = metrics
    setattr(card.data, GALLERY_KEY, gallery)
    card.save(path)
    return path
