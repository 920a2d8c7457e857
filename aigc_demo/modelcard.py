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

from pathlib import Path
from typing import Any

from aigc_demo.errors import UserError

GALLERY_KEY = "aigc_gallery"


class ModelCardError(UserError):
    """A model card that is missing or cannot be read; the message says what to fix."""


def read_card_metadata(folder: str | Path) -> dict[str, Any]:
    """The YAML header of `folder/README.md` as a dict."""
    from huggingface_hub import ModelCard

    path = Path(folder) / "README.md"
    if not path.is_file():
        raise ModelCardError(f"{path} is missing: every weights folder needs a model card")
    try:
        card = ModelCard.load(path)
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
