"""Tokenizers and corpora of the small GPTs: exact round trips, stated fallbacks, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from aigc_demo.data import text as textdata
from aigc_demo.models import tokenizers as toks

SHAKESPEARE_LIKE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20
CODE = ("import os\n\n\ndef add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n\n\n"
        "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n") * 30


def test_char_tokenizer_round_trips_and_saves(tmp_path):
    tok = toks.build_char_tokenizer(SHAKESPEARE_LIKE)
    text = "Speak,  speak!\n\nAll:\n  First"  # '!' is unseen: not in this check
    text = text.replace("!", "")
    ids = toks.encode(tok, text)
    assert len(ids) == len(text)  # one token per character, newlines and spaces included
    assert toks.decode(tok, ids) == text
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert toks.encode(loaded, text) == ids
    assert toks.decode(loaded, ids) == text
    assert toks.is_char_level(loaded) and toks.char_fallback(loaded) == "?"
    assert loaded.all_special_ids == []  # nothing gets dropped by skip_special_tokens


def test_char_tokenizer_maps_unseen_characters_to_question_mark():
    tok = toks.build_char_tokenizer("abc ")
    assert toks.unseen_characters(tok, "abz é") == ["z", "é"]
    assert toks.decode(tok, toks.encode(tok, "abz é")) == "ab? ?"
    with pytest.raises(ValueError, match="empty"):
        toks.build_char_tokenizer("")


def test_bpe_round_trips_any_text(tmp_path):
    tok = toks.train_bpe_tokenizer([CODE], vocab_size=320)
    assert len(tok) <= 320 and tok.bos_token == tok.eos_token == toks.ENDOFTEXT
    samples = [CODE[:500], "def f():\r\n\treturn 'héllo wörld 😀'  \n", "   \n\n\t x", "\x00\x01 bytes",
               "中文 text", "<|endoftext|>print(1)"]
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in samples:
        assert toks.decode(tok, toks.encode(tok, text)) == text
        assert toks.decode(loaded, toks.encode(loaded, text)) == text
    assert len(toks.encode(tok, CODE[:500])) < 500 / 1.5  # merges learned: fewer tokens than bytes
    assert not toks.is_char_level(tok)


def test_read_text_file_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(textdata.CorpusError, match="empty"):
        textdata.read_text_file(empty)
    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x89PNG\x00\x00\x01")
    with pytest.raises(textdata.CorpusError, match="binary"):
        textdata.read_text_file(binary)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(textdata.CorpusError, match="UTF-8"):
        textdata.read_text_file(latin)
    with pytest.raises(textdata.CorpusError, match="does not exist"):
        textdata.read_text_file(tmp_path / "missing.txt")
    good = tmp_path / "good.txt"
    good.write_text("hello\n")
    assert textdata.read_text_file(good) == "hello\n"


def test_python_corpus_skips_tests_and_holds_out_modules(tmp_path):
    lib = tmp_path / "Lib"
    for rel in ["os.py", "argparse.py", "json/__init__.py", "test/test_os.py", "lib2to3/tests/x.py",
                "idlelib/idle_test/t.py", "site-packages/pkg.py", "email/utils.py", "pydoc_data/topics.py"]:
        path = lib / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rel}\nx = 1\n")
    corpus = textdata.build_python_corpus(lib)
    assert corpus.train_files == ["email/utils.py", "os.py"]
    assert corpus.val_files == ["argparse.py", "json/__init__.py"]
    assert "test_os" not in corpus.train_text + corpus.val_text
    assert corpus.train_text.count(textdata.FILE_SEPARATOR) == 2
    manifest = corpus.manifest()
    assert manifest["train_files"] == corpus.train_files and manifest["val_bytes"] > 0


def test_token_arrays_are_uint16(tmp_path):
    path = textdata.save_tokens(tmp_path / "t.npy", [1, 2, 65535])
    arr = textdata.load_tokens(path)
    assert arr.dtype == np.uint16 and arr.tolist() == [1, 2, 65535]
    with pytest.raises(textdata.CorpusError, match="uint16"):
        textdata.save_tokens(tmp_path / "big.npy", [70000])
