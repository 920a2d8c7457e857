"""Digits benchmark: model-time latency of the shipped GAN / VAE / classifier, and what Gradio
batching buys when many people press Generate at once.

Latency (CPU, and CUDA when present), median of N after warm-up: a 64-digit grid (target
< 50 ms), one digit, a VAE reconstruction (encode + decode one digit) and the classifier on one
digit. Model time is the forward pass plus the copy back as uint8, not the PNG the page gets.

Throughput: the app is launched in this process on a free port and 8 gradio_client clients
call /digits_grid at once (each its own connection, its own seeds); the baseline is 1 client
making the same number of requests one after the other. The ratio is the figure to watch
(target >= 3x): Gradio's batching (`batch=True`, up to 8 requests per forward pass) and the
queue's concurrency are what make it more than 1x.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aigc_demo.bench.common import median, print_table
from aigc_demo.environment import set_quiet_defaults
from aigc_demo.services import digits_grid as svc
from aigc_demo.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"
GAN, VAE, CLASSIFIER = WEIGHTS / "dcgan-mnist", WEIGHTS / "vae-mnist-2d", WEIGHTS / "mnist-classifier"
GRID = 64


def _timed_median(fn: Callable[[], Any], runs: int, warmup: int, sync: Callable[[], None]) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return median(times)


def model_latency(device: str, gan: str | Path = GAN, vae: str | Path = VAE,
                  classifier: str | Path = CLASSIFIER, runs: int = 30, warmup: int = 5) -> list[dict[str, Any]]:
    """Median milliseconds of each model call on `device` (models loaded once, outside the timing)."""
    import numpy as np
    import torch

    from aigc_demo.models.digits_io import (
        generate,
        load_classifier,
        load_generator,
        load_vae,
        noise,
    )

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    G, V, C = load_generator(gan, dev), load_vae(vae, dev), load_classifier(classifier, dev)
    labels = np.arange(GRID) % 10

    def grid() -> Any:
        return generate(G, labels, noise(GRID, G.z_dim, 0), batch_size=4096)

    fast = copy.deepcopy(G).to(memory_format=torch.channels_last)  # a candidate for the loader

    def grid_channels_last() -> Any:
        return generate(fast, labels, noise(GRID, G.z_dim, 0), batch_size=4096)

    def single() -> Any:
        return generate(G, labels[:1], noise(1, G.z_dim, 1))

    digit = torch.from_numpy(single()).float().div(255).view(1, 1, 28, 28)  # a GAN digit to read back

    def reconstruct() -> Any:
        with torch.no_grad():
            mean, _ = V.encode(digit.to(dev))
            return (torch.sigmoid(V.decode(mean).float()) * 255).round().to(torch.uint8).cpu()

    def classify() -> Any:
        with torch.no_grad():
            return torch.softmax(C(digit.to(dev)).float(), 1).cpu()

    ms = {name: _timed_median(fn, runs, warmup, sync) * 1e3
          for name, fn in (("grid", grid), ("grid_cl", grid_channels_last), ("single", single), ("recon", reconstruct), ("classify", classify))}
    return [
        {"device": device, "what": f"GAN, {GRID}-digit grid (target < 50 ms)", "ms": ms["grid"],
         "per_digit_ms": ms["grid"] / GRID},
        {"device": device, "what": f"  same, model in channels-last memory format (speedup {ms['grid'] / ms['grid_cl']:.2f}x)",
         "ms": ms["grid_cl"], "per_digit_ms": ms["grid_cl"] / GRID},
        {"device": device, "what": "GAN, one digit", "ms": ms["single"], "per_digit_ms": ms["single"]},
        {"device": device, "what": f"VAE reconstruction, one digit ({Path(vae).name})", "ms": ms["recon"],
         "per_digit_ms": ms["recon"]},
        {"device": device, "what": "classifier, one digit", "ms": ms["classify"], "per_digit_ms": ms["classify"]},
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def launched_app(weights_dir: str | Path = WEIGHTS, device: str = "auto") -> Iterator[str]:
    """The whole app, launched in this process on 127.0.0.1 and a free port; yields its URL."""
    set_quiet_defaults()
    from aigc_demo.ui.launch import create, launch_kwargs

    settings = ServeSettings(host="127.0.0.1", port=_free_port(), device=device, weights_dir=str(weights_dir))
    demo = create(settings)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(settings))
    try:
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        demo.close()


@contextlib.contextmanager
def batch_sizes() -> Iterator[list[int]]:
    """Records how many requests each call of the grid service got (Gradio's batches), in-process."""
    sizes: list[int] = []
    original = svc.generate_grid_batched

    def counted(digits: list, *args: Any, **kwargs: Any) -> list[Any]:
        sizes.append(len(digits))
        return original(digits, *args, **kwargs)

    svc.generate_grid_batched = counted  # the tab calls it through the module attribute
    try:
        yield sizes
    finally:
        svc.generate_grid_batched = original


def app_throughput(url: str, gan: str | Path = GAN, clients: int = 8, requests: int = 32,
                   count: int = GRID) -> list[dict[str, Any]]:
    """Grids per second through /digits_grid: `clients` clients at once against 1 client in a row.

    Both make `requests` requests in all (different seeds), after one warm-up request each.
    """
    from gradio_client import Client

    if requests % clients:
        raise ValueError(f"requests ({requests}) must be a multiple of clients ({clients})")
    conns = [Client(url, verbose=False, ssl_verify=False) for _ in range(clients)]  # see concurrency.connect

    def ask(client: Any, seed: int) -> None:
        client.predict([], count, seed, 1.0, Path(gan).name, api_name="/digits_grid")  # the app lists ids

    for client in conns:
        ask(client, 0)  # warm: model loaded, connection open
    with batch_sizes() as one_by_one:
        started = time.perf_counter()
        for seed in range(requests):
            ask(conns[0], 1 + seed)
        sequential = time.perf_counter() - started

    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for seed in range(index, requests, clients):
                ask(conns[index], 1 + seed)
        except BaseException as err:  # noqa: BLE001 - reported after the join
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    with batch_sizes() as batched:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        concurrent = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} concurrent request(s) failed: {errors[0]!r}")
    return [
        {"what": f"1 client, {requests} requests in a row ({count}-digit grids)",
         "grids_per_s": requests / sequential, "ms_per_request": sequential / requests * 1e3,
         "mean_batch": len(one_by_one) and sum(one_by_one) / len(one_by_one), "ratio": 1.0},
        {"what": f"{clients} clients at once, {requests} requests in all (target >= 3x)",
         "grids_per_s": requests / concurrent, "ms_per_request": concurrent / requests * 1e3,
         "mean_batch": len(batched) and sum(batched) / len(batched), "ratio": sequential / concurrent},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench digits", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each model call, median reported")
    parser.add_argument("--clients", type=int, default=8, help="clients asking at once (default 8)")
    parser.add_argument("--requests", type=int, default=32, help="grid requests in each throughput run")
    parser.add_argument("--weights", default=str(WEIGHTS), help="weights folder with the three models")
    parser.add_argument("--device", default="auto", help="device the launched app uses (auto, cpu, cuda)")
    parser.add_argument("--skip-app", action="store_true", help="only the model latencies")
    args = parser.parse_args(argv)
    import torch

    weights = Path(args.weights)
    folders = {"gan": weights / GAN.name, "vae": weights / VAE.name, "classifier": weights / CLASSIFIER.name}
    missing = [str(f) for f in folders.values() if not (f / "model.safetensors").is_file()]
    if missing:
        parser.error(f"weights missing: {', '.join(missing)}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [row for device in devices for row in model_latency(device, runs=args.runs, **folders)]
    print_table(f"Digits model time, median of {args.runs} after warm-up (torch threads: "
                f"{torch.get_num_threads()})", rows)
    if not torch.cuda.is_available():
        print("No CUDA GPU: CUDA latencies skipped.")
    if not args.skip_app:
        with launched_app(weights, args.device) as url:
            rows = app_throughput(url, folders["gan"], args.clients, args.requests)
        print_table(f"Through the app (/digits_grid, Gradio batching, device {args.device})", rows)
    return 0
