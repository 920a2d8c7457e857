"""A Lab's job process: 2-3 runs of one family trained round-robin, step by step, in one process.

Why one process, in lock-step: every run starts from the same weights (each is built right after
`set_seed(seed)`), sees the same batch at step k (one shared index schedule drawn from the data
seed; GPT windows from a generator reseeded per step), and the same noise at step k (the global
RNG and each task's own generator are reseeded per step), so the only difference between the runs
is the setting the visitor chose. Run A takes step k, then B, then C, then step k+1: no run gets
ahead, and each gets the same share of the CPU.

What it reports (one JSON line each, services/job_events.py): per run and step its training
losses; every `eval_every` steps (and at step 0) the family's measured metric on every run (GPT:
validation loss on fixed held-out windows; VAE: ELBO on held-out test digits; GAN and diffusion:
how often the shipped classifier reads the digit each run was asked to draw); every
`sample_every` steps a sample grid (or text) per run. A run whose loss becomes NaN stops there and
says so; the others go on. At the end each run is exported as a model folder (`run-<i>/`) that the
visitor can save as `yours/<name>`.
"""

from __future__ import annotations

import math
import time
import zlib
from pathlib import Path
from typing import Any

import torch

from aigc_demo.data.idx import DigitsData
from aigc_demo.training.engine import ProgressEvent, TrainResult, TrainSettings
from aigc_demo.training.finetune_request import JobRequest, event_dict
from aigc_demo.training.finetune_card import FinetuneOrigin
from aigc_demo.training.lab_spec import LabSpec, MAIN_LOSS, METRICS

METRIC_SAMPLES = {"gan": 10, "diffusion": 5}  # per digit, for the classifier's accuracy
VAE_HELD_OUT = 500
GPT_VAL_BATCHES = 4
DIFFUSION_GUIDANCE = 2.0  # how a guidance-trained run samples (a guidance-free one cannot: 1.0)


def mix(seed: int, step: int, salt: int = 0) -> int:
    """A seed for step `step` of a lab seeded `seed` (the same for every run)."""
    return (int(seed) * 1_000_003 + int(step) * 7_919 + salt) % (2**63 - 1)


class LockstepBatches:
    """One run's view of the lab's shared batch schedule: at step k every run gets the same
    indices (drawn from the data seed), whatever else it draws from its own generator."""

    def __init__(self, data: DigitsData, seed: int) -> None:
        self.data, self.seed, self.step = data, seed, 0
        self.seen: list[int] = []  # a fingerprint of each batch handed out (tests compare runs)

    def __getattr__(self, name: str) -> Any:  # images, labels, len: the shared data's
        return getattr(self.data, name)

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, batch_size: int, generator: Any = None) -> tuple[Any, Any]:
        gen = torch.Generator().manual_seed(mix(self.seed, self.step, salt=17))
        index = torch.randint(0, len(self.data), (batch_size,), generator=gen).to(self.data.images.device)
        self.seen.append(zlib.crc32(index.cpu().numpy().tobytes()))
        return self.data.images[index].float().div_(255.0), self.data.labels[index]


def _lab_settings(spec: LabSpec, run: dict[str, Any], out_dir: Path, cpu: bool) -> TrainSettings:
    s = run["settings"]
    return TrainSettings(steps=spec.steps, batch_size=spec.batch(), lr=float(s["lr"]), optimizer=s["optimizer"],
                         seed=spec.seed, out_dir=str(out_dir), log_every=spec.log_every, sample_every=0,
                         checkpoint_every=0, cpu=cpu, progress_bar=False)


def make_task(spec: LabSpec, run: dict[str, Any], paths: dict[str, Any], out_dir: Path, cpu: bool = True) -> Any:
    """The training task of one run: the family's own trainer on a small fresh model."""
    s, train = run["settings"], _lab_settings(spec, run, out_dir, cpu)
    origin = FinetuneOrigin(base=f"fresh weights (seed {spec.seed})", base_title=f"Lab run {run['label']}",
                            family=spec.family, data_summary=str(paths.get("summary", "")),
                            settings={"steps": spec.steps, "batch_size": spec.batch(), "seed": spec.seed, **s})
    if spec.family == "vae":
        from aigc_demo.training.vae import VaeConfig, VaeTask

        return VaeTask(VaeConfig(data_dir=paths["data_dir"], latent_dim=16, channels=16, hidden=128,
                                 kl_weight=float(s["kl_weight"]), recon=s["recon"], kl_warmup=0.0,
                                 lr_schedule="constant", warmup_steps=0, eval_limit=VAE_HELD_OUT), train, origin)
    if spec.family == "gan":
        from aigc_demo.training.gan import GanConfig, GanTask

        return GanTask(GanConfig(data_dir=paths["data_dir"], loss=s["loss"], latent_dim=32, g_channels=16,
                                 d_channels=16, embed_dim=16, n_critic=1, ema_decay=0.9, preview_side=6,
                                 bn_samples=500), train, origin)
    if spec.family == "diffusion":
        from aigc_demo.training.diffusion import DiffusionConfig
        from aigc_demo.training.finetune_diffusion import FinetuneDiffusionTask

        trained = s["guidance_training"] == "on"
        config = DiffusionConfig(data_dir=paths["data_dir"], channels="16,32", attention=False,
                                 null_label_prob=0.1 if trained else 0.0, prediction=s["prediction"],
                                 ema_decay=0.99, sampling_steps=5, guidance=DIFFUSION_GUIDANCE if trained else 1.0,
                                 lr_schedule="constant", warmup_steps=0)
        return FinetuneDiffusionTask(config, train, origin, preview_steps=5)
    from aigc_demo.training.gpt import GPTTask
    from aigc_demo.training.gpt_data import GPTSettings

    gpt = GPTSettings(data=paths["text"], config="shakespeare", name="lab", n_layer=2, n_head=2, n_embd=64,
                      block_size=64, dropout=0.0, warmup_steps=0, eval_every=10**9, eval_batches=1,
                      keep_best=False, export_dtype="float32", sample_tokens=80,
                      label_smoothing=float(s["label_smoothing"]))
    return GPTTask(gpt, train, origin)


class Run:
    """One run of the lab: its task, its batches, what it measured."""

    def __init__(self, index: int, label: str, task: Any) -> None:
        self.index, self.label, self.task = index, label, task
        self.feed: LockstepBatches | None = None
        self.seen: list[int] = []  # GPT: fingerprints of its training windows
        self.losses: dict[str, float] = {}
        self.diverged_at: int | None = None


def _share_batches(runs: list[Run], family: str, seed: int) -> None:
    """Give every run the same batches: digit runs share one index schedule; GPT runs record their
    windows (drawn from a generator the loop reseeds per step)."""
    if family != "gpt":
        data = runs[0].task.data
        for run in runs:
            run.feed = LockstepBatches(data, seed)
            run.task.data = run.feed
        return
    for run in runs:
        task, inner = run.task, run.task._batch
        task.seeded = True  # the loop seeds its generator, per step

        def batch(data: Any, size: int, task: Any = task, inner: Any = inner, seen: list[int] = run.seen) -> Any:
            x, y = inner(data, size)
            if data is task.train_data:
                seen.append(zlib.crc32(x.cpu().numpy().tobytes()))
            return x, y
        task._batch = batch


def _reseed(run: Run, seed: int, step: int) -> None:
    """The same random numbers for every run at step `step` (noise, dropout, GPT windows)."""
    torch.manual_seed(mix(seed, step, salt=1))
    for name in ("rng", "gen_rng", "generator"):
        gen = getattr(run.task, name, None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(mix(seed, step, salt=2))
    if run.feed is not None:
        run.feed.step = step


class Meter:
    """The family's metric, measured the same way on every run."""

    def __init__(self, family: str, paths: dict[str, Any], first: Any, device: Any) -> None:
        self.family, self.device = family, device
        if family == "vae":
            from aigc_demo.evaluation.nll import binarize_fixed

            held_out = DigitsData.load(paths["data_dir"], "test", "cpu", VAE_HELD_OUT)
            self.x = binarize_fixed(held_out.images).to(device)
        elif family == "gpt":
            gen = torch.Generator(device=first.val_data.device).manual_seed(1234)
            block, data = first.block, first.val_data
            starts = torch.randint(len(data) - block - 1, (GPT_VAL_BATCHES, first.batch, 1), device=data.device,
                                   generator=gen)
            self.windows = [data[s + first.offsets] for s in starts]
        else:
            from aigc_demo.models.classifier import DigitClassifier

            self.classifier = DigitClassifier.from_pretrained(paths["classifier"]).float().eval().to(device)
            per = METRIC_SAMPLES[family]
            self.labels = torch.arange(10).repeat(per)
            self.z_seed = 4321

    @torch.no_grad()
    def __call__(self, task: Any) -> float:
        if self.family == "vae":
            from aigc_demo.evaluation.nll import elbo_terms

            model = task.accelerator.unwrap_model(task.model)
            value = elbo_terms(model, self.x, seed=0)["elbo"]
            model.train()
            return value
        if self.family == "gpt":
            task.model.eval()
            value = sum(float(task._loss(w[:, :-1], w[:, 1:])) for w in self.windows) / len(self.windows)
            task.model.train()
            return value
        return self._accuracy(self._digits(task))

    def _digits(self, task: Any) -> Any:
        """Images in [0, 1] (N, 1, 28, 28) the run draws for `self.labels`."""
        labels = self.labels.to(self.device)
        if self.family == "gan":
            z = torch.randn(len(labels), task.config.latent_dim, generator=torch.Generator().manual_seed(self.z_seed))
            return (task.ema(z.to(self.device), labels).float().clamp(-1, 1) + 1) / 2
        from aigc_demo.models.diffusion import DigitDiffusion, initial_noise

        cfg = task.config
        model = DigitDiffusion(task._ema_unet(), dict(task.noise_scheduler.config), cfg.sampling_steps, cfg.guidance)
        images = model.sample(labels.cpu().numpy(), initial_noise(len(labels), self.z_seed))
        return torch.from_numpy(images).float().div(255).unsqueeze(1).to(self.device)

    def _accuracy(self, images: Any) -> float:
        predicted = self.classifier(images).argmax(1).cpu()
        return float((predicted == self.labels).float().mean())


def build_runs(spec: LabSpec, paths: dict[str, Any], out_dir: Path, accelerator: Any, cpu: bool) -> list[Run]:
    """Every run's task, built from the same seed (the same fresh weights), sharing the batches."""
    from accelerate.utils import set_seed

    runs = []
    for index, run in enumerate(spec.runs()):
        set_seed(spec.seed)
        task = make_task(spec, run, paths, out_dir / f"run-{index}", cpu)
        task.build(accelerator)
        runs.append(Run(index, run["label"], task))
    _share_batches(runs, spec.family, spec.seed)
    return runs


def _preview_event(run: Run, step: int) -> dict[str, Any]:
    from aigc_demo.data.images import png_bytes

    preview = run.task.preview()
    event: dict[str, Any] = {"type": "lab", "step": step, "run": run.index}
    if isinstance(preview, str):
        event["preview_text"] = preview[-600:]
    else:
        event["preview_png"] = png_bytes(preview)
    return event


def _step_all(runs: list[Run], spec: LabSpec, step: int) -> None:
    """Step `step` of every run still training, one after the other."""
    for run in runs:
        if run.diverged_at is not None:
            continue
        _reseed(run, spec.seed, step)
        losses = run.task.train_step(step)
        if any(not math.isfinite(v) for k, v in losses.items() if k not in ("lr", "val_loss")):
            run.diverged_at = step + 1
        run.losses = {k: float(v) for k, v in losses.items() if k not in ("lr", "val_loss")}  # GPT: measured apart


def run_lab(req: JobRequest, events: Any, stop: Any) -> TrainResult:
    """The lab's main in its job process (training/finetune.run_job calls it for family "lab")."""
    from accelerate import Accelerator

    spec, paths = LabSpec(**req.extra["lab"]), req.extra
    out_dir = Path(req.out_dir)
    accelerator = Accelerator(cpu=req.cpu)
    runs = build_runs(spec, paths, out_dir, accelerator, req.cpu)
    meter = Meter(spec.family, paths, runs[0].task, accelerator.device)
    max_s = float(paths.get("max_minutes", 0)) * 60
    metric_name = METRICS[spec.family][0]
    for run in runs:
        events.put({"type": "lab", "step": 0, "run": run.index, "metric": meter(run.task), "name": metric_name})
    events.put({"type": "status", "status": "first_step"})
    started, step, stopped = time.perf_counter(), 0, False
    while step < spec.steps:
        if stop.is_set() or (max_s and time.perf_counter() - started > max_s):
            stopped = True
            break
        _step_all(runs, spec, step)
        step += 1
        last = step == spec.steps
        for run in runs:
            if step % spec.log_every == 0 or last or run.diverged_at == step:
                events.put({"type": "lab", "step": step, "run": run.index, "losses": run.losses,
                            **({"diverged": True} if run.diverged_at == step else {})})
            if run.diverged_at is None and (step % spec.eval_every == 0 or last):
                events.put({"type": "lab", "step": step, "run": run.index, "metric": meter(run.task),
                            "name": metric_name})
            if run.diverged_at is None and (step % spec.sample_every == 0 or last):
                events.put(_preview_event(run, step))
        if step % spec.log_every == 0 or last:
            events.put(_progress(runs, spec, step, started, accelerator))
    if stopped and step:  # what they learned so far: the last metric and grid at the step they stopped
        for run in runs:
            if run.diverged_at is None and step % spec.eval_every:
                events.put({"type": "lab", "step": step, "run": run.index, "metric": meter(run.task),
                            "name": metric_name})
            if run.diverged_at is None and step % spec.sample_every:
                events.put(_preview_event(run, step))
    seconds = time.perf_counter() - started
    events.put({**_progress(runs, spec, step, started, accelerator), "done": not stopped, "stopped": stopped})
    for run in runs:  # each run a model folder of its own (run-<i>/), when it has weights worth keeping
        if run.diverged_at is None and step:
            result = TrainResult(steps_done=step, stopped=stopped, seconds=seconds, final_losses=run.losses,
                                 steps_per_s=step / seconds if seconds else 0.0, items_per_s=0.0,
                                 out_dir=str(out_dir / f"run-{run.index}"))
            Path(result.out_dir).mkdir(parents=True, exist_ok=True)
            run.task.export(Path(result.out_dir), result)
    return TrainResult(steps_done=step, stopped=stopped, seconds=seconds,
                       final_losses={run.label: run.losses.get(MAIN_LOSS[spec.family], math.nan) for run in runs},
                       steps_per_s=step / seconds if seconds else 0.0, items_per_s=0.0, out_dir=str(out_dir))


def _progress(runs: list[Run], spec: LabSpec, step: int, started: float, accelerator: Any) -> dict[str, Any]:
    """The lab as one job's progress: its step, each run's main loss, speed and time left."""
    elapsed = time.perf_counter() - started
    rate = step / elapsed if elapsed > 0 else 0.0
    main = MAIN_LOSS[spec.family]
    losses = {run.label: run.losses[main] for run in runs if math.isfinite(run.losses.get(main, math.nan))}
    return event_dict(ProgressEvent(step=step, total_steps=spec.steps, losses=losses, elapsed_s=elapsed,
                                    steps_per_s=rate, items_per_s=rate * spec.batch() * len(runs),
                                    eta_s=(spec.steps - step) / rate if rate > 0 else float("inf"),
                                    device=str(accelerator.device)))


def measure_lab(req: JobRequest, launched_at: float, min_seconds: float = 2.0, max_rounds: int = 8) -> dict[str, float]:
    """A probe of a lab (training/finetune_probe.py): build its runs, time rounds of one step of every
    run (after one warm-up round), then one report (the metric and a sample of every run).
    `seconds_per_step` is a round; `preview_s` a report."""
    import resource

    from accelerate import Accelerator

    spec, paths = LabSpec(**req.extra["lab"]), req.extra
    accelerator = Accelerator(cpu=req.cpu)
    runs = build_runs(spec, paths, Path(req.out_dir), accelerator, req.cpu)
    meter = Meter(spec.family, paths, runs[0].task, accelerator.device)
    ready = time.time()
    began = time.perf_counter()
    _step_all(runs, spec, 0)
    first = time.perf_counter() - began
    timed, began = 0, time.perf_counter()
    while timed < max_rounds and (timed < 2 or time.perf_counter() - began < min_seconds):
        timed += 1
        _step_all(runs, spec, timed)
    per_round = (time.perf_counter() - began) / timed
    began = time.perf_counter()
    for run in runs:
        meter(run.task)
        run.task.preview()
    return {"startup_s": max(0.0, ready - launched_at), "seconds_per_step": per_round, "first_step_s": first,
            "preview_s": time.perf_counter() - began, "steps_timed": timed,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
