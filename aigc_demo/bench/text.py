"""Text benchmark: tokens per second of the app's streaming path against plain `model.generate`
and against a loop without KV cache, for each shipped GPT, in one process.

Rows report ratios to a baseline measured in the same command (this machine's speed drifts):
- streaming service / `model.generate` with the same prompt, sampling settings and token count
  (target >= 0.9): what the app's streaming, Stop checks and per-request sampler cost;
- streaming service / a nanoGPT-style loop that re-reads the whole (cropped) context for every
  token, at 500 tokens: what the KV cache buys.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

from aigc_demo.bench.common import median, print_table
from aigc_demo.models.gpt import context_window
from aigc_demo.models.tokenizers import encode

ROOT = Path(__file__).resolve().parents[2]
MODELS = {"gpt-shakespeare": "ROMEO:\nWhat light", "gpt-python": "def read_config(path):\n"}


def _time(fn: Callable[[], Any], runs: int, warm_up: bool = True) -> tuple[float, Any]:
    """Median seconds over `runs` calls (after one warm-up call), and the last result."""
    result = fn() if warm_up else None
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return median(seconds), result


def no_cache_loop(model: Any, ids: list[int], new_tokens: int, temperature: float, top_k: int,
                  seed: int) -> list[int]:
    """nanoGPT's generate: crop to the context, one full forward pass per new token."""
    import torch

    ctx = context_window(model.config)
    generator = torch.Generator().manual_seed(seed)
    x = torch.tensor([ids])
    with torch.inference_mode():
        for _ in range(new_tokens):
            logits = model(input_ids=x[:, -ctx:], use_cache=False).logits[:, -1, :] / temperature
            kth = torch.topk(logits, top_k).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
            x = torch.cat([x, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    return x[0, len(ids):].tolist()


def bench_model(folder: Path, prompt: str, short: int, long: int, runs: int) -> list[dict[str, Any]]:
    import torch

    from aigc_demo.generation.stream import stream_with
    from aigc_demo.services import textgen

    model, tokenizer = textgen.load_causal_lm(str(folder), "cpu")
    ids = encode(tokenizer, prompt)

    def service(tokens: int) -> textgen.GenerationUpdate:
        last = None
        for last in stream_with(model, tokenizer, prompt, textgen.GenerationSettings(
                max_new_tokens=tokens, temperature=0.8, top_k=40, seed=0)):
            pass
        return last

    def plain() -> Any:
        with torch.inference_mode():
            return model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                  max_new_tokens=short, min_new_tokens=short, do_sample=True,
                                  temperature=0.8, top_k=40, pad_token_id=0)

    update, _ = service(short), plain()  # warm-up
    service_times, plain_times = [], []
    for _ in range(runs):  # interleaved, so the machine's drift hits both alike
        started = time.perf_counter()
        update = service(short)
        service_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        plain()
        plain_times.append(time.perf_counter() - started)
    t_service, t_plain = median(service_times), median(plain_times)
    t_long, long_update = _time(lambda: service(long), 1, warm_up=False)  # slow rows: one run each
    t_loop, _ = _time(lambda: no_cache_loop(model, ids, long, 0.8, 40, 0), 1, warm_up=False)
    name = folder.name
    service_rate, plain_rate = update.new_tokens / t_service, short / t_plain
    long_rate, loop_rate = long_update.new_tokens / t_long, long / t_loop
    return [
        {"model": name, "what": f"model.generate, {short} tokens", "tokens_per_s": plain_rate, "ratio": 1.0},
        {"model": name, "what": f"app streaming path, {short} tokens (target >= 0.9)",
         "tokens_per_s": service_rate, "ratio": service_rate / plain_rate},
        {"model": name, "what": f"loop without KV cache, {long} tokens", "tokens_per_s": loop_rate, "ratio": 1.0},
        {"model": name, "what": f"app streaming path (KV cache), {long} tokens",
         "tokens_per_s": long_rate, "ratio": long_rate / loop_rate},
        {"model": name, "what": "time to first token, app path (s)",
         "tokens_per_s": update.time_to_first_token_s or 0.0, "ratio": float("nan")},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench text", description=__doc__)
    parser.add_argument("--weights-dir", default=str(ROOT / "weights"))
    parser.add_argument("--tokens", type=int, default=200, help="tokens for the generate comparison")
    parser.add_argument("--long-tokens", type=int, default=500, help="tokens for the KV-cache comparison")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row (median)")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for name, prompt in MODELS.items():
        folder = Path(args.weights_dir) / name
        if not (folder / "model.safetensors").is_file():
            print(f"skipped {name}: {folder} has no weights")
            continue
        rows += bench_model(folder, prompt, args.tokens, args.long_tokens, args.runs)
    import torch

    print_table(f"Text generation on CPU ({torch.get_num_threads()} threads), median of {args.runs}", rows)
    return 0
