"""What a fine-tuned model's folder says about where it came from: `finetune.json` and the card.

A training task given a `FinetuneOrigin` (the Fine-tune tab's jobs) writes these instead of the
from-scratch record and card: the base model, the visitor's data, the settings they chose and
the final losses. Every family (GAN, VAE, GPT, LoRA) writes them through `FinetuneOrigin.write`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_demo.modelcard import GALLERY_KEY, read_card_metadata, write_model_card
from aigc_demo.training.engine import TrainResult


@dataclass
class FinetuneOrigin:
    """The base model, the data and the visitor's settings (a FinetuneSettings as a dict)."""

    base: str
    base_title: str
    family: str
    data_summary: str
    settings: dict[str, Any] = field(default_factory=dict)

    def record(self, out_dir: Path, result: TrainResult, extra: dict[str, Any] | None = None) -> None:
        """`finetune.json`: the full settings and what the run did."""
        record = {"base_model": self.base, "base_title": self.base_title, "family": self.family,
                  "data": self.data_summary, "settings": self.settings,
                  "steps_done": result.steps_done, "stopped_early": result.stopped,
                  "seconds": round(result.seconds, 1), "steps_per_s": round(result.steps_per_s, 3),
                  "items_per_s": round(result.items_per_s, 1),
                  "final_losses": {k: round(v, 5) for k, v in result.final_losses.items()}, **(extra or {})}
        (Path(out_dir) / "finetune.json").write_text(json.dumps(record, indent=2, default=str))

    def card_body(self, result: TrainResult, what: str, extra: list[str] | None = None) -> str:
        """Model card text: base model, data, settings and final losses."""
        s = self.settings
        lines = [
            f"# {self.base_title}, fine-tuned", "", what, "",
            "## How it was made", "",
            f"- Base model: {self.base_title} (`{self.base}`)",
            f"- Data: {self.data_summary}",
            f"- Steps: {result.steps_done} of {s['steps']}" + (" (stopped early by the user)" if result.stopped else "")
            + f", batch size {s['batch_size']}, {result.seconds:.1f} s of training ({result.steps_per_s:.2f} steps/s)",
            f"- Optimizer: {s['optimizer']}, learning rate {s['lr']:g}, seed {s['seed']}",
            "- Final losses: " + ", ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items() if k != "lr"),
            *(extra or []),
            "", "Made in the AIGC Gallery's Fine-tune tab; full settings in `finetune.json`.",
        ]
        return "\n".join(lines)

    def write(self, out_dir: Path, result: TrainResult, *, what: str, lines: list[str], gallery: dict[str, Any],
              record: dict[str, Any] | None = None, **card: Any) -> None:
        """`finetune.json` and README.md; `gallery` is the card's gallery block, `card` goes to
        `write_model_card` (tags, library_name, pipeline_tag)."""
        self.record(out_dir, result, record)
        write_model_card(out_dir, gallery=gallery, body=self.card_body(result, what, lines), **card)


def final_loss_metrics(losses: dict[str, float], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Card metrics from the final losses (the ones that are finite)."""
    return [{"name": name, "value": round(float(losses[name]), 4), "lower_is_better": True,
             "note": ("validation loss on the held-out 10% of the text" if name.startswith("val")
                      else "final training loss (last logged step), measured while fine-tuning")}
            for name in names if name in losses and math.isfinite(losses[name])]


def card_gallery(folder: str | Path) -> dict[str, Any]:
    """A weights folder's gallery block (title, task, tab...), or {} when its card has none."""
    try:
        return dict(read_card_metadata(folder).get(GALLERY_KEY) or {})
    except ValueError:
        return {}
