"""The batcher's KV cache layer with spare columns: the same numbers as transformers' own
`DynamicLayer`, through reallocations, rows leaving and padding added, with no copy per step."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

from transformers.cache_utils import DynamicCache, DynamicLayer  # noqa: E402

from aigc_demo.generation.kv_cache import GrowingLayer, make_growing  # noqa: E402
from aigc_demo.models.gpt import GPTModelConfig, build_gpt  # noqa: E402


class OtherLayer(DynamicLayer):
    """A layer type the batcher does not know (say, a sliding window's)."""


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_gpt(GPTModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=128, dropout=0.0, vocab_size=40),
                     0, None).eval()


def decode(model, growing: bool, steps: int, spare: int = 4) -> tuple[list[torch.Tensor], DynamicCache]:
    """Prefill 3 rows, decode `steps` tokens; halfway drop the middle row and pad the cache on the
    left by 2 columns (what the batcher does when rows leave or join). The logits of every step."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 40, (3, 6), generator=generator)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
        cache = out.cache
        if growing:
            cache.layers = [GrowingLayer(layer.keys, layer.values, spare=spare) for layer in cache.layers]
        logits = []
        for step in range(steps):
            if step == steps // 2:
                keep = torch.tensor([0, 2])
                cache.batch_select_indices(keep)
                mask = F.pad(mask[keep], (2, 0))
                for layer in cache.layers:
                    layer.keys, layer.values = F.pad(layer.keys, (0, 0, 2, 0)), F.pad(layer.values, (0, 0, 2, 0))
            rows = mask.shape[0]
            token = torch.randint(0, 40, (rows, 1), generator=generator)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            positions = (mask.cumsum(1)[:, -1:] - 1)
            out = model(input_ids=token, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
            cache = out.cache
            logits.append(out.logits[:, -1].clone())
    return logits, cache


def test_growing_layers_give_the_same_logits_as_dynamic_layers(model) -> None:
    plain, plain_cache = decode(model, growing=False, steps=20)
    grown, grown_cache = decode(model, growing=True, steps=20)
    assert all(type(layer) is GrowingLayer for layer in grown_cache.layers)
    for a, b in zip(plain, grown):
        assert torch.equal(a, b)
    for a, b in zip(plain_cache.layers, grown_cache.layers):
        assert a.keys.shape == b.keys.shape == (2, 2, 6 + 2 + 20, 16)
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
    assert grown_cache.get_seq_length() == 28


def test_a_step_writes_in_place_until_the_spare_columns_are_used() -> None:
    keys, values = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
    layer = GrowingLayer(keys, values, spare=3)
    buffer = layer._keys
    for step in range(3):
        k, v = layer.update(torch.full((2, 3, 1, 4), float(step)), torch.full((2, 3, 1, 4), -float(step)))
        assert layer._keys is buffer  # no new allocation
        assert k.shape == (2, 3, 6 + step, 4) and torch.equal(k[:, :, -1], torch.full((2, 3, 4), float(step)))
    layer.update(torch.ones(2, 3, 1, 4), torch.ones(2, 3, 1, 4))  # the fourth step needs room: one reallocation
    assert layer._keys is not buffer and layer.keys.shape == (2, 3, 9, 4)
    assert torch.equal(layer.keys[:, :, :5], keys) and torch.equal(layer.values[:, :, :5], values)


def test_make_growing_converts_only_dynamic_layers() -> None:
    cache = DynamicCache()
    cache.update(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4), 0)
    other = OtherLayer()
    cache.layers.append(other)
    make_growing(cache)
    assert type(cache.layers[0]) is GrowingLayer and cache.layers[1] is other
