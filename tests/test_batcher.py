"""The step-level batcher: concurrent requests share forward passes and each keeps its own
settings, seed, Stop and stop sequences (same text alone or batched)."""

from __future__ import annotations

import threading
import time

import pytest

torch = pytest.importorskip("torch")

from aigc_demo.generation import batcher as batching  # noqa: E402
from aigc_demo.generation.sampling import Sampler  # noqa: E402
from aigc_demo.generation.settings import GenerationSettings  # noqa: E402
from aigc_demo.generation.stream import generate_with, stream_with  # noqa: E402
from aigc_demo.models.gpt import GPTModelConfig, build_gpt  # noqa: E402
from aigc_demo.models.tokenizers import build_char_tokenizer  # noqa: E402

TEXT = "To be, or not to be, that is the question.\nWhether 'tis nobler in the mind.\n" * 4
CTX = 48


@pytest.fixture(scope="module")
def lm():
    """A random 2-layer char GPT-2 (48-token context): varied logits, so sampling matters."""
    torch.manual_seed(0)
    tok = build_char_tokenizer(TEXT + "abcdefghijklmnopqrstuvwxyz")
    model = build_gpt(GPTModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=CTX, dropout=0.0,
                                     vocab_size=len(tok)), tok.get_vocab()["\n"], None).eval()
    return model, tok


# Different prompts (lengths), settings and seeds: what 8 visitors at once send.
REQUESTS = [
    ("To be", GenerationSettings(max_new_tokens=40, temperature=1.0, seed=1)),
    ("Whether 'tis nobler in the", GenerationSettings(max_new_tokens=60, temperature=0.7, top_k=5, seed=2)),
    ("", GenerationSettings(max_new_tokens=30, temperature=1.2, top_p=0.8, seed=3)),
    ("question", GenerationSettings(max_new_tokens=50, temperature=0, seed=4)),
    ("or not", GenerationSettings(max_new_tokens=45, temperature=0.9, repetition_penalty=1.3, seed=5)),
    ("T", GenerationSettings(max_new_tokens=120, temperature=1.0, top_k=10, top_p=0.9, seed=6)),  # > 2 contexts
    ("the mind", GenerationSettings(max_new_tokens=35, temperature=1.0, seed=7, stop_sequences=("kn",))),
    ("To be, or not to be, that is", GenerationSettings(max_new_tokens=70, temperature=0.5, seed=8)),
]


def run_together(model, tok, requests, stagger_s: float = 0.0) -> list:
    results: list = [None] * len(requests)

    def work(i: int) -> None:
        time.sleep(i * stagger_s)
        results[i] = generate_with(model, tok, requests[i][0], requests[i][1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_same_seed_same_text_alone_or_batched(lm):
    model, tok = lm
    alone = [generate_with(model, tok, prompt, settings) for prompt, settings in REQUESTS]
    batcher = batching.batcher_for(model)
    steps_before, rows_before = batcher.steps, batcher.row_steps
    together = run_together(model, tok, REQUESTS)
    staggered = run_together(model, tok, REQUESTS, stagger_s=0.01)  # joins between steps
    for one, two, three, (prompt, settings) in zip(alone, together, staggered, REQUESTS):
        assert one.text == two.text == three.text, (prompt, settings)
        assert one.new_tokens == two.new_tokens == three.new_tokens
        assert one.stop_reason == two.stop_reason
    assert alone[5].new_tokens == 120 and alone[6].stop_reason == "stop_sequence" and alone[6].text == "iiiwmw'?m?qkl\nrilW,adrk"
    assert len({r.text for r in alone}) == len(alone)  # the settings really differ
    steps = batcher.steps - steps_before
    mean = (batcher.row_steps - rows_before) / steps
    assert mean > 2.0, f"requests were not decoded together (mean batch {mean:.2f})"


def test_stop_ends_one_row_and_the_others_keep_their_text(lm):
    model, tok = lm
    keep = GenerationSettings(max_new_tokens=80, temperature=1.0, seed=11)
    solo = generate_with(model, tok, "To", keep).text
    stop = threading.Event()
    results: dict = {}

    def stopped() -> None:
        for i, update in enumerate(stream_with(model, tok, "Whe", GenerationSettings(max_new_tokens=500, seed=3),
                                               stop, update_interval_s=0)):
            if i == 5:
                stop.set()
        results["stopped"] = update

    def abandoned() -> None:  # a visitor who closes the page: the stream is dropped mid-way
        stream = stream_with(model, tok, "be", GenerationSettings(max_new_tokens=500, seed=4), update_interval_s=0)
        for i, _ in enumerate(stream):
            if i == 3:
                break
        stream.close()

    def kept() -> None:
        results["kept"] = generate_with(model, tok, "To", keep)

    threads = [threading.Thread(target=f) for f in (stopped, abandoned, kept)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results["stopped"].stop_reason == "stopped" and results["stopped"].new_tokens < 50
    assert results["kept"].text == solo and results["kept"].new_tokens == 80
    assert batching.wait_idle(model), "the decoding thread kept running after every request ended"


def test_eos_ends_a_row(lm):
    model, tok = lm
    newline = tok.get_vocab()["\n"]
    model.generation_config.eos_token_id = newline
    try:
        out = generate_with(model, tok, "To be", GenerationSettings(max_new_tokens=300, temperature=1.0, seed=2))
    finally:
        model.generation_config.eos_token_id = None
    assert out.stop_reason == "eos" and "\n" not in out.text and out.new_tokens < 300


def test_a_failing_model_reports_to_every_waiting_request(lm):
    model, tok = lm

    broken = build_gpt(GPTModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=CTX, dropout=0.0,
                                      vocab_size=4), None, None).eval()  # ids outside its vocabulary
    with pytest.raises(RuntimeError, match="Generation failed"):
        generate_with(broken, tok, "To be, or not", GenerationSettings(max_new_tokens=5, seed=1))
    assert generate_with(model, tok, "To", GenerationSettings(max_new_tokens=5, seed=1)).new_tokens == 5


def test_sampling_rules_one_row():
    scores = torch.tensor([2.0, 1.0, 0.5, -1.0, -3.0])

    def draw(seed: int, **settings) -> int:
        return Sampler(GenerationSettings(seed=seed, **settings), "cpu").draw(scores, [0, 3]).item()

    assert draw(0, temperature=0) == 0
    assert {draw(s, temperature=5.0, top_k=2) for s in range(40)} == {0, 1}
    assert {draw(s, temperature=1.0, top_p=0.5) for s in range(40)} == {0}  # the top token alone crosses 0.5
    penalized = Sampler(GenerationSettings(seed=0, temperature=1.0, repetition_penalty=2.0), "cpu").filtered(
        scores, [0, 3])
    assert penalized.tolist() == [1.0, 1.0, 0.5, -2.0, -3.0]
    assert draw(0, temperature=0, repetition_penalty=4.0) == 1  # greedy reads the penalised logits
    assert len({draw(9, temperature=1.0) for _ in range(3)}) == 1
