"""The sampler is transformers' own logits processing plus a per-request seeded draw: on fixed
logits its filtered distribution equals the chain `generate` builds, and a seed fixes the draws."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from transformers import GenerationConfig  # noqa: E402

from aigc_demo.generation.sampling import Sampler  # noqa: E402
from aigc_demo.generation.settings import GenerationSettings  # noqa: E402
from aigc_demo.models.gpt import GPTModelConfig, build_gpt  # noqa: E402

VOCAB = 64
WINDOW = [3, 3, 7, 11, 40]  # tokens already seen: what the repetition penalty reads

CASES = [
    dict(temperature=0.7),
    dict(temperature=1.3, top_k=5),
    dict(temperature=0.9, top_p=0.8),
    dict(temperature=1.0, top_k=12, top_p=0.6, repetition_penalty=1.3),
    dict(temperature=0.5, repetition_penalty=0.8),
]


@pytest.fixture(scope="module")
def logits() -> torch.Tensor:
    """Fixed, varied logits (a seeded draw, with ties and negatives), as one row."""
    generator = torch.Generator().manual_seed(1234)
    row = torch.randn(VOCAB, generator=generator) * 3
    row[20] = row[21]  # a tie
    return row


@pytest.fixture(scope="module")
def generate_chain():
    """The logits processors transformers' `generate` builds for a GenerationConfig."""
    model = build_gpt(GPTModelConfig(n_layer=1, n_head=1, n_embd=8, block_size=16, dropout=0.0,
                                     vocab_size=VOCAB), None, None)

    def chain(settings: dict):
        config = GenerationConfig(do_sample=True, top_k=settings.get("top_k", 0), top_p=settings.get("top_p", 1.0),
                                  temperature=settings["temperature"],
                                  repetition_penalty=settings.get("repetition_penalty", 1.0))
        return model._get_logits_processor(generation_config=config, input_ids_seq_length=len(WINDOW),
                                           device="cpu")
    return chain


@pytest.mark.parametrize("settings", CASES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_filtered_distribution_equals_transformers_generate(logits, generate_chain, settings) -> None:
    sampler = Sampler(GenerationSettings(seed=0, **settings), "cpu")
    ours = sampler.filtered(logits, WINDOW).softmax(-1)
    chain = generate_chain(settings)
    assert len(chain) >= 1 and [type(p) for p in sampler.processors] == [type(p) for p in chain]  # same order
    theirs = chain(torch.tensor([WINDOW]), logits[None].clone())[0].softmax(-1)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)
    kept = set(torch.nonzero(ours).flatten().tolist())
    if "top_k" in settings and "top_p" not in settings:  # the k largest, read independently
        assert kept == set(torch.argsort(logits, descending=True)[:settings["top_k"]].tolist())
    if set(settings) == {"temperature", "top_p"}:  # the fewest most likely tokens whose mass reaches top_p
        probs = (logits / settings["temperature"]).softmax(-1)
        order = torch.argsort(probs, descending=True)
        need = int((probs[order].cumsum(0) < settings["top_p"]).sum()) + 1
        assert 1 < need < VOCAB and kept == set(order[:need].tolist())


def test_seeded_draws_are_deterministic_and_follow_the_distribution(logits) -> None:
    settings = GenerationSettings(temperature=0.9, top_k=20, top_p=0.95, repetition_penalty=1.2, seed=77)
    first = Sampler(settings, "cpu")
    second = Sampler(settings, "cpu")
    draws = [first.draw(logits, WINDOW).item() for _ in range(50)]
    assert draws == [second.draw(logits, WINDOW).item() for _ in range(50)]  # same seed, same tokens
    probs = first.filtered(logits, WINDOW).softmax(-1)
    reference = torch.Generator().manual_seed(77)
    assert draws == [torch.multinomial(probs, 1, generator=reference).item() for _ in range(50)]
    assert all(probs[token] > 0 for token in draws)  # never a filtered-out token
    other = Sampler(GenerationSettings(temperature=0.9, top_k=20, top_p=0.95, repetition_penalty=1.2, seed=78), "cpu")
    assert [other.draw(logits, WINDOW).item() for _ in range(50)] != draws
    before = torch.random.get_rng_state()
    Sampler(settings, "cpu").draw(logits, WINDOW)
    assert torch.equal(before, torch.random.get_rng_state())  # the global RNG is never touched


def test_greedy_takes_the_most_likely_token_after_the_penalty(logits) -> None:
    greedy = Sampler(GenerationSettings(temperature=0, seed=0), "cpu")
    assert greedy.draw(logits, WINDOW).item() == int(logits.argmax())
    top = int(logits.argmax())
    penalised = Sampler(GenerationSettings(temperature=0, repetition_penalty=50.0, seed=0), "cpu")
    assert penalised.draw(logits, [top]).item() == int(torch.topk(logits, 2).indices[1])


def test_unchecked_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="checked"):
        Sampler(GenerationSettings(seed=None), "cpu")
