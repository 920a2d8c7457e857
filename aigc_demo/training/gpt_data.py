"""What a GPT trains on: the per-corpus presets, the model/data settings, the tokenised corpus.

Kept apart from the trainer (training/gpt.py) so the settings and the corpus can be read, tested
and prepared (recipes_gpt) without the training loop.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.data import text as textdata
from aigc_demo.models import tokenizers as toks

# Per-corpus defaults: model size, tokenizer and loop settings that reach the targets.
PRESETS: dict[str, dict[str, Any]] = {
    "shakespeare": dict(tokenizer_kind="char", n_layer=6, n_head=6, n_embd=384, block_size=256,
                        dropout=0.2, steps=5000, batch_size=64, lr=1e-3, warmup_steps=100,
                        title="GPT (char-level, Tiny Shakespeare)", task="text-generation",
                        tab="text", sample_prompt="\n"),
    "python": dict(tokenizer_kind="bpe", vocab_size=4096, n_layer=6, n_head=6, n_embd=384,
                   block_size=256, dropout=0.1, steps=6000, batch_size=64, lr=1e-3,
                   warmup_steps=200, title="GPT (byte-level BPE, Python stdlib)",
                   task="code-generation", tab="code", sample_prompt="def "),
}
PRESET_LOOP_KEYS = ("steps", "batch_size", "lr")


@dataclass
class GPTSettings:
    """Model and data settings (the loop's are in TrainSettings). 0 / -1 mean: the preset's value."""

    data: str = ""  # a text file, a folder of .py files, "stdlib", or a prepared folder (meta.json)
    config: str = "shakespeare"  # preset: shakespeare | python
    name: str = ""  # model name for the card (default: gpt-CONFIG)
    tokenizer: str = ""  # a saved tokenizer folder to use instead of building one
    init_from: str = ""  # an existing weights folder to fine-tune (its tokenizer and size win)
    n_layer: int = 0
    n_head: int = 0
    n_embd: int = 0
    block_size: int = 0
    dropout: float = -1.0
    vocab_size: int = 0  # BPE only
    val_fraction: float = 0.1
    warmup_steps: int = -1
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    label_smoothing: float = 0.0  # training loss only: cross entropy against (1 - e) one-hot + e uniform
    eval_every: int = 250
    eval_batches: int = 20
    keep_best: bool = True  # export the weights with the best validation loss
    # torch.compile the model, CUDA only: on the loaded 2-core CPU a first compiled step had not ended after 7 min
    compile: bool = False
    export_dtype: str = "float16"
    sample_tokens: int = 400  # length of the sample written into the model card
    dry_run: bool = False

    def preset(self) -> dict[str, Any]:
        if self.config not in PRESETS:
            raise ValueError(f"--config must be one of {', '.join(PRESETS)} (got {self.config!r})")
        return PRESETS[self.config]

    def resolved(self, key: str) -> Any:
        value = getattr(self, key)
        unset = value < 0 or (value == 0 and key not in ("dropout", "warmup_steps"))
        return self.preset()[key] if unset else value


@dataclass
class CorpusTokens:
    """Tokenised train/val splits plus what the model card needs to say about them."""

    tokenizer: Any
    train: np.ndarray
    val: np.ndarray
    val_bytes: int
    val_chars: int
    info: dict[str, Any] = field(default_factory=dict)


def load_corpus(gpt: GPTSettings, tokenizer: Any = None) -> CorpusTokens:
    """Read `gpt.data` and tokenise it (or read a prepared folder's token arrays)."""
    kind = gpt.preset()["tokenizer_kind"]
    if gpt.tokenizer and tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gpt.tokenizer)
    data = gpt.data
    if not data:
        raise ValueError("--data is required: a text file, a folder of .py files, 'stdlib' or a prepared folder")
    path = Path(data)
    if data != "stdlib" and path.is_dir() and textdata.is_prepared(path):
        from transformers import AutoTokenizer

        meta = textdata.read_prepared_meta(path)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")
        elif tokenizer.get_vocab() != AutoTokenizer.from_pretrained(path / "tokenizer").get_vocab():
            raise ValueError(f"{path} was tokenised with another tokenizer than the model's; "
                             "give the raw text file instead")
        if (path / "manifest.json").is_file():
            meta["manifest"] = json.loads((path / "manifest.json").read_text())
        return CorpusTokens(tokenizer, textdata.load_tokens(path / "train.npy"),
                            textdata.load_tokens(path / "val.npy"), int(meta["val_bytes"]),
                            int(meta["val_chars"]), meta)
    info: dict[str, Any] = {}
    if data == "stdlib":
        corpus = textdata.build_python_corpus()
        train_text, val_text = corpus.train_text, corpus.val_text
        manifest = corpus.manifest()
        info = {"source": "python-stdlib", "manifest": manifest, **manifest_summary(manifest)}
    elif path.is_dir():
        train_text, val_text = textdata.split_text(textdata.read_code_folder(path), gpt.val_fraction)
        info = {"source": str(path)}
    else:
        text = textdata.read_text_file(path)
        train_text, val_text = textdata.split_text(text, gpt.val_fraction)
        info = {"source": str(path), "sha256": _sha256(path), "bytes": path.stat().st_size}
    if tokenizer is None:
        if kind == "char":
            tokenizer = toks.build_char_tokenizer(train_text + val_text)
        else:
            tokenizer = toks.train_bpe_tokenizer([train_text], vocab_size=gpt.resolved("vocab_size"))
    sep = textdata.FILE_SEPARATOR
    train = np.asarray(toks.encode(tokenizer, train_text), dtype=np.uint16)
    val = np.asarray(toks.encode(tokenizer, val_text), dtype=np.uint16)
    info.update(val_fraction=gpt.val_fraction, train_chars=len(train_text), train_bytes=len(train_text.encode()),
                tokenizer_kind=kind)
    return CorpusTokens(tokenizer, train, val, len(val_text.replace(sep, "").encode()),
                        len(val_text.replace(sep, "")), info)


def manifest_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the model card says about a stdlib corpus (the full list goes to data_manifest.json)."""
    return {"python_version": manifest["python_version"], "train_files": len(manifest["train_files"]),
            "val_files": len(manifest["val_files"]), "val_modules": manifest["val_modules"]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
