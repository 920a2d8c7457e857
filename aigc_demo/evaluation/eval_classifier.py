"""`python -m aigc_demo eval classifier --model weights/mnist-classifier --data-dir DIR`: test accuracy."""

from __future__ import annotations

import time

import numpy as np

from aigc_demo.data.idx import load_split, resolve_data_dir
from aigc_demo.evaluation.digits_eval_common import base_parser, record
from aigc_demo.evaluation.fid import classifier_features


def test_accuracy(classifier: object, images: np.ndarray, labels: np.ndarray, device: object) -> float:
    _, probs = classifier_features(classifier, images, device)
    return float((probs.argmax(1) == labels).mean())


def main(argv: list[str] | None = None) -> int:
    from aigc_demo.models.digits_io import load_classifier, torch_device

    args = base_parser("python -m aigc_demo eval classifier", __doc__.split(":")[1]).parse_args(argv)
    started = time.perf_counter()
    device = torch_device(args.device)
    model = load_classifier(args.model, device)
    images, labels = load_split(resolve_data_dir(args.data_dir, args.dataset), "test")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    accuracy = test_accuracy(model, images, labels, device)
    metrics = [{"name": "Test accuracy", "value": round(100 * accuracy, 2), "unit": "%",
                "lower_is_better": False, "note": f"{len(labels)} {args.dataset} test digits"}]
    record(args.model, metrics, {"seconds": round(time.perf_counter() - started, 1), "device": str(device)},
           not args.no_card)
    return 0
