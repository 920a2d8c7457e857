"""Training benchmark: `python -m aigc_demo bench train [--steps N] [--models gan,vae,gpt]`.

For each shipped model (DCGAN, VAE 32-D, char GPT) it times, in this one process, on the same
loaded weights and the same data tensor:
- **app**: the Fine-tune tab's path: the family's fine-tune TrainTask inside `run_training`
  (Accelerate, per-step loss reads, NaN checks, progress events every `log_every` steps), with
  every event turned into the job's plain dict and put on a multiprocessing queue that a
  thread drains, as the job process does for the app;
- **bare**: a hand-written loop over the same model, data and optimizer: forward, loss,
  backward, step, nothing else.
The ratio app/bare of steps per second is the overhead figure (target >= 0.9). The loops run
interleaved step by step (see Interleaved) and rates come from median step times after
`--warmup` steps, so other processes on a shared CPU weigh on both sides alike; the GPT's
validation estimate (one batch every 10 steps in the app, about 3%) falls outside the median.

For the char GPT, tokens/s is also compared with **nanoGPT's loop**: nanoGPT's model.py
(Karpathy, MIT: its GPT class, written out in bench/nanogpt.py with its init and weight tying) trained by its
train.py inner loop (random windows, AdamW with its decay groups, grad clip 1.0) at the same
config: layers, heads, width, context, batch, vocabulary, dropout 0.2 (the shipped model's), float32 on CPU.

Both HF loops (app and bare) run GPT-2 with PyTorch's fused tanh GELU and fused AdamW (see
GPTTask.build); nanoGPT's side keeps its train.py choices (AdamW fused on CUDA only).

The job process's start-up (process, imports, model load: paid once per job) is measured with two
real jobs in a row through the FinetuneManager, as the app starts them and spawned, and reported apart;
then two char-GPT jobs, to their first step's progress event (target <= 3 s). gradio is never
imported. The default run takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aigc_demo.bench.common import print_table
from aigc_demo.models import tokenizers as toks
from aigc_demo.models.gpt import use_fused_gelu
from aigc_demo.services.job_config import FinetuneConfig
from aigc_demo.services.jobs import FinetuneManager
from aigc_demo.services.finetune import PreparedData
from aigc_demo.services.finetune_data import ImageSet
from aigc_demo.settings import PROJECT_ROOT
from aigc_demo.training.engine import run_training
from aigc_demo.training.finetune import FinetuneSettings, JobRequest, build_task, default_settings, event_dict

WEIGHTS = PROJECT_ROOT / "weights"
MODELS = {"gan": "dcgan-mnist", "vae": "vae-mnist-32d", "gpt": "gpt-shakespeare"}


# ---------------------------------------------------------------- data made here (no downloads)

def digits_npz(folder: Path, count: int = 2048) -> Path:
    """Random MNIST-shaped images and labels: throughput does not depend on what they show."""
    rng = np.random.default_rng(0)
    path = folder / "images.npz"
    np.savez(path, images=rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
             labels=rng.integers(0, 10, count).astype(np.int64))
    return path


def text_file(folder: Path, tokenizer: Any, chars: int = 200_000) -> Path:
    """Text drawn from the tokenizer's own characters (every character is in the vocabulary)."""
    vocab = [c for c in tokenizer.get_vocab() if len(c) == 1]
    rng = np.random.default_rng(0)
    path = folder / "text.txt"
    path.write_text("".join(rng.choice(vocab, chars)), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the app's path, interleaved

class Interleaved:
    """Wraps the app's task: before each of its steps, runs one step of each bare loop and times it.

    The app's step time is the time from the end of one `train_step` call to the end of the next,
    minus the bare steps run inside: it holds the engine's work between calls (loss checks, CSV,
    progress events put on the job queue) and the task's own step. Interleaving step by step puts
    both sides under the same load from other processes on a shared machine.
    """

    def __init__(self, task: Any, bare: dict[str, Callable[[], None]], sync: Callable[[], None]) -> None:
        self.task, self.bare, self.sync = task, bare, sync
        self.times: dict[str, list[float]] = {"app": [], **{name: [] for name in bare}}
        self.last_end: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def train_step(self, step: int) -> dict[str, float]:
        inside = 0.0
        for name, bare_step in self.bare.items():
            started = time.perf_counter()
            bare_step()
            self.sync()
            took = time.perf_counter() - started
            self.times[name].append(took)
            inside += took
        losses = self.task.train_step(step)
        self.sync()
        end = time.perf_counter()
        if self.last_end is not None:
            self.times["app"].append(end - self.last_end - inside)
        self.last_end = end
        return losses


def run_interleaved(request: Any, bare: dict[str, Callable[[], None]], warmup: int,
                    sync: Callable[[], None]) -> tuple[dict[str, float], float, str]:
    """Median steps/s of the app and of each bare loop, the app's items per step, and its device."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    events, stop = ctx.Queue(), ctx.Event()
    received: list[dict[str, Any]] = []
    done = threading.Event()

    def drain() -> None:  # what the manager's monitor thread does
        while not done.is_set() or not events.empty():
            try:
                received.append(events.get(timeout=0.05))
            except queue.Empty:
                continue

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    task, settings = build_task(request)
    task.export = lambda out_dir, result: None  # writing the model card is not part of the step rate
    wrapped = Interleaved(task, bare, sync)
    run_training(wrapped, settings, callback=lambda e: events.put(event_dict(e)), stop=stop)
    done.set()
    reader.join()
    rates = {name: 1.0 / statistics.median(times[warmup:]) for name, times in wrapped.times.items()}
    device = next(e["device"] for e in received if e["type"] == "progress")
    return rates, task.items_per_step, device


# ---------------------------------------------------------------- bare loops

def bare_gan(folder: Path, data: Any, batch: int, lr: float, device: Any) -> Callable[[], None]:
    import torch

    from aigc_demo.models.gan import Discriminator, Generator
    from aigc_demo.training.losses import d_loss_nsgan, g_loss_nsgan

    G = Generator.from_pretrained(str(folder)).float().to(device).train()
    D = Discriminator.from_pretrained(str(folder / "discriminator")).float().to(device).train()
    opt_g = torch.optim.AdamW(G.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=0.0)
    opt_d = torch.optim.AdamW(D.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=0.0)
    images, labels = data

    def step() -> None:
        index = torch.randint(0, len(images), (batch,), device=device)
        real, y = images[index].float().div(255) * 2 - 1, labels[index]
        fake = G(torch.randn(batch, G.z_dim, device=device), y)
        scores = D(torch.cat([real, fake.detach()]), torch.cat([y, y]))
        d_loss = d_loss_nsgan(scores[:batch], scores[batch:])
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = g_loss_nsgan(D(fake, y))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return step


def bare_vae(folder: Path, data: Any, batch: int, lr: float, device: Any) -> Callable[[], None]:
    import torch

    from aigc_demo.models.vae import VAE, vae_kl
    from aigc_demo.training.losses import vae_recon_loss

    model = VAE.from_pretrained(str(folder)).float().to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    images = data[0]

    def step() -> None:
        index = torch.randint(0, len(images), (batch,), device=device)
        x = torch.bernoulli(images[index].float().div(255))
        logits, mean, logvar = model(x)
        loss = vae_recon_loss(logits, x) + vae_kl(mean, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _windows(data: Any, batch: int, block: int) -> tuple[Any, Any]:
    import torch

    starts = torch.randint(len(data) - block - 1, (batch, 1), device=data.device)
    chunk = data[starts + torch.arange(block + 1, device=data.device)]  # (B, T+1)
    return chunk[:, :-1], chunk[:, 1:]


def bare_hf_gpt(folder: Path, ids: Any, batch: int, block: int, lr: float, device: Any) -> Callable[[], None]:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="sdpa")
    for module in model.modules():  # the app keeps the shipped dropout (0.2): the same work here
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.2
    use_fused_gelu(model)  # the app's GPTTask does both: the same model work on both sides
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1,
                            fused=device.type in ("cpu", "cuda"))

    def step() -> None:
        x, y = _windows(ids, batch, block)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def bare_nanogpt(cfg: dict[str, int], ids: Any, batch: int, block: int, lr: float, device: Any) -> Callable[[], None]:
    import torch

    from aigc_demo.bench.nanogpt import GPT, NanoGPTConfig

    model = GPT(NanoGPTConfig(cfg["n_layer"], cfg["n_head"], cfg["n_embd"], block, cfg["vocab_size"], 0.2)).to(device)
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.99), fused=device.type == "cuda" or None)  # its configure_optimizers

    def step() -> None:  # nanoGPT train.py's inner loop (no grad accumulation, float32)
        x, y = _windows(ids, batch, block)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


# ---------------------------------------------------------------- one model

def bench_model(family: str, steps: int, warmup: int, device_name: str, workdir: Path) -> list[dict[str, Any]]:
    import torch
    from transformers import AutoConfig, AutoTokenizer

    folder = WEIGHTS / MODELS[family]
    device = torch.device(device_name)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    settings = default_settings(family)
    settings.steps, settings.log_every, settings.sample_every = warmup + steps + 1, 1, 0
    torch.manual_seed(0)
    bare: dict[str, Callable[[], None]] = {}
    if family in ("gan", "vae"):
        npz = digits_npz(workdir)
        data_spec = {"kind": "images", "path": str(npz)}
        with np.load(npz) as stored:
            data = (torch.from_numpy(stored["images"]).unsqueeze(1).to(device),
                    torch.from_numpy(stored["labels"]).to(device))
        make = bare_gan if family == "gan" else bare_vae
        bare["bare"] = make(folder, data, settings.batch_size, settings.lr, device)
        unit = "samples/s"
    else:

        tok = AutoTokenizer.from_pretrained(folder)
        path = text_file(workdir, tok)
        data_spec = {"kind": "text", "path": str(path)}
        ids = torch.tensor(toks.encode(tok, path.read_text(encoding="utf-8")), device=device)
        block = settings.block_size
        bare["bare"] = bare_hf_gpt(folder, ids, settings.batch_size, block, settings.lr, device)
        cfg = AutoConfig.from_pretrained(folder).to_dict()
        bare["nanoGPT"] = bare_nanogpt(cfg, ids, settings.batch_size, block, settings.lr, device)
        unit = "tokens/s"
    request = JobRequest(job_id="bench", family=family, base=str(folder), base_title=MODELS[family], data=data_spec,
                         data_summary="benchmark data", settings=settings, out_dir=str(workdir / f"out-{family}"),
                         cpu=device.type == "cpu")
    rates, items, used = run_interleaved(request, bare, warmup, sync)
    app, base = rates["app"], rates["bare"]
    nano = rates.get("nanoGPT")
    return [{"model": MODELS[family], "device": used, "batch": settings.batch_size, "unit": unit,
             "app steps/s": app, "bare steps/s": base, "app items/s": app * items, "bare items/s": base * items,
             "app/bare": app / base, "nanoGPT items/s": nano * items if nano else "-",
             "app/nanoGPT": app / nano if nano else "-"}]


def job_startup(workdir: Path, context: Any = None, jobs: int = 2, family: str = "vae") -> list[float]:
    """Seconds from `start()` to the first progress event of `jobs` real jobs in a row (process
    start, imports, model and data load, the first step), with the app's way of starting job
    processes or `context`; `family`: the VAE (images) or the char GPT (text, its first step)."""
    manager = FinetuneManager(FinetuneConfig(runs_dir=str(workdir / "runs"), user_models_dir=str(workdir / "user")),
                              context=context)
    rng = np.random.default_rng(0)
    times = []
    for i in range(jobs):
        session = f"bench{i:02d}" + "0" * 24  # one visitor per job: each may hold one job
        if family == "gpt":
            vocab = [c for c in "\n !',.:;?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]
            data = PreparedData("text", "bench", text="".join(rng.choice(vocab, 20_000)))
            settings = FinetuneSettings(steps=3, batch_size=4, block_size=64, log_every=1, sample_every=0)
        else:
            images = ImageSet(rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), np.zeros(64, np.int64), "bench")
            data = PreparedData("images", "bench", images=images)
            settings = FinetuneSettings(steps=3, batch_size=8, log_every=1, sample_every=0)
        started = time.perf_counter()
        job = manager.start(session, str(WEIGHTS / MODELS[family]), data, settings, client=f"bench{i}")
        manager.wait(session, job, 300, until=("running", "done", "failed"))
        times.append(time.perf_counter() - started)
        manager.wait(session, job, 300)
    manager.shutdown()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=0, help="timed steps per path (default: 12 GAN/VAE, 6 GPT on CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of the rates (default 2)")
    parser.add_argument("--models", default="gan,vae,gpt", help="comma-separated: gan, vae, gpt")
    parser.add_argument("--skip-startup", action="store_true", help="do not time a real job's start-up")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (default: what the app gives a job, cores - 1; more threads than free "
                             "cores slows small models down several times)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads or FinetuneConfig.from_settings().threads())
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no CUDA"))
    with tempfile.TemporaryDirectory(prefix="aigc-bench-train-") as tmp:
        for device in devices:
            rows = []
            for family in [m.strip() for m in args.models.split(",") if m.strip()]:
                if family not in MODELS:
                    parser.error(f"unknown model {family!r}: choose from {', '.join(MODELS)}")
                steps = args.steps or ((6 if family == "gpt" else 12) if device == "cpu" else 50)
                workdir = Path(tmp) / f"{device}-{family}"
                workdir.mkdir()
                began = time.perf_counter()
                rows += bench_model(family, steps, args.warmup, device, workdir)
                print(f"{device} {family}: {time.perf_counter() - began:.0f} s", flush=True)
            print_table(f"{device.upper()}: fine-tune steps through the app (engine + job events) vs a bare loop "
                        "on the same model and data (target app/bare >= 0.9)", rows)
        print("\nGPT: 'bare' is the same HF GPT2LMHeadModel in a hand loop; 'nanoGPT' is nanoGPT's own model "
              "and train-loop body at the same config (layers, heads, width, context, batch, vocab, dropout "
              "0.2, float32, AdamW with decay groups, grad clip 1.0): app/nanoGPT >= 1 means the app's training "
              "is at least as fast as nanoGPT's.")
        if not args.skip_startup:
            served = job_startup(Path(tmp) / "served")  # the app's way: forked from a preloaded server
            spawned = job_startup(Path(tmp) / "spawned", mp.get_context("spawn"))
            print("\nJob start-up, start() to the first progress event (process, imports, model and data load), "
                  "two jobs in a row:")
            print(f"  app (forked from a server that imported torch & co once): first {served[0]:.2f} s "
                  f"(starts the server), next {served[1]:.2f} s")
            print(f"  spawned process each time (the old way): {spawned[0]:.2f} s, {spawned[1]:.2f} s; "
                  f"next job app/spawn = {served[1] / spawned[1]:.2f}")
            gpt = job_startup(Path(tmp) / "gpt", family="gpt")
            print(f"  char GPT job, to its first step's progress event (target <= 3 s): first {gpt[0]:.2f} s "
                  f"(starts the server), next {gpt[1]:.2f} s")
    return 0
