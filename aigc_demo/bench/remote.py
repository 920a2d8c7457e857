"""Remote engine benchmark: `python -m aigc_demo bench remote`: 1 client against N clients at once,
through the app (its HTTP API, gradio_client) to `transformers serve --continuous-batching`.

The engine and the app each run in their own process, as in a deployment; the app is started
with `--llm-servers` and knows the model only as `remote:<host:port>/<model>`. Each round runs
the 1-client case then the N-client case (interleaved, so a shared machine's drift weighs on
both); figures are medians over rounds. The ratio is N-client throughput (tokens of all clients /
wall time) over 1-client throughput: what the engine's continuous batching gives visitors of one
app. `--no-cb` runs the same against a server without continuous batching, for comparison.

Note: the app's queue runs a limited number of Text generations at once (ui/launch.py), so N
clients above that limit wait in the app's queue, whatever the engine could take.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from aigc_demo.bench import concurrency
from aigc_demo.bench.common import median, print_table
from aigc_demo.bench.concurrency import PROMPT, at_once, served_app
from aigc_demo.bench.digits import _free_port
from aigc_demo.engines.local_serve import TransformersServe
from aigc_demo.environment import child_env

ROOT = Path(__file__).resolve().parents[2]
READ_TIMEOUT_S = 300.0


@contextlib.contextmanager
def app_process(llm_server: str, timeout_s: float = 300.0) -> Iterator[str]:
    """`python -m aigc_demo serve --llm-servers URL` with an empty weights folder; yields its URL."""
    # A throughput benchmark: allow long silences (a queued request on a busy engine).
    env = child_env({"AIGC_LLM_READ_TIMEOUT": str(READ_TIMEOUT_S)})
    with tempfile.TemporaryDirectory() as weights, \
            served_app(weights, "cpu", timeout_s, ["--llm-servers", llm_server], env) as url:
        yield url


def text_request(client: Any, model: str, tokens: int, seed: int) -> dict[str, float]:
    """One streamed /text_generate (top-k off: the engine samples from the whole vocabulary)."""
    return concurrency.text_request(client, model, tokens, seed, top_k=0)


def measure(app_url: str, model_ref: str, clients: int, tokens: int, rounds: int, label: str) -> list[dict[str, Any]]:
    """1 client vs `clients` at once through the app; rows with medians and the ratio."""
    from gradio_client import Client

    conns = [Client(app_url, verbose=False) for _ in range(clients)]
    text_request(conns[0], model_ref, 8, 0)  # warm-up: engine, app and connections
    one_rate, one_ttft, many_rate, many_ttft = [], [], [], []
    for r in range(rounds):
        alone = text_request(conns[0], model_ref, tokens, 1000 + r)
        one_rate.append(alone["tokens"] / alone["seconds"])
        one_ttft.append(alone["ttft"])
        wall, results = at_once([lambda i=i: text_request(conns[i], model_ref, tokens, 2000 + 100 * r + i)
                                 for i in range(clients)])
        many_rate.append(sum(x["tokens"] for x in results) / wall)
        many_ttft.append(median([x["ttft"] for x in results]))
    rate1, rate_n = median(one_rate), median(many_rate)
    return [
        {"what": f"{label}: 1 client, {tokens} tokens", "tokens_per_s": rate1, "ttft_s": median(one_ttft),
         "ratio": 1.0},
        {"what": f"{label}: {clients} clients at once", "tokens_per_s": rate_n, "ttft_s": median(many_ttft),
         "ratio": rate_n / rate1},
    ]


def warm_engine(base_url: str, model: str) -> None:
    """One request straight to the engine, with a long timeout: continuous batching sets up its
    paged cache on the first request (tens of seconds on a CPU), which is not what is measured."""
    import openai

    engine = openai.OpenAI(base_url=base_url, api_key="none", timeout=READ_TIMEOUT_S, max_retries=0)
    engine.completions.create(model=model, prompt=PROMPT, max_tokens=4)


def direct_request(base_url: str, model: str, tokens: int, seed: int) -> dict[str, float]:
    """One streamed completion straight to the engine (no app): the engine's own figure."""
    import openai

    engine = openai.OpenAI(base_url=base_url, api_key="none", timeout=READ_TIMEOUT_S, max_retries=0)
    started = time.perf_counter()
    first, count = None, 0
    stream = engine.completions.create(model=model, prompt=PROMPT, max_tokens=tokens, seed=seed, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            first = first if first is not None else time.perf_counter() - started
        if chunk.usage is not None:
            count = chunk.usage.completion_tokens
    seconds = time.perf_counter() - started
    return {"tokens": float(count or tokens), "seconds": seconds, "ttft": first if first is not None else seconds}


def measure_direct(base_url: str, model: str, clients: int, tokens: int, rounds: int,
                   label: str) -> list[dict[str, Any]]:
    """The same 1 vs N comparison straight to the engine, to tell the app's share from the engine's."""
    one_rate, many_rate, many_ttft = [], [], []
    for r in range(rounds):
        alone = direct_request(base_url, model, tokens, 1000 + r)
        one_rate.append(alone["tokens"] / alone["seconds"])
        wall, results = at_once([lambda i=i: direct_request(base_url, model, tokens, 2000 + 100 * r + i)
                                 for i in range(clients)])
        many_rate.append(sum(x["tokens"] for x in results) / wall)
        many_ttft.append(median([x["ttft"] for x in results]))
    return [{"what": f"{label}, straight to the engine: {clients} clients vs 1",
             "tokens_per_s": median(many_rate), "ttft_s": median(many_ttft),
             "ratio": median(many_rate) / median(one_rate)}]


def run_engine(model: Path, continuous_batching: bool, clients: int, tokens: int, rounds: int,
               log_dir: Path, direct: bool = False) -> list[dict[str, Any]]:
    extra = ["--continuous-batching"] if continuous_batching else []
    server = TransformersServe(_free_port(), [model], log_dir / f"serve-{'cb' if extra else 'plain'}.log", extra)
    label = "transformers serve" + (" --continuous-batching" if extra else "")
    print(f"starting {label} with {model.name} ...", file=sys.stderr, flush=True)
    server.start()
    try:
        warm_engine(server.base_url, str(model))
        ref = f"remote:127.0.0.1:{server.port}/{model}"
        with app_process(server.base_url) as url:
            print(f"app at {url}; measuring 1 vs {clients} clients ...", file=sys.stderr, flush=True)
            rows = measure(url, ref, clients, tokens, rounds, label)
        if direct:
            rows += measure_direct(server.base_url, str(model), clients, tokens, rounds, label)
        return rows
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench remote", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "weights" / "gpt-shakespeare"),
                        help="a causal-LM folder `transformers serve` loads (default: the shipped Shakespeare GPT)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=100, help="tokens per request (the model reads 256 positions)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (1 client, N clients); medians")
    parser.add_argument("--no-cb", action="store_true", help="also measure a server without continuous batching")
    parser.add_argument("--direct", action="store_true",
                        help="also measure N clients vs 1 straight to the engine (without the app)")
    args = parser.parse_args(argv)
    model = Path(args.model).resolve()
    if not (model / "config.json").is_file():
        print(f"{model} is not a model folder")
        return 1
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as logs:
        rows += run_engine(model, True, args.clients, args.tokens, args.rounds, Path(logs), args.direct)
        if args.no_cb:
            rows += run_engine(model, False, args.clients, args.tokens, args.rounds, Path(logs), args.direct)
    print_table(f"Through the app to a remote engine ({model.name}), medians of {args.rounds} rounds", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
