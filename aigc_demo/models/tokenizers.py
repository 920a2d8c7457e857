"""Tokenizers for the small GPTs, built with `tokenizers` and wrapped as transformers fast
tokenizers, so our models and hub models go through the same `AutoTokenizer` code path.

- char-level (Shakespeare): one token per character, newlines included; a character never seen
  in training maps to CHAR_FALLBACK ('?'), so any text encodes and nothing crashes.
- byte-level BPE (Python): GPT-2 style, so any text (any bytes) round-trips exactly.
"""

from __future__ import annotations

from typing import Any, Iterable

CHAR_FALLBACK = "?"
ENDOFTEXT = "<|endoftext|>"
DEFAULT_BPE_VOCAB = 4096


def build_char_tokenizer(text: str, fallback: str = CHAR_FALLBACK) -> Any:
    """A PreTrainedTokenizerFast with one id per distinct character of `text` (sorted, as in
    char-rnn/nanoGPT). Unseen characters encode to `fallback`, which decodes to itself."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if not text:
        raise ValueError("cannot build a character tokenizer from empty text")
    if len(fallback) != 1:
        raise ValueError(f"the fallback must be one character (got {fallback!r})")
    chars = sorted(set(text) | {fallback})
    vocab = {ch: i for i, ch in enumerate(chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=fallback))
    # Every character is its own piece, newlines and spaces included ([\s\S] matches anything).
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # join pieces as they are: no spaces added between characters
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                      model_max_length=10**9)
    wrapped.init_kwargs["char_level_fallback"] = fallback
    return wrapped


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = DEFAULT_BPE_VOCAB,
                        min_frequency: int = 2) -> Any:
    """A GPT-2 style byte-level BPE trained on `texts`, with `<|endoftext|>` as BOS/EOS/pad."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise ValueError(f"a byte-level BPE needs a vocabulary of at least 300 (got {vocab_size})")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[ENDOFTEXT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT,
                                   pad_token=ENDOFTEXT, clean_up_tokenization_spaces=False,
                                   model_max_length=10**9)


def is_char_level(tokenizer: Any) -> bool:
    """True for tokenizers built by `build_char_tokenizer` (a WordLevel model over characters)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.model).__name__ == "WordLevel"


def char_fallback(tokenizer: Any) -> str | None:
    """The character unseen characters are mapped to, for char-level tokenizers."""
    if not is_char_level(tokenizer):
        return None
    return tokenizer.backend_tokenizer.model.unk_token


def unseen_characters(tokenizer: Any, text: str) -> list[str]:
    """Characters of `text` a char-level tokenizer has no id for (they become the fallback)."""
    if not is_char_level(tokenizer):
        return []
    vocab = tokenizer.get_vocab()
    return sorted({ch for ch in text if ch not in vocab})


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids without any special tokens added (our tokenizers add none; hub ones may)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def decode(tokenizer: Any, ids: Any) -> str:
    """Exact inverse of `encode` for our tokenizers: no space clean-up, special tokens kept."""
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def save_tokenizer(tokenizer: Any, folder: Any) -> None:
    """`save_pretrained`, naming the class `PreTrainedTokenizerFast` (known to transformers 4.x and
    5.x alike) instead of 5.x's `TokenizersBackend`, so older installs load our folders too."""
    import json
    from pathlib import Path

    tokenizer.save_pretrained(folder)
    path = Path(folder) / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2) + "\n")
