"""Concurrency benchmark: `python -m aigc_demo bench concurrency`: 1 client against N clients at
once through the launched app's HTTP API (gradio_client), for text and digits.

Each round runs the 1-client case then the N-client case, and rounds repeat (interleaved), so a
shared machine's drift weighs on both alike; figures are medians over rounds and the ratio is
N-client throughput over 1-client throughput (the figure to watch; targets: text >= 4x, time
to first token with N clients <= 2x alone; digits >= 2x).

- text: each client streams `/text_generate` (`--tokens` tokens, seeded sampling) and counts
  the tokens the final stats line reports; time to first token is measured by the client (first
  streamed update with text in it).
- digits: each client asks `/digits_grid` for `--grid` digits, `--requests` requests per round in
  all (1 client: one after the other); `server_cpu_ms` is the app process's CPU time (all its
  threads, from /proc) per request: what one grid costs the server alone and batched.

`--soak S`: then every client (`--soak-clients`, 16) at once for S seconds, mixing text streams
and digit grids; the row counts failures and streams whose text differs from their seed's alone.

Text targets are model ids (`--text-models`): any id the Text tab lists (a shipped model's name,
a hub id, a remote engine's model once that dispatch exists), one set of rows each.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

from aigc_demo.bench.common import cpu_seconds, median, print_table, served_pid
from aigc_demo.bench.digits import GAN, WEIGHTS, _free_port
from aigc_demo.models.gpt import context_window

PROMPT = "ROMEO:\n"  # every text request's prompt
_TOKENS = re.compile(r"(\d+) tokens")
_SERVER_TTFT = re.compile(r"first token after ([\d.]+) s")


SETTLE_S = 8.0  # after its first answer the app must stay up this long (gradio's own start-up check)
START_TRIES = 3


def _start_app(weights: str | Path, device: str, timeout_s: float, extra_args: Sequence[str],
               env: dict[str, str] | None, log: Any) -> tuple[subprocess.Popen, str, bool]:
    """Start the app and wait until it answers and stays up for `SETTLE_S`: (process, URL, whether
    it answered before exiting: gradio's launch() checks its own first page within ~3 s and exits
    when a loaded machine answers later)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, "-m", "aigc_demo", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--weights-dir", str(weights), "--device", device, *extra_args],
                              stdout=log, stderr=log, text=True, env=env)
    deadline = time.monotonic() + timeout_s
    answered_at = None
    while True:
        if server.poll() is not None:
            return server, url, answered_at is not None
        if answered_at is not None and time.monotonic() - answered_at > SETTLE_S:
            return server, url, True
        try:
            with urllib.request.urlopen(url, timeout=5):
                answered_at = answered_at or time.monotonic()
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                server.wait()
                raise RuntimeError(f"the app did not answer at {url} within {timeout_s:.0f} s") from None
        time.sleep(0.5)


@contextlib.contextmanager
def served_app(weights: str | Path, device: str = "auto", timeout_s: float = 300.0,
               extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> Iterator[str]:
    """The app in its own process (`python -m aigc_demo serve ... extra_args`, in `env` if given),
    as visitors meet it: the clients here do not share its interpreter lock. Yields its URL;
    stopped with SIGTERM afterwards. An app that answered and then exited (gradio's start-up
    check lost patience on a loaded machine) is started again, up to `START_TRIES` times."""
    log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads could fill up and stall the app
    server: subprocess.Popen | None = None
    try:
        for _ in range(START_TRIES):
            server, url, answered = _start_app(weights, device, timeout_s, extra_args, env, log)
            if server.poll() is None or not answered:
                break
        if server is None or server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the app exited at start: {log.read()[-2000:]}")
        yield url
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()


def connect(url: str, count: int) -> list[Any]:
    """`count` gradio_client connections, made before any timing.

    `ssl_verify=False`: gradio_client opens a new httpx client for every call and every file it
    downloads, and with verification on each one loads the CA bundle (~20-40 ms of CPU under the
    bench's GIL): for a plain-http app on 127.0.0.1 that measured the client, not the app."""
    from gradio_client import Client

    return [Client(url, verbose=False, ssl_verify=False, httpx_kwargs={"timeout": 300}) for _ in range(count)]


def text_request(client: Any, model: str, tokens: int, seed: int, top_k: int = 40) -> dict[str, float]:
    """One streamed /text_generate call: tokens made, seconds, client-side time to first token."""
    started = time.perf_counter()
    job = client.submit(model, PROMPT, tokens, 0.8, top_k, 1.0, 1.0, seed, False, api_name="/text_generate")
    first = None
    for update in job:
        if first is None and update and update[0]:
            first = time.perf_counter() - started
    seconds = time.perf_counter() - started
    final = job.outputs()[-1] if job.outputs() else None
    if final is None:
        raise RuntimeError(f"/text_generate returned nothing: {job.exception()!r}")
    match = _TOKENS.search(final[1] or "")
    if match is None:
        raise RuntimeError(f"unexpected stats line: {final[1]!r}")
    server = _SERVER_TTFT.search(final[1])
    return {"text": final[0], "tokens": float(match.group(1)), "seconds": seconds, "ttft": first if first is not None else seconds,
            "server_ttft": float(server.group(1)) if server else float("nan")}


def digits_request(client: Any, gan: str, count: int, seed: int) -> dict[str, float]:
    started = time.perf_counter()
    client.predict([], count, seed, 1.0, gan, api_name="/digits_grid")
    return {"seconds": time.perf_counter() - started}


def at_once(calls: list[Callable[[], dict[str, float]]]) -> tuple[float, list[dict[str, float]]]:
    """Run the calls in threads at the same time; wall seconds and each call's figures."""
    results: list[Any] = [None] * len(calls)

    def work(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as err:  # noqa: BLE001 - raised after the join
            results[i] = err

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed: {errors[0]!r}")
    return wall, results


def text_rows(conns: list[Any], model: str, tokens: int, rounds: int) -> list[dict[str, Any]]:
    """Tokens/s and time to first token: 1 client, then all `conns` at once, `rounds` times."""
    clients = len(conns)
    # Warm: the model loaded, and every client's session made. Gradio builds a visitor's session
    # state on their first request (a copy of every component's config: 0.1-0.3 s of server CPU
    # here), which is a one-time cost per visitor, not the streaming this measures.
    text_request(conns[0], model, 8, 0)
    at_once([lambda i=i: text_request(conns[i], model, 8, 0) for i in range(clients)])
    one_rate, one_ttft, many_rate, many_ttft, one_server, many_server = [], [], [], [], [], []
    for r in range(rounds):
        alone = text_request(conns[0], model, tokens, 1000 + r)
        one_rate.append(alone["tokens"] / alone["seconds"])
        one_ttft.append(alone["ttft"])
        one_server.append(alone["server_ttft"])
        wall, results = at_once([lambda i=i: text_request(conns[i], model, tokens, 2000 + 100 * r + i)
                                 for i in range(clients)])
        many_rate.append(sum(x["tokens"] for x in results) / wall)
        many_ttft.append(median([x["ttft"] for x in results]))
        many_server.append(median([x["server_ttft"] for x in results]))
    name = model
    rate1, rate_n = median(one_rate), median(many_rate)
    ttft1, ttft_n = median(one_ttft), median(many_ttft)
    return [
        {"what": f"text {name}: 1 client, {tokens} tokens", "per_s": rate1, "ttft_s": ttft1, "ratio": 1.0},
        {"what": f"text {name}: {clients} clients at once (target >= 4x)", "per_s": rate_n, "ttft_s": ttft_n,
         "ratio": rate_n / rate1},
        {"what": f"text {name}: time to first token, {clients} clients / 1 (target <= 2x)", "per_s": float("nan"),
         "ttft_s": ttft_n, "ratio": ttft_n / ttft1},
        {"what": f"text {name}: same, measured in the service (from its call to the first token)",
         "per_s": float("nan"), "ttft_s": median(many_server),
         "ratio": _ratio(median(many_server), median(one_server))},
    ]


def soak_rows(conns: list[Any], model: str, gan: str, seconds: float, tokens: int = 40) -> list[dict[str, Any]]:
    """Every connection at once for `seconds`, mixing text streams (4 seeds) and digit grids: the
    failures, and the streams whose text is not the one their seed gave alone (a mixed-up stream)."""
    seeds = range(4)
    alone = {seed: text_request(conns[0], model, tokens, seed)["text"] for seed in seeds}
    counts = {"text": 0, "digits": 0, "failed": 0, "mixed_up": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    errors: list[str] = []

    def client(i: int) -> dict[str, float]:
        k = 0
        while time.monotonic() < deadline:
            kind = "digits" if (i + k) % 3 == 0 else "text"
            try:
                if kind == "digits":
                    digits_request(conns[i], gan, 16, i * 1000 + k)
                    wrong = False
                else:
                    seed = (i + k) % len(seeds)
                    wrong = text_request(conns[i], model, tokens, seed)["text"] != alone[seed]
                with lock:
                    counts[kind] += 1
                    counts["mixed_up"] += wrong
            except Exception as err:  # noqa: BLE001 - counted, the first few kept
                with lock:
                    counts["failed"] += 1
                    errors.append(repr(err)[:200])
            k += 1
        return {}

    wall, _ = at_once([lambda i=i: client(i) for i in range(len(conns))])
    for error in errors[:3]:
        print(f"soak failure: {error}", file=sys.stderr)
    return [{"what": f"soak: {len(conns)} mixed clients for {wall:.0f} s: {counts['text']} text streams, "
                     f"{counts['digits']} digit grids; failures {counts['failed']}, mixed-up streams "
                     f"{counts['mixed_up']} (targets 0 and 0)", "per_s": (counts["text"] + counts["digits"]) / wall,
             "ttft_s": float("nan"), "ratio": float(counts["failed"] + counts["mixed_up"])}]


def _ratio(a: float, b: float) -> float:
    """a / b; NaN when b is 0 (the stats line gives times to 0.01 s: a tiny model's first token reads 0.00)."""
    return a / b if b else float("nan")


def model_floor_rows(weights: Path, model: str, clients: int, rounds: int = 5) -> list[dict[str, Any]]:
    """The model's own ceilings under the two text ratios, in this process (no app), interleaved,
    median of `rounds`: the forward pass over the bench's prompt for `clients` rows against one
    row (every visitor's prompt goes through it before their first token), and one decoding step
    (one new token per row, a cache of 100 tokens or the model's window less one) for `clients`
    rows against one row (the app's tokens/s ratio cannot pass `clients` / that ratio)."""
    import torch

    from aigc_demo.services import textgen

    folder = weights / model
    if not folder.is_dir():
        return []
    lm, tokenizer = textgen.load_causal_lm(str(folder), device="cpu")
    ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    length = min(100, context_window(lm.config) - 1)  # a tiny test model's window may be shorter
    context = torch.randint(0, lm.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(0))

    def prefill(batch: int) -> float:
        started = time.perf_counter()
        lm(input_ids=ids.repeat(batch, 1), use_cache=True)
        return time.perf_counter() - started

    caches = {}

    def step(batch: int) -> float:
        if batch not in caches:
            caches[batch] = lm(input_ids=context.repeat(batch, 1), use_cache=True).cache
        cache = caches[batch]
        started = time.perf_counter()
        lm(input_ids=context[:, -1:].repeat(batch, 1), cache=cache, use_cache=True,
           position_ids=torch.full((batch, 1), context.shape[1]))
        seconds = time.perf_counter() - started
        cache.crop(-1)  # the next step sees the same cache
        return seconds

    rows = []
    with torch.inference_mode():
        for what, ratio, run in (("prompt forward pass", "first-token", prefill),
                                 ("decoding step", "tokens/s", step)):
            run(1), run(clients)  # warm
            one, many = [], []
            for _ in range(rounds):
                one.append(run(1))
                many.append(run(clients))
            rows.append({"what": f"text {model}: {what}, {clients} rows / 1 row (model only: a floor under "
                                 f"the {ratio} ratio)",
                         "per_s": float("nan"), "ttft_s": median(many), "ratio": median(many) / median(one)})
    return rows


def digits_rows(conns: list[Any], gan: str, requests: int, count: int, rounds: int,
                server: int | None = None) -> list[dict[str, Any]]:
    """Grids per second: 1 client making `requests` requests in a row, then all `conns` at once;
    with the app's pid (`server`), its CPU milliseconds per request in each case."""
    clients = len(conns)
    if requests % clients:
        raise ValueError(f"requests ({requests}) must be a multiple of clients ({clients})")
    at_once([lambda i=i: digits_request(conns[i], gan, count, 0) for i in range(clients)])  # warm (see text_rows)
    one, many, cpu_one, cpu_many = [], [], [], []
    for r in range(rounds):
        cpu, started = cpu_seconds(server), time.perf_counter()
        for i in range(requests):
            digits_request(conns[0], gan, count, 1 + i + r * requests)
        one.append(requests / (time.perf_counter() - started))
        cpu_one.append((cpu_seconds(server) - cpu) / requests * 1e3)
        cpu = cpu_seconds(server)
        per = requests // clients

        def client_calls(i: int) -> dict[str, float]:
            for k in range(per):
                digits_request(conns[i], gan, count, 10_000 + r * requests + i * per + k)
            return {}

        wall, _ = at_once([lambda i=i: client_calls(i) for i in range(clients)])
        many.append(requests / wall)
        cpu_many.append((cpu_seconds(server) - cpu) / requests * 1e3)
    rate1, rate_n = median(one), median(many)
    return [
        {"what": f"digits {count}-digit grid: 1 client, {requests} in a row", "per_s": rate1,
         "ttft_s": float("nan"), "ratio": 1.0, "server_cpu_ms": median(cpu_one)},
        {"what": f"digits: {clients} clients at once, {requests} in all (target >= 2x)", "per_s": rate_n,
         "ttft_s": float("nan"), "ratio": rate_n / rate1, "server_cpu_ms": median(cpu_many)},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench concurrency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(WEIGHTS), help="weights folder the app serves")
    parser.add_argument("--text-models", default="gpt-shakespeare",
                        help="comma-separated model ids the app lists (a shipped model's name, a hub id, ...)")
    parser.add_argument("--gan", default=GAN.name, help="GAN id for the digits rows (a shipped model's name)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per text request")
    parser.add_argument("--grid", type=int, default=64, help="digits per grid request")
    parser.add_argument("--requests", type=int, default=16, help="digit requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--skip", default="", help="comma-separated: text, digits")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--soak", type=float, default=0.0,
                        help="seconds of the soak (mixed text and digits clients at once, --soak-clients); 0: none")
    parser.add_argument("--soak-clients", type=int, default=16)
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    weights = Path(args.weights)
    models = [m for m in args.text_models.split(",") if m]
    gan = args.gan
    rows: list[dict[str, Any]] = []
    with served_app(weights, args.device) as url:
        conns = connect(url, args.clients)
        if "text" not in skip:
            for model in models:
                rows += text_rows(conns, model, args.tokens, args.rounds)
                rows += model_floor_rows(weights, model, args.clients)
        if "digits" not in skip:
            rows += digits_rows(conns, gan, args.requests, args.grid, args.rounds, served_pid(url))
        if args.soak > 0:
            rows += soak_rows(conns + connect(url, max(args.soak_clients - len(conns), 0)), models[0], gan, args.soak)
    print_table(f"1 vs {args.clients} clients through the app's API (app in its own process, "
                f"median of {args.rounds} interleaved rounds)", rows)
    return 0
