"""Tiny model folders for tests: a real card and a real safetensors file, made in a temp dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from aigc_demo.modelcard import write_model_card


def make_model_folder(folder: Path, *, title: str, task: str, family: str, tab: str | None,
                      shape: tuple[int, ...] = (10, 20), metrics: list[dict] | None = None,
                      sample: bool = True) -> Path:
    """A folder the catalog accepts: README.md card, model.safetensors, optional sample.png."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"weight": np.zeros(shape, dtype=np.float16), "bias": np.zeros(shape[-1], np.float16)},
              str(folder / "model.safetensors"))
    gallery = {"title": title, "task": task, "family": family, "tab": tab, "metrics": metrics or []}
    if sample:
        Image.fromarray((np.indices((28, 28)).sum(0) * 4).astype(np.uint8)).save(folder / "sample.png")
        gallery["sample"] = "sample.png"
    write_model_card(folder, gallery=gallery, body=f"# {title}\n\nA test fixture.", datasets=["mnist"])
    return folder


def make_broken_folder(folder: Path) -> Path:
    """A folder whose card has a YAML header that does not parse."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("---\nlicense: [mit\ntitle: : :\n---\n# broken\n")
    return folder


def make_weights_dir(root: Path) -> Path:
    """Two good models of different tasks and one broken card."""
    make_model_folder(root / "toy-gan", title="Toy GAN", task="image-generation", family="gan",
                      tab="digits", metrics=[{"name": "FID", "value": 3.5, "lower_is_better": True}])
    make_model_folder(root / "toy-gpt", title="Toy GPT", task="text-generation", family="gpt",
                      tab="text", shape=(4, 8), sample=False)
    make_broken_folder(root / "broken-model")
    return root
