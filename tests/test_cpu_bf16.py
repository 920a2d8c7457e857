"""bfloat16 matmuls for CPU decoding (generation/cpu_bf16.py): which layers are swapped, what one
computes, that a seed still gives the same text alone or batched, and when it stays off."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from transformers.pytorch_utils import Conv1D  # noqa: E402

from aigc_demo import settings as app_settings  # noqa: E402
from aigc_demo.generation import cpu_bf16  # noqa: E402
from aigc_demo.generation.cpu_bf16 import Bf16Matmul, fit_for_cpu_decoding, use_bf16_matmuls  # noqa: E402
from aigc_demo.generation.stream import generate_with  # noqa: E402
from aigc_demo.loading import registry  # noqa: E402
from aigc_demo.models.gpt import GPTModelConfig, build_gpt  # noqa: E402
from aigc_demo.models.tokenizers import build_char_tokenizer  # noqa: E402
from aigc_demo.services import textgen  # noqa: E402
from tests.factories import make_tiny_char_gpt  # noqa: E402
from tests.test_batcher import REQUESTS, TEXT, run_together  # noqa: E402


def tiny_gpt(n_layer: int = 2):
    torch.manual_seed(0)
    tok = build_char_tokenizer(TEXT + "abcdefghijklmnopqrstuvwxyz")
    model = build_gpt(GPTModelConfig(n_layer=n_layer, n_head=2, n_embd=32, block_size=48, dropout=0.0,
                                     vocab_size=len(tok)), tok.get_vocab()["\n"], None).eval()
    return model, tok


def test_every_projection_is_swapped_but_the_tied_output_layer() -> None:
    model, _ = tiny_gpt(n_layer=2)
    assert use_bf16_matmuls(model) == 2 * 4  # c_attn, attn c_proj, c_fc, mlp c_proj per layer
    assert not any(type(m) is Conv1D for m in model.modules())
    assert type(model.lm_head) is torch.nn.Linear  # it is the token embedding too
    assert model.lm_head.weight is model.get_input_embeddings().weight
    layer = model.transformer.h[0].attn.c_attn
    assert isinstance(layer, Bf16Matmul) and layer.weight.dtype == torch.bfloat16 and layer.bias.dtype == torch.float32
    assert tuple(layer.weight.shape) == (96, 32)  # (out, in), as nn.Linear holds it
    assert use_bf16_matmuls(model) == 0  # nothing left to swap


def test_a_bf16_matmul_is_the_product_of_the_rounded_operands_plus_a_float32_bias() -> None:
    torch.manual_seed(1)
    weight, bias, x = torch.randn(24, 40), torch.randn(24), torch.randn(3, 5, 40)
    layer = Bf16Matmul(weight, bias)
    y = layer(x)
    assert y.dtype == torch.float32 and tuple(y.shape) == (3, 5, 24)
    exact = x.bfloat16().double() @ weight.bfloat16().double().T + bias.double()
    # products of bf16 values are exact in float32; only the sum (then a bf16 result) is rounded
    assert torch.allclose(y.double(), exact, rtol=1e-2, atol=1e-2)
    assert (y.double() - exact).abs().max() < (x.double() @ weight.double().T).abs().max() * 2 ** -7
    assert torch.allclose(Bf16Matmul(weight, None)(x), y - bias)
    assert "in_features=40, out_features=24, bias=True" in repr(layer)


def test_nn_linear_layers_are_swapped_too_and_keep_their_function() -> None:
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 8, bias=False))
    x = torch.randn(4, 16)
    before = net(x)
    assert use_bf16_matmuls(net) == 2
    after = net(x)
    assert after.dtype == torch.float32
    assert torch.allclose(after, before, atol=0.05) and not torch.equal(after, before)


def test_a_seed_gives_the_same_text_alone_or_batched_with_bf16_matmuls() -> None:
    model, tok = tiny_gpt()
    use_bf16_matmuls(model)
    alone = [generate_with(model, tok, prompt, settings) for prompt, settings in REQUESTS]
    together = run_together(model, tok, REQUESTS)
    staggered = run_together(model, tok, REQUESTS, stagger_s=0.01)
    for one, two, three, (prompt, settings) in zip(alone, together, staggered, REQUESTS):
        assert one.text == two.text == three.text, (prompt, settings)
    assert len({r.text for r in alone}) == len(alone)


def test_it_applies_only_where_wanted_on_a_float32_cpu_model_with_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: False)
    assert fit_for_cpu_decoding(tiny_gpt()[0], wanted=True) == 0  # emulated bf16 would be slower
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: True)
    assert fit_for_cpu_decoding(tiny_gpt()[0], wanted=False) == 0  # AIGC_CPU_BF16=off
    assert fit_for_cpu_decoding(tiny_gpt()[0].half(), wanted=True) == 0  # already in half precision
    assert fit_for_cpu_decoding(tiny_gpt()[0], wanted=True) == 8


def test_the_setting_is_read_from_the_environment() -> None:
    assert app_settings.Settings.from_env({}).serve.cpu_bf16 is True
    assert app_settings.Settings.from_env({"AIGC_CPU_BF16": "off"}).serve.cpu_bf16 is False
    with pytest.raises(ValueError, match="AIGC_CPU_BF16 must be one of"):
        app_settings.Settings.from_env({"AIGC_CPU_BF16": "sometimes"})
    with pytest.raises(ValueError, match="cpu_bf16 must be True or False"):
        app_settings.ServeSettings(cpu_bf16="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("wanted", [True, False])
def test_the_loaded_model_follows_the_setting(tmp_path, monkeypatch, wanted: bool) -> None:
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: True)
    folder = make_tiny_char_gpt(tmp_path / "tiny")
    old = app_settings.install(replace(app_settings.current(),
                                       serve=replace(app_settings.current().serve, cpu_bf16=wanted)))
    try:
        model, _ = textgen.load_causal_lm(str(folder), "cpu")
        kinds = {type(m) for m in model.modules()}
        assert (Bf16Matmul in kinds) is wanted and (Conv1D in kinds) is not wanted
    finally:
        registry.unload_all()
        app_settings.install(old)
