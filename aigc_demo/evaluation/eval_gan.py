"""`python -m aigc_demo eval gan --model weights/dcgan-mnist --data-dir DIR`: FID, its floor, conditional accuracy.

FID: 10,000 generated digits (1,000 per class, seed 0) against the 10,000 test digits, on the
penultimate features of the shipped classifier. Floor: 10,000 training digits (fixed random
subset) against the same test digits: what a perfect generator would score with this sample
size. Conditional accuracy: how often the classifier names the digit the generator was asked for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.data.idx import load_split, resolve_data_dir
from aigc_demo.evaluation.digits_eval_common import base_parser, classifier_folder, record
from aigc_demo.evaluation.fid import classifier_features, fid_from_features


def score_digits(fake: np.ndarray, labels: np.ndarray, classifier: object, test_images: np.ndarray,
                 train_images: np.ndarray, device: object) -> dict[str, float]:
    """FID of generated digits vs the test set, the train-vs-test floor, and conditional accuracy."""
    f_fake, p_fake = classifier_features(classifier, fake, device)
    f_test, _ = classifier_features(classifier, test_images, device)
    f_train, _ = classifier_features(classifier, train_images, device)
    fid = fid_from_features(f_fake, f_test)
    floor = fid_from_features(f_train, f_test)
    predicted = p_fake.argmax(1)
    per_class_acc = [float((predicted[labels == d] == d).mean()) for d in range(10)]
    return {"fid": fid, "fid_floor": floor, "fid_ratio": fid / floor if floor > 0 else float("inf"),
            "conditional_accuracy": float((predicted == labels).mean()),
            "worst_class_accuracy": min(per_class_acc), "per_class_accuracy": per_class_acc,
            "n_generated": int(len(fake)), "n_test": int(len(test_images)), "n_train": int(len(train_images))}


def evaluate_gan(generator: object, classifier: object, test_images: np.ndarray, train_images: np.ndarray,
                 per_class: int, device: object, seed: int = 0) -> dict[str, float]:
    from aigc_demo.models.digits_io import generate_per_digit

    fake, labels = generate_per_digit(generator, range(10), per_class, seed)
    return score_digits(fake, labels, classifier, test_images, train_images, device)


def eval_splits(data_dir: str, dataset: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(test digits, an equally large fixed random subset of the training digits) for FID and its floor."""
    folder = resolve_data_dir(data_dir, dataset)
    test_images, _ = load_split(folder, "test")
    train_images, _ = load_split(folder, "train")
    n = limit or len(test_images)
    pick = np.random.default_rng(12345).choice(len(train_images), size=min(n, len(train_images)), replace=False)
    return test_images[:n], train_images[np.sort(pick)]


def digit_metrics(result: dict[str, Any], per_class: int, classifier_dir: Path) -> list[dict[str, Any]]:
    """The card's metric rows for a conditional digit generator."""
    feat, n = f"penultimate features of {classifier_dir.name}", result["n_test"]
    return [
        {"name": "FID", "value": float(f"{result['fid']:.4g}"), "lower_is_better": True,
         "note": f"{result['n_generated']} generated ({per_class}/class) vs {n} test digits, {feat}"},
        {"name": "FID floor (train vs test)", "value": float(f"{result['fid_floor']:.4g}"), "lower_is_better": True,
         "note": f"{n} training digits vs {n} test digits: the best a generator can score"},
        {"name": "FID / floor", "value": round(result["fid_ratio"], 2), "lower_is_better": True},
        {"name": "Conditional accuracy", "value": round(100 * result["conditional_accuracy"], 2), "unit": "%",
         "lower_is_better": False, "note": f"classifier agrees with the requested digit; worst class "
         f"{100 * result['worst_class_accuracy']:.1f}%"},
    ]


def main(argv: list[str] | None = None) -> int:
    from aigc_demo.models.digits_io import load_classifier, load_generator, torch_device

    parser = base_parser("python -m aigc_demo eval gan", "FID and conditional accuracy of the conditional GAN")
    parser.add_argument("--classifier", default=None, help="classifier weights folder "
                        "(default: mnist-classifier beside --model)")
    parser.add_argument("--per-class", type=int, default=1000, help="generated digits per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    device = torch_device(args.device)
    test_images, train_images = eval_splits(args.data_dir, args.dataset, args.limit)
    classifier_dir = classifier_folder(args.model, args.classifier)
    result = evaluate_gan(load_generator(args.model, device), load_classifier(classifier_dir, device),
                          test_images, train_images, args.per_class, device, args.seed)
    metrics = digit_metrics(result, args.per_class, classifier_dir)
    record(args.model, metrics, {**result, "seconds": round(time.perf_counter() - started, 1),
                                 "device": str(device), "classifier": str(classifier_dir)}, not args.no_card)
    return 0
