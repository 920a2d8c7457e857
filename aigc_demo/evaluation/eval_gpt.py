"""`python -m aigc_demo eval gpt --model weights/NAME --data FILE`: the held-out loss, reprinted.

The metric is the mean cross-entropy over every validation token (non-overlapping windows of
the model's context, in float32): nats per character for char-level models, bits per byte
(total nats / ln 2 / UTF-8 bytes of the text) for BPE models, which makes models with
different tokenizers comparable. The model card's metrics are replaced with what is measured.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.data import text as textdata
from aigc_demo.device import pick_device
from aigc_demo.modelcard import update_card_metrics
from aigc_demo.models.gpt import context_window
from aigc_demo.models.tokenizers import encode, is_char_level


@dataclass
class LMMetric:
    nats: float  # total over predicted tokens
    tokens: int  # predicted tokens
    val_bytes: int
    val_chars: int
    char_level: bool
    seconds: float
    note: str = ""

    @property
    def nats_per_token(self) -> float:
        return self.nats / max(self.tokens, 1)

    @property
    def bits_per_byte(self) -> float:
        return self.nats / math.log(2) / max(self.val_bytes, 1)

    @property
    def nats_per_char(self) -> float:
        return self.nats / max(self.val_chars, 1)

    def as_card_metrics(self) -> list[dict[str, Any]]:
        """The gallery's metric rows: the headline first."""
        note = self.note or f"{self.tokens:,} held-out tokens"
        if self.char_level:
            return [{"name": "val loss", "value": round(self.nats_per_token, 4), "unit": "nats/char",
                     "lower_is_better": True, "note": note}]
        return [
            {"name": "val bits per byte", "value": round(self.bits_per_byte, 4), "unit": "bits/byte",
             "lower_is_better": True, "note": f"{note}, {self.val_bytes:,} bytes"},
            {"name": "val loss", "value": round(self.nats_per_token, 4), "unit": "nats/token",
             "lower_is_better": True, "note": note},
        ]

    def summary(self) -> str:
        head = (f"{self.nats_per_token:.4f} nats/char" if self.char_level
                else f"{self.bits_per_byte:.4f} bits/byte ({self.nats_per_token:.4f} nats/token)")
        return f"val loss {head} over {self.tokens:,} tokens in {self.seconds:.1f} s"


def measure(model: Any, val_ids: Any, tokenizer: Any, block: int, device: Any, batch_size: int = 32,
            max_tokens: int = 0) -> LMMetric:
    """Total cross-entropy of `model` over `val_ids`, in float32, windows of `block` tokens."""
    import torch
    import torch.nn.functional as F

    ids = np.asarray(val_ids, dtype=np.int64)
    note = ""
    if max_tokens and len(ids) > max_tokens + 1:
        ids = ids[: max_tokens + 1]
        note = f"first {max_tokens:,} held-out tokens"
    # Bytes and characters of exactly the text evaluated (file separators excluded).
    plain = tokenizer.decode(ids.tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False)
    val_bytes, val_chars = len(plain.encode()), len(plain)
    data = torch.from_numpy(ids)
    started = time.perf_counter()
    total, count = 0.0, 0
    model.eval()
    predicted = len(ids) - 1
    n_full = predicted // block
    # (start, length) windows: full ones in batches, then the short tail.
    groups = [[(s * block, block) for s in range(i, min(i + batch_size, n_full))]
              for i in range(0, n_full, batch_size)]
    if predicted - n_full * block > 0:
        groups.append([(n_full * block, predicted - n_full * block)])
    with torch.no_grad():
        for group in groups:
            x = torch.stack([data[s: s + t] for s, t in group]).to(device)  # (B, T)
            y = torch.stack([data[s + 1: s + t + 1] for s, t in group]).to(device)
            logits = model(input_ids=x).logits.float()  # (B, T, V)
            total += float(F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1),
                                           reduction="sum"))
            count += y.numel()
    char_level = is_char_level(tokenizer)
    if char_level:
        val_chars = count  # one token per character
    return LMMetric(total, count, val_bytes, val_chars, char_level, time.perf_counter() - started, note)


def held_out(model_folder: str, data: str, val_fraction: float) -> tuple[np.ndarray, str]:
    """Validation ids for `data`, tokenised with the model's own tokenizer, and where they come from."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    path = Path(data)
    if data != "stdlib" and path.is_dir() and textdata.is_prepared(path):
        prepared = AutoTokenizer.from_pretrained(path / "tokenizer")
        if prepared.get_vocab() == tokenizer.get_vocab():
            return np.asarray(textdata.load_tokens(path / "val.npy")), f"{path.name}/val.npy"
        raise ValueError(f"{path} was tokenised with another tokenizer than {model_folder}'s; "
                         "give the raw text file instead")
    if data == "stdlib":
        val_text, where = textdata.build_python_corpus().val_text, "Python stdlib held-out modules"
    elif path.is_dir():
        val_text = textdata.split_text(textdata.read_code_folder(path), val_fraction)[1]
        where = f"last {val_fraction:.0%} of {path.name}/*.py"
    else:
        val_text = textdata.split_text(textdata.read_text_file(path), val_fraction)[1]
        where = f"last {val_fraction:.0%} of {path.name}"
    return np.asarray(encode(tokenizer, val_text), dtype=np.int64), where


def evaluate_folder(model_folder: str, data: str, val_fraction: float = 0.1, device: str | None = None,
                    max_tokens: int = 0, update_card: bool = True) -> LMMetric:
    """Measure a weights folder on its held-out split and (optionally) record it in its card."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(model_folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a weights folder (no config.json)")
    dev = torch.device(device or pick_device().name)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(dev)
    ids, where = held_out(str(folder), data, val_fraction)
    metric = measure(model, ids, tokenizer, context_window(model.config), dev,
                     max_tokens=max_tokens)
    if not metric.note:
        metric.note = f"{where}, {metric.tokens:,} tokens"
    if update_card and (folder / "README.md").is_file():
        update_card_metrics(folder, metric.as_card_metrics())
    return metric


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo eval gpt", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="weights folder, e.g. weights/gpt-shakespeare")
    parser.add_argument("--data", required=True,
                        help="the corpus: text file (last --val-fraction held out), folder of .py files, "
                             "'stdlib', or a prepared folder (its val.npy)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--device", default=None, help="cuda | cpu (default: the app's choice)")
    parser.add_argument("--max-tokens", type=int, default=0, help="evaluate only this many tokens (0: all)")
    parser.add_argument("--no-update-card", action="store_true", help="print only; leave README.md as is")
    args = parser.parse_args(argv)
    metric = evaluate_folder(args.model, args.data, args.val_fraction, args.device, args.max_tokens,
                             update_card=not args.no_update_card)
    print(f"{args.model}: {metric.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
