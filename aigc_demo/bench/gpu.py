"""GPU benchmark, one prepared script: `python -m aigc_demo bench gpu [--out FILE.json]`.

What it measures on the best device (CUDA when present), in one process, in a few minutes:
- a 0.5B-sized LM (random weights from a Qwen2-0.5B-like config, bf16 on CUDA): tokens/s of the
  app's path (`generation.stream_with`: the step-level batcher, per-request seeded sampling,
  streaming) against the best raw `model.generate` (static cache + torch.compile on CUDA, after
  warm-up), at 1 client and at `--clients` clients at once (raw: one batched `generate`);
  target on an H200: app >= 0.9x raw at 1 client;
  and the app path's aggregate tokens/s with `--clients` streams over one stream (the
  "8 visitors against one" figure);
- an sd-turbo-sized text-to-image pipeline (random weights from SD-2.1-like configs, diffusers),
  one step at 512x512: median latency (target on an H100/H200 <= 50 ms);
- weights in the device's half dtype (bf16 where the GPU has it, else fp16; `--dtype float16`
  or `bfloat16` to pick one), attention through PyTorch's SDPA: each section's rows say which
  attention kernel the model ran (`attention`), so a fallback to eager attention shows;
- our digits models (`bench digits`' model latencies) and our GPTs (app path vs generate).

`--tiny` swaps every model for a tiny one of the same architecture, so the whole script runs
end to end on a CPU in seconds (a test runs it that way); its figures mean nothing. The JSON
holds every row, the device and the settings.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from aigc_demo.bench.common import print_table
from aigc_demo.bench.digits import model_latency
from aigc_demo.device import pick_device
from aigc_demo.generation.settings import GenerationSettings

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"
PROMPT_TOKENS = 16


@dataclass
class GpuBenchSettings:
    tiny: bool = False
    device: str = "auto"
    tokens: int = 128  # new tokens per LM request
    clients: int = 8
    runs: int = 3  # timed runs per row (median)
    image_size: int = 512
    compile: bool = True  # static cache + torch.compile for the raw generate baseline (CUDA only)
    dtype: str = "auto"  # auto (the device's: bf16/fp16 on CUDA, fp32 on CPU) | float16 | bfloat16 | float32
    weights: str = str(WEIGHTS)
    gpts: str = "gpt-shakespeare,gpt-python"  # folders under weights
    gan: str = "dcgan-mnist"
    vae: str = "vae-mnist-2d"
    classifier: str = "mnist-classifier"


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def _median_seconds(fn: Callable[[], Any], runs: int, device: Any) -> float:
    times = []
    for _ in range(runs):
        _sync(device)
        started = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ---------------------------------------------------------------- language models

def word_tokenizer(vocab_size: int) -> Any:
    """A tokenizer with exactly `vocab_size` tokens ('t0 t1 ...'), made offline: random weights
    then draw any id, and every id decodes."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="t0")


def qwen_like(tiny: bool, dtype: Any, device: Any) -> tuple[Any, Any]:
    """(model, tokenizer): Qwen2-0.5B's shape with random weights (or a tiny one of the same kind)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if tiny:
        config = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, vocab_size=512, max_position_embeddings=512,
                             tie_word_embeddings=True)
    else:
        config = Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                             num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                             rope_theta=1_000_000.0, tie_word_embeddings=True)
    config.bos_token_id = config.eos_token_id = config.pad_token_id = None  # every request runs its full length
    config._attn_implementation = "sdpa"  # as the app loads hub models
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model, word_tokenizer(config.vocab_size)


def raw_generate(model: Any, batch: int, tokens: int, static: bool) -> Callable[[], Any]:
    """Plain `generate` of `batch` same-length prompts (sampling, top-k 40), the baseline."""
    import torch

    device = next(model.parameters()).device
    ids = torch.randint(1, model.config.vocab_size, (batch, PROMPT_TOKENS), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)
    extra: dict[str, Any] = {"cache_implementation": "static"} if static else {}

    def run() -> Any:
        with torch.inference_mode():
            return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                  min_new_tokens=tokens, do_sample=True, temperature=0.8, top_k=40,
                                  pad_token_id=0, **extra)

    return run


def app_path(model: Any, tokenizer: Any, clients: int, tokens: int) -> Callable[[], int]:
    """`clients` threads streaming through `generation.stream_with` at once; returns tokens made."""
    from aigc_demo.generation.stream import generate_with

    prompt = " ".join(f"t{i + 1}" for i in range(PROMPT_TOKENS)) if len(tokenizer) > PROMPT_TOKENS else "To be"

    def run() -> int:
        made = [0] * clients

        def one(i: int) -> None:
            settings = GenerationSettings(max_new_tokens=tokens, temperature=0.8, top_k=40, seed=i)
            made[i] = generate_with(model, tokenizer, prompt, settings).new_tokens

        threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(made)

    return run


def lm_attention(model: Any) -> str:
    """The attention kernel a transformers model runs (sdpa, eager, flash_attention_2, ...)."""
    return str(getattr(model.config, "_attn_implementation", None) or "eager")


def lm_rows(name: str, model: Any, tokenizer: Any, cfg: GpuBenchSettings, device: Any) -> list[dict[str, Any]]:
    """App path vs raw generate, at 1 client and at `cfg.clients`, tokens/s and ratios; then the
    app path's `cfg.clients` streams against its one stream."""
    static = cfg.compile and getattr(device, "type", "") == "cuda"
    attention, dtype = lm_attention(model), str(next(model.parameters()).dtype).removeprefix("torch.")
    rows = []
    app_rates = []
    for clients in (1, cfg.clients):
        raw = raw_generate(model, clients, cfg.tokens, static)
        app = app_path(model, tokenizer, clients, cfg.tokens)
        started = time.perf_counter()
        raw(), raw()  # warm-up (with static cache: compilation happens here)
        app()
        warm_s = time.perf_counter() - started
        t_raw = _median_seconds(raw, cfg.runs, device)
        made: list[int] = []
        t_app = _median_seconds(lambda: made.append(app()), cfg.runs, device)
        raw_rate, app_rate = clients * cfg.tokens / t_raw, statistics.median(made) / t_app
        app_rates.append(app_rate)
        how = "static cache + torch.compile" if static else "dynamic cache"
        rows += [
            {"what": f"{name}: raw generate ({how}), batch {clients}", "tokens_per_s": raw_rate, "ratio": 1.0,
             "warmup_s": warm_s, "dtype": dtype, "attention": attention},
            {"what": f"{name}: app path, {clients} client(s) at once" + (" (target >= 0.9x)" if clients == 1 else ""),
             "tokens_per_s": app_rate, "ratio": app_rate / raw_rate, "warmup_s": float("nan"), "dtype": dtype,
             "attention": attention},
        ]
    rows.append({"what": f"{name}: app path, {cfg.clients} streams against 1 (aggregate tokens/s; ratio: N over 1)",
                 "tokens_per_s": app_rates[1], "ratio": app_rates[1] / app_rates[0], "warmup_s": float("nan"),
                 "dtype": dtype, "attention": attention})
    return rows


def our_gpt_rows(cfg: GpuBenchSettings, device: Any) -> list[dict[str, Any]]:
    from aigc_demo.services import textgen

    rows: list[dict[str, Any]] = []
    for name in [n for n in cfg.gpts.split(",") if n]:
        folder = Path(cfg.weights) / name
        if not (folder / "model.safetensors").is_file():
            rows.append({"what": f"{name}: skipped (no weights at {folder})", "tokens_per_s": float("nan"),
                         "ratio": float("nan"), "warmup_s": float("nan")})
            continue
        model, tokenizer = textgen.load_causal_lm(str(folder), str(device))
        model.generation_config.pad_token_id = 0
        rows += lm_rows(name, model, tokenizer, cfg, device)
    return rows


# ---------------------------------------------------------------- text to image

def sd_turbo_like(tiny: bool, dtype: Any, device: Any) -> Any:
    """A StableDiffusionPipeline shaped like stabilityai/sd-turbo (SD 2.1 UNet, VAE, OpenCLIP-H
    text encoder), random weights; the tokenizer is skipped (prompt embeddings are passed in)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    if tiny:
        unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8,
                                    cross_attention_dim=16, norm_num_groups=4, attention_head_dim=4,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
        vae = AutoencoderKL(block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4,
                            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
        text = CLIPTextConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                              num_hidden_layers=2, max_position_embeddings=77)
    else:
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                                    use_linear_projection=True, block_out_channels=(320, 640, 1280, 1280))
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), latent_channels=4, sample_size=768,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
        text = CLIPTextConfig(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                              num_hidden_layers=23, max_position_embeddings=77, hidden_act="gelu",
                              projection_dim=512)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing", steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=CLIPTextModel(text), tokenizer=None,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device, dtype)


def image_rows(cfg: GpuBenchSettings, device: Any, dtype: Any) -> list[dict[str, Any]]:
    import torch

    pipe = sd_turbo_like(cfg.tiny, dtype, device)
    size = 32 if cfg.tiny else cfg.image_size
    ids = torch.randint(0, pipe.text_encoder.config.vocab_size, (1, 77), device=device)

    def one_step() -> Any:
        with torch.inference_mode():
            embeds = pipe.text_encoder(ids)[0]
            return pipe(prompt_embeds=embeds, num_inference_steps=1, guidance_scale=0.0, height=size, width=size,
                        output_type="pil", generator=torch.Generator(device).manual_seed(0)).images[0]

    one_step(), one_step()  # warm-up
    seconds = _median_seconds(one_step, max(cfg.runs, 5), device)
    return [{"what": f"sd-turbo-sized, 1 step, {size}x{size}, text encoder + UNet + VAE + PIL (target <= 50 ms)",
             "ms": seconds * 1e3, "dtype": str(pipe.unet.dtype).removeprefix("torch."),
             "attention": f"unet {unet_attention(pipe.unet)}, text encoder {lm_attention(pipe.text_encoder)}"}]


def unet_attention(unet: Any) -> str:
    """The attention processors a diffusers UNet runs (AttnProcessor2_0 is PyTorch's SDPA)."""
    return ",".join(sorted({type(p).__name__ for p in unet.attn_processors.values()}))


# ---------------------------------------------------------------- digits

def digit_rows(cfg: GpuBenchSettings, device: Any) -> list[dict[str, Any]]:
    folders = {role: Path(cfg.weights) / getattr(cfg, role) for role in ("gan", "vae", "classifier")}
    missing = [str(f) for f in folders.values() if not (f / "model.safetensors").is_file()]
    if missing:
        return [{"what": f"digits: skipped (no weights at {', '.join(missing)})", "ms": float("nan")}]
    rows = model_latency(str(device), runs=cfg.runs * 5, warmup=3, **folders)
    return [{"what": f"digits: {row['what']}", "ms": row["ms"]} for row in rows]


# ---------------------------------------------------------------- main

def run(cfg: GpuBenchSettings) -> dict[str, Any]:
    """Every section in turn; a section that fails is reported as such and the rest still run."""
    import torch

    choice = pick_device(None if cfg.device == "auto" else cfg.device)
    device, dtype = choice.torch_device, choice.dtype if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
    started = time.perf_counter()
    result: dict[str, Any] = {"device": choice.name, "dtype": str(dtype), "torch": torch.__version__,
                              "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor(),
                              "settings": asdict(cfg), "sections": {}}
    sections: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
        ("lm_0.5b", lambda: lm_rows("Qwen2-0.5B-sized" if not cfg.tiny else "tiny Qwen2",
                                    *qwen_like(cfg.tiny, dtype, device), cfg, device)),
        ("image", lambda: image_rows(cfg, device, dtype)),
        ("digits", lambda: digit_rows(cfg, device)),
        ("our_gpts", lambda: our_gpt_rows(cfg, device)),
    ]
    for name, section in sections:
        t0 = time.perf_counter()
        try:
            rows = section()
        except Exception as err:  # noqa: BLE001 - one section failing must not lose the others' figures
            rows = [{"what": f"{name} failed: {type(err).__name__}: {err}"}]
            result.setdefault("errors", []).append(f"{name}: {type(err).__name__}: {err}")
        result["sections"][name] = {"rows": rows, "seconds": time.perf_counter() - t0}
        print_table(f"{name} on {choice.name}", rows)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result["seconds"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench-gpu.json", help="where the JSON goes")
    parser.add_argument("--tiny", action="store_true", help="tiny models: run end to end on a CPU in seconds")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="raw baseline without static cache/compile")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float16", "bfloat16", "float32"),
                        help="weights dtype of the 0.5B LM and the sd-turbo-sized pipeline (auto: the device's)")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--gpts", default=GpuBenchSettings.gpts, help="comma-separated folders under --weights")
    parser.add_argument("--gan", default=GpuBenchSettings.gan)
    parser.add_argument("--vae", default=GpuBenchSettings.vae)
    parser.add_argument("--classifier", default=GpuBenchSettings.classifier)
    args = parser.parse_args(argv)
    cfg = GpuBenchSettings(tiny=args.tiny, device=args.device, tokens=args.tokens, clients=args.clients,
                           runs=args.runs, compile=not args.no_compile, dtype=args.dtype, weights=args.weights,
                           gpts=args.gpts,
                           gan=args.gan, vae=args.vae, classifier=args.classifier)
    result = run(cfg)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {args.out} ({result['seconds']:.0f} s)")
    return 1 if result.get("errors") else 0
