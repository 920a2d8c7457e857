"""Flags and helpers the digit eval/sample commands share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aigc_demo.modelcard import update_card_metrics

DEFAULT_CLASSIFIER = "mnist-classifier"


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="weights folder")
    parser.add_argument("--data-dir", default="data/mnist", help="folder with the MNIST-style IDX files")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N test digits (0: all; for quick checks)")
    parser.add_argument("--no-card", action="store_true", help="print the metrics without writing the model card")
    return parser


def classifier_folder(model: str | Path, classifier: str | None) -> Path:
    """--classifier, else the `mnist-classifier` folder beside the model's folder."""
    return Path(classifier) if classifier else Path(model).resolve().parent / DEFAULT_CLASSIFIER


def record(folder: str | Path, metrics: list[dict[str, Any]], details: dict[str, Any], write_card: bool) -> None:
    """Print the metrics, save them to eval.json and (unless --no-card) into the model card."""

    folder = Path(folder)
    print(json.dumps({"model": str(folder), "metrics": metrics, **details}, indent=2))
    (folder / "eval.json").write_text(json.dumps({"metrics": metrics, **details}, indent=2))
    if write_card:
        if (folder / "README.md").is_file():
            update_card_metrics(folder, metrics)
        else:
            print(f"note: {folder}/README.md is missing, metrics not written into a card")
