"""Hub-model benchmark: what the app's service path costs over calling the model directly.

CPU (always): a tiny random Stable Diffusion pipeline and a tiny GPT-2, the app's service call
(`generate_images`: checks, registry, per-step progress, PNG with metadata; `generate_with`:
streaming, seeded sampler) against the bare `pipe(...)` / `model.generate(...)` on the same
loaded model, interleaved, median of N runs. Target: overhead under 10%.

CUDA (when present): full-size models of the real architectures with random weights built from
their configs (no hub needed): an SD-Turbo-sized UNet/VAE/CLIP at 512x512, one step, and a
Qwen2.5-0.5B-sized causal LM, tokens/s at batch 1. Each is reported with the app's settings
(bf16/fp16, channels-last, SDPA; static KV cache and torch.compile as options) against the same
call without them (float32, as a plain `from_pretrained` gives). The diffusers part is skipped
with a note when diffusers is not installed. gradio is never imported.
"""

from __future__ import annotations

import argparse
import json
import string
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from aigc_demo.bench.common import median, print_table
from aigc_demo.device import pick_device
from aigc_demo.generation.settings import GenerationSettings
from aigc_demo.hub import TEXT_TO_IMAGE
from aigc_demo.loading import registry
from aigc_demo.services.imagegen import ImageSettings, generate_images, load_pipeline, run_pipeline, speed_settings

PROMPT = "a watercolor fox in a snowy forest"

# Configs of the real architectures (shapes as published), used with random weights.
SD_TURBO = {
    "unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=1024,
                 attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3),
    "vae": dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                in_channels=3, out_channels=3, sample_size=768, scaling_factor=0.18215,
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4),
    "text": dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
                 projection_dim=512, hidden_act="gelu", max_position_embeddings=77),
    "size": 512,
}
TINY_SD = {
    "unet": dict(sample_size=32, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                 cross_attention_dim=16, norm_num_groups=4, attention_head_dim=4,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D")),
    "vae": dict(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2),
    "text": dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
                 projection_dim=16, max_position_embeddings=16),
    "size": 64,
}
QWEN_05B = dict(vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32_768,
                rope_theta=1_000_000.0, tie_word_embeddings=True)
TINY_GPT2 = dict(vocab_size=64, n_positions=256, n_embd=32, n_layer=2, n_head=2)


def _vocab() -> dict[str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + ".,!?'-:;()":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    return vocab


def make_sd_pipeline(spec: dict[str, Any], workdir: Path, device: str = "cpu") -> Any:
    """A Stable Diffusion pipeline with random weights of the given shapes, made on `device`.

    The CLIP tokenizer is a character-level one written here (no hub); tokenizing costs the
    same few microseconds, and the text encoder still runs at full size (77 positions).
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab = _vocab()
    tok = workdir / "_tokenizer"
    tok.mkdir(parents=True, exist_ok=True)
    (tok / "vocab.json").write_text(json.dumps(vocab))
    (tok / "merges.txt").write_text("#version: 0.2\n")
    length = spec["text"]["max_position_embeddings"]
    tokenizer = CLIPTokenizer(vocab=str(tok / "vocab.json"), merges=str(tok / "merges.txt"), model_max_length=length)
    with torch.device(device):  # random init straight on the GPU: seconds, not a minute
        text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=max(len(vocab), 49_408 if length == 77 else 0),
                                                    bos_token_id=0, eos_token_id=1, pad_token_id=1, **spec["text"]))
        unet, vae = UNet2DConditionModel(**spec["unet"]), AutoencoderKL(**spec["vae"])
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         timestep_spacing="trailing", steps_offset=1))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_sd_pipeline(folder: Path, spec: dict[str, Any]) -> Path:
    """`make_sd_pipeline` saved as safetensors in `folder` (what the app's loader reads)."""
    make_sd_pipeline(spec, folder.parent).save_pretrained(folder, safe_serialization=True)
    return folder


def _word_tokenizer(vocab_size: int) -> Any:
    """A word-level tokenizer over `vocab_size` ids (random-weight LMs need ids, not meaning)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<eos>", *PROMPT.split(), *(f"w{i}" for i in range(min(vocab_size, 2000) - 8))]
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<eos>")


def _timed(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    sync()
    started = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - started


def compare(runs: int, pairs: dict[str, Callable[[], Any]], sync: Callable[[], None] = lambda: None,
            warmup: int = 1) -> dict[str, float]:
    """Median seconds of each callable, run interleaved so drift hits all alike."""
    for fn in pairs.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(runs):
        for name, fn in pairs.items():
            times[name].append(_timed(fn, sync))
    return {name: median(values) for name, values in times.items()}


# ---- CPU: the app's overhead ------------------------------------------------------------------

def cpu_image_overhead(runs: int, workdir: Path) -> list[dict[str, Any]]:
    import torch

    folder = build_sd_pipeline(workdir / "tiny-sd", TINY_SD)
    size = TINY_SD["size"]
    settings = ImageSettings(PROMPT, steps=2, guidance=0.0, width=size, height=size, seed=0)
    pipe, _, _ = load_pipeline(str(folder), device="cpu")
    out = workdir / "png"

    def bare() -> Any:
        return pipe(PROMPT, num_inference_steps=2, guidance_scale=0.0, width=size, height=size,
                    generator=torch.Generator().manual_seed(0)).images

    def app() -> Any:
        return generate_images(str(folder), settings, device="cpu", on_step=lambda done, total: None, out_dir=out)

    med = compare(runs, {"bare": bare, "app": app})
    return [{"what": f"tiny SD {size}x{size}, 2 steps: pipe(...) directly", "ms": med["bare"] * 1e3, "overhead_%": 0.0},
            {"what": "  same through generate_images (checks, progress, PNG + metadata)", "ms": med["app"] * 1e3,
             "overhead_%": (med["app"] / med["bare"] - 1) * 100}]


def _text_pairs(model: Any, tokenizer: Any, new_tokens: int, device: str) -> dict[str, Callable[[], Any]]:
    """Bare greedy `generate` against the app's streaming path (greedy, same token count)."""
    import torch

    from aigc_demo.generation.stream import generate_with

    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"].to(device)

    def bare() -> Any:
        return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    def app() -> Any:
        update = generate_with(model, tokenizer, PROMPT, GenerationSettings(max_new_tokens=new_tokens,
                                                                            temperature=0.0, seed=0))
        if update.new_tokens != new_tokens:
            raise RuntimeError(f"the app path made {update.new_tokens} tokens, not {new_tokens}")
        return update

    return {"bare": bare, "app": app}


def _no_eos(model: Any) -> Any:
    model.generation_config.eos_token_id = None  # random weights: always make the full count
    model.generation_config.pad_token_id = 0
    return model


def cpu_text_overhead(runs: int, new_tokens: int = 64) -> list[dict[str, Any]]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = _no_eos(GPT2LMHeadModel(GPT2Config(**TINY_GPT2)).eval())
    tokenizer = _word_tokenizer(TINY_GPT2["vocab_size"])
    try:
        med = compare(runs, _text_pairs(model, tokenizer, new_tokens, "cpu"))
    except (ImportError, AttributeError, RuntimeError) as err:
        print(f"note: text part skipped ({type(err).__name__}: {err})")
        return []
    return [{"what": f"tiny GPT-2, {new_tokens} tokens: model.generate directly",
             "ms": med["bare"] * 1e3, "overhead_%": 0.0},
            {"what": "  same through textgen.generate_with (streaming, seeded sampler)",
             "ms": med["app"] * 1e3, "overhead_%": (med["app"] / med["bare"] - 1) * 100}]


# ---- CUDA: full-size shapes, app settings against plain ones ----------------------------------

def have_diffusers(what: str) -> bool:
    try:
        import diffusers  # noqa: F401
    except ImportError:
        print(f"note: diffusers is not installed here: {what} is skipped (pip install diffusers to run it).")
        return False
    return True


def cuda_image(runs: int, workdir: Path, compile_unet: bool) -> list[dict[str, Any]]:
    if not have_diffusers("the SD-Turbo-sized image benchmark"):
        return []
    import torch

    size = SD_TURBO["size"]
    choice = pick_device("cuda")
    settings, _ = ImageSettings(PROMPT, steps=1, guidance=0.0, width=size, height=size, seed=0).checked()
    sync = torch.cuda.synchronize

    pipe = make_sd_pipeline(SD_TURBO, workdir, "cuda")  # float32, no speed settings: the plain call
    med_plain = compare(runs, {"plain": lambda: run_pipeline(pipe, settings)}, sync)["plain"]
    pipe.to(dtype=choice.dtype)
    folder = workdir / "sd-turbo-sized"
    pipe.save_pretrained(folder, safe_serialization=True)  # the service resolves and checks the folder
    fast = speed_settings(pipe, "cuda", choice.dtype, compile_unet)

    registry.get(f"{TEXT_TO_IMAGE}:{folder.name}@local:cuda", lambda: fast, "cuda")  # ... and finds it loaded
    out = workdir / "png"
    med = compare(runs, {
        "fast": lambda: run_pipeline(fast, settings),
        "service": lambda: generate_images(str(folder), settings, device="cuda", out_dir=out),
    }, sync, warmup=3 if compile_unet else 1)
    name = f"SD-Turbo-sized {size}x{size}, 1 step"
    return [
        {"what": f"{name}: float32, no speed settings", "ms": med_plain * 1e3, "speedup": 1.0},
        {"what": f"  {choice.dtype_name} + channels-last{' + compile' if compile_unet else ''} (target <= 40 ms)",
         "ms": med["fast"] * 1e3, "speedup": med_plain / med["fast"]},
        {"what": "  same through generate_images (+ PNG with metadata)", "ms": med["service"] * 1e3,
         "speedup": med_plain / med["service"]},
    ]


def cuda_text(runs: int, new_tokens: int, static_cache: bool, compile_model: bool) -> list[dict[str, Any]]:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    choice = pick_device("cuda")
    sync = torch.cuda.synchronize
    torch.manual_seed(0)
    tokenizer = _word_tokenizer(QWEN_05B["vocab_size"])
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"].cuda()

    def tokens_per_s(model: Any, **gen: Any) -> float:
        def call() -> Any:
            return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                  min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, **gen)
        return new_tokens / compare(runs, {"x": call}, sync, warmup=2)["x"]

    rows = []
    plain = _no_eos(Qwen2ForCausalLM(Qwen2Config(**QWEN_05B, attn_implementation="eager")).cuda().eval())
    base = tokens_per_s(plain)
    rows.append({"what": f"Qwen2.5-0.5B-sized, batch 1, {new_tokens} tokens: float32 eager", "tokens_per_s": base,
                 "speedup": 1.0})
    del plain
    torch.cuda.empty_cache()
    model = _no_eos(Qwen2ForCausalLM(Qwen2Config(**QWEN_05B, attn_implementation="sdpa"))
                    .to(device="cuda", dtype=choice.dtype).eval())
    fast = tokens_per_s(model)
    rows.append({"what": f"  {choice.dtype_name} + SDPA, dynamic cache (the app's default)", "tokens_per_s": fast,
                 "speedup": fast / base})
    try:
        app = new_tokens / compare(runs, {"app": _text_pairs(model, tokenizer, new_tokens, "cuda")["app"]}, sync)["app"]
        rows.append({"what": "  same through textgen.generate_with (streaming, seeded sampler)",
                     "tokens_per_s": app, "speedup": app / base})
    except (ImportError, AttributeError, RuntimeError) as err:
        print(f"note: the textgen service path was skipped ({type(err).__name__}: {err})")
    if static_cache:
        gen: dict[str, Any] = {"cache_implementation": "static"}
        if not compile_model:
            gen["disable_compile"] = True
        label = "static KV cache" + (" + torch.compile (target >= 300 tokens/s)" if compile_model else "")
        try:
            value = tokens_per_s(model, **gen)
            rows.append({"what": f"  {choice.dtype_name} + {label}", "tokens_per_s": value, "speedup": value / base})
        except Exception as err:  # noqa: BLE001 - an option that fails is reported, not fatal
            print(f"note: {label} failed ({type(err).__name__}: {' '.join(str(err).split())[:300]})")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each, median reported (default 7)")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens per generate call on CUDA (default 128)")
    parser.add_argument("--static-cache", action=argparse.BooleanOptionalAction, default=True,
                        help="CUDA: also time a static KV cache (default on)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="CUDA: let transformers torch.compile the LM with the static cache (default on)")
    parser.add_argument("--compile-unet", action=argparse.BooleanOptionalAction, default=False,
                        help="CUDA: torch.compile the UNet too (adds a minute or more of compiling; default off)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the CUDA part")
    parser.add_argument("--skip-image", action="store_true", help="leave out the image models")
    parser.add_argument("--skip-text", action="store_true", help="leave out the language models")
    args = parser.parse_args(argv)
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    try:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()  # the tiny CLIP truncates the prompt on every call
    except ImportError:
        pass

    with tempfile.TemporaryDirectory(prefix="aigc-bench-hub-") as tmp:
        workdir = Path(tmp)
        if not args.skip_cpu:
            rows = []
            if not args.skip_image and have_diffusers("the tiny image pipeline benchmark"):
                rows += cpu_image_overhead(args.runs, workdir)
            if not args.skip_text:
                rows += cpu_text_overhead(args.runs)
            print_table(f"CPU, tiny models: the app's overhead (median of {args.runs}; target < 10%)", rows)
        if not torch.cuda.is_available():
            print("\nNo CUDA GPU: the full-size benchmarks are skipped.")
            return 0
        print(f"\nCUDA: {torch.cuda.get_device_name(0)}")
        if not args.skip_image:
            rows = cuda_image(args.runs, workdir, args.compile_unet)
            if rows:
                print_table(f"CUDA, SD-Turbo-sized pipeline, random weights (median of {args.runs})", rows)
        if not args.skip_text:
            rows = cuda_text(args.runs, args.new_tokens, args.static_cache, args.compile)
            print_table(f"CUDA, Qwen2.5-0.5B-sized LM, random weights (median of {args.runs})", rows)
    return 0
