"""Hub loading and image generation on a CUDA GPU, in half precision.

No gradio here (the GPU machine has none); the diffusers test skips when diffusers is missing.
Every test is marked `cuda` and skips cleanly without a GPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def tiny_lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-lm-cuda")
    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", "the", "cat", "sat", "on", "mat", "a"])}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<eos>").save_pretrained(folder)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=16, n_layer=1, n_head=2)
                    ).save_pretrained(folder)
    return folder


def test_causal_lm_loads_on_cuda_in_half_precision(tiny_lm_folder: Path) -> None:
    import torch

    from aigc_demo import hub
    from aigc_demo.device import pick_device

    choice = pick_device("cuda")
    assert choice.dtype_name in ("bfloat16", "float16")
    source = hub.resolve(str(tiny_lm_folder), kind=hub.CAUSAL_LM)
    model, tokenizer = hub.load_causal_lm(source, dtype=choice.dtype, device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    assert next(model.parameters()).dtype == choice.dtype
    ids = tokenizer("the cat", return_tensors="pt")["input_ids"].cuda()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4,
                             min_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 6)


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is None, reason="needs diffusers")
def test_tiny_pipeline_on_cuda_half_precision_channels_last(tmp_path: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from aigc_demo.device import pick_device
    from aigc_demo.services.imagegen import (
        ImageSettings,
        generate_images,
        load_pipeline,
        read_image_settings,
    )
    from tests.factories import make_tiny_sd_pipeline

    folder = make_tiny_sd_pipeline(tmp_path / "tiny-sd")
    pipe, _, _ = load_pipeline(str(folder), device="cuda")
    choice = pick_device("cuda")
    assert pipe.unet.dtype == choice.dtype and pipe.unet.device.type == "cuda"
    weight = next(p for p in pipe.unet.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    settings = ImageSettings("a red cat", steps=2, guidance=0.0, width=32, height=32, seed=4, num_images=2)
    batch = generate_images(str(folder), settings, device="cuda", out_dir=tmp_path / "out")
    assert batch.device.startswith("cuda") and len(batch.images) == 2
    pixels = np.asarray(Image.open(batch.images[0].path).convert("RGB"))
    assert pixels.shape == (32, 32, 3) and np.isfinite(pixels).all()
    again = generate_images(str(folder), ImageSettings("a red cat", steps=2, guidance=0.0, width=32, height=32,
                                                       seed=4), device="cuda", out_dir=tmp_path / "again")
    diff = np.abs(pixels.astype(int) - np.asarray(Image.open(again.images[0].path).convert("RGB")))
    assert diff.max() <= 8  # same seed on the GPU: the same image up to half-precision noise
    assert read_image_settings(batch.images[1].path).settings.seed == 5
