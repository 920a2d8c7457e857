"""The exact recipe for the shipped digit models: four trainings in parallel on one GPU, then evals.

    python -m aigc_demo.training.recipes_digits --data-dir DIR --weights-dir weights --minutes 6

Trains weights/mnist-classifier, weights/dcgan-mnist, weights/vae-mnist-2d and weights/vae-mnist-32d
as parallel subprocesses (each with --max-minutes so that training plus evaluation end within
--minutes), evaluates each as soon as its training ends (the GAN eval waits for the classifier,
whose features FID uses), writes model cards with the measured metrics and a summary.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aigc_demo.environment import child_env

TARGETS = {"dcgan-mnist": "conditional accuracy >= 97% and FID <= 3x floor",
           "vae-mnist-32d": "IWAE NLL <= 85 nats", "mnist-classifier": "test accuracy >= 99%"}


@dataclass
class Job:
    name: str
    kind: str  # gan | vae | classifier
    train_args: list[str]
    eval_args: list[str] = field(default_factory=list)
    needs: str = ""  # a job whose *training* must finish before this eval starts
    proc: subprocess.Popen | None = None
    stage: str = "pending"  # pending -> training -> trained -> evaluating -> done | failed
    started: float = 0.0
    log: Path | None = None
    times: dict = field(default_factory=dict)


def build_jobs(args: argparse.Namespace, weights: Path, train_minutes: float) -> list[Job]:
    data = ["--data-dir", args.data_dir, "--dataset", "mnist"]
    note = (f"Made by the recipe `python -m aigc_demo.training.recipes_digits --minutes {args.minutes}`: "
            "classifier, GAN and both VAEs trained as parallel processes on one device.")
    common = [*data, "--no-progress-bar", "--seed", str(args.seed), "--note", note]
    if args.dry_run:
        common.append("--dry-run")
    mm = f"{train_minutes:.2f}"
    cuda_mp = "bf16" if args.cuda else "no"
    ev = [*data]
    if args.eval_limit:
        ev += ["--limit", str(args.eval_limit)]
    per_class = ["--per-class", str(max(1, args.eval_limit // 10))] if args.eval_limit else []
    return [
        Job("mnist-classifier", "classifier",
            [*common, "--out", str(weights / "mnist-classifier"), "--steps", str(args.classifier_steps),
             "--batch-size", "256", "--lr", "2e-3", "--max-minutes", f"{min(train_minutes, 2.0):.2f}",
             "--mixed-precision", cuda_mp, "--log-every", "200", "--checkpoint-every", "0"],
            [*ev, "--model", str(weights / "mnist-classifier")]),
        Job("dcgan-mnist", "gan",
            [*common, "--out", str(weights / "dcgan-mnist"), "--steps", str(args.gan_steps), "--batch-size", "128",
             "--lr", "2e-4", "--loss", "nsgan", "--optimizer", "adam", "--latent-dim", "64",
             "--ema-decay", "0.999", "--max-minutes", mm, "--log-every", "500", "--checkpoint-every", "0"],
            [*ev, *per_class, "--model", str(weights / "dcgan-mnist"),
             "--classifier", str(weights / "mnist-classifier")], needs="mnist-classifier"),
        Job("vae-mnist-2d", "vae",
            [*common, "--out", str(weights / "vae-mnist-2d"), "--latent-dim", "2", "--channels", "32",
             "--hidden", "256", "--steps", str(args.vae2d_steps), "--batch-size", "256", "--lr", "1e-3",
             "--max-minutes", f"{min(train_minutes, 2.5):.2f}", "--log-every", "500", "--checkpoint-every", "0"],
            [*ev, "--k", str(args.k), "--model", str(weights / "vae-mnist-2d")]),
        Job("vae-mnist-32d", "vae",
            [*common, "--out", str(weights / "vae-mnist-32d"), "--latent-dim", "32", "--channels", "64",
             "--hidden", "512", "--steps", str(args.vae_steps), "--batch-size", "256", "--lr", "1e-3",
             "--max-minutes", mm, "--log-every", "500", "--checkpoint-every", "0"],
            [*ev, "--k", str(args.k), "--model", str(weights / "vae-mnist-32d")]),
    ]


def _launch(job: Job, command: list[str], log_dir: Path, stage: str) -> None:
    job.log = log_dir / f"{job.name}.{stage}.log"
    handle = open(job.log, "w")
    handle.write("$ " + shlex.join(command) + "\n")
    handle.flush()
    env = child_env({"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"},
                    defaults={"OMP_NUM_THREADS": "4"})
    job.proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    job.stage, job.started = stage, time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {stage} {job.name} (log {job.log})", flush=True)


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    weights = Path(args.weights_dir)
    weights.mkdir(parents=True, exist_ok=True)
    log_dir = Path(args.log_dir) if args.log_dir else weights.parent / "logs-digits"
    log_dir.mkdir(parents=True, exist_ok=True)
    eval_minutes = args.eval_minutes if args.eval_minutes >= 0 else max(1.0, 0.25 * args.minutes)
    train_minutes = max(0.05, args.minutes - eval_minutes - args.startup_minutes)
    print(f"recipe: {args.minutes} min in all: training budget {train_minutes:.2f} min per model, "
          f"{eval_minutes:.2f} min reserved for evaluation; device {'cuda' if args.cuda else 'cpu'}", flush=True)
    jobs = {job.name: job for job in build_jobs(args, weights, train_minutes)}
    py = [sys.executable, "-m", "aigc_demo"]
    for job in jobs.values():
        if job.name in args.skip:
            job.stage = "skipped"
            continue
        _launch(job, [*py, "train", job.kind, *job.train_args], log_dir, "training")
    deadline = started + 60 * (args.minutes + args.grace_minutes)
    while any(j.stage in ("training", "evaluating", "trained") for j in jobs.values()):
        time.sleep(0.5)
        for job in jobs.values():
            if job.proc is not None and job.proc.poll() is not None:
                code, seconds = job.proc.returncode, time.perf_counter() - job.started
                job.times[job.stage] = round(seconds, 1)
                job.proc = None
                if code != 0:
                    print(f"!! {job.name} failed while {job.stage} (exit {code}); last lines:\n{_tail(job.log)}", flush=True)
                    job.stage = "failed"
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] {job.name} finished {job.stage} in {seconds:.1f} s", flush=True)
                if job.stage == "training":
                    shutil.rmtree(weights / job.name / "checkpoint", ignore_errors=True)
                    job.stage = "trained"
                else:
                    job.stage = "done"
            if job.stage == "trained":
                need = jobs.get(job.needs)
                if need is not None and need.stage in ("failed", "skipped"):
                    print(f"!! {job.name}: cannot evaluate, {need.name} {need.stage}", flush=True)
                    job.stage = "failed"
                elif need is None or need.stage in ("trained", "evaluating", "done"):
                    _launch(job, [*py, "eval", job.kind, *job.eval_args], log_dir, "evaluating")
            if job.proc is not None and time.perf_counter() > deadline:
                print(f"!! {job.name}: over the deadline while {job.stage}, stopping it", flush=True)
                job.proc.kill()
    total = time.perf_counter() - started
    return summarize(jobs, weights, log_dir, total)


def summarize(jobs: dict[str, Job], weights: Path, log_dir: Path, total: float) -> int:
    summary: dict = {"wall_seconds": round(total, 1), "models": {}}
    for job in jobs.values():
        entry: dict = {"stage": job.stage, "seconds": job.times}
        folder = weights / job.name
        for name in ("training.json", "eval.json"):
            if (folder / name).is_file():
                data = json.loads((folder / name).read_text())
                if name == "eval.json":
                    entry["metrics"] = {m["name"]: m["value"] for m in data.get("metrics", [])}
                else:
                    entry.update(steps=data["steps_done"], train_seconds=data["wall_seconds"],
                                 steps_per_s=data["steps_per_s"], hardware=data["hardware"])
        if job.name in TARGETS:
            entry["target"] = TARGETS[job.name]
        summary["models"][job.name] = entry
    text = json.dumps(summary, indent=2)
    (log_dir / "summary.json").write_text(text)
    print(text, flush=True)
    failed = [j.name for j in jobs.values() if j.stage not in ("done", "skipped")]
    if failed:
        print(f"!! not complete: {', '.join(failed)} (logs in {log_dir})", flush=True)
    print(f"recipe finished in {total:.1f} s", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m aigc_demo.training.recipes_digits", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST IDX files")
    parser.add_argument("--weights-dir", default="weights", help="where the four weights folders go")
    parser.add_argument("--minutes", type=float, default=6.0, help="wall-time budget of the whole recipe")
    parser.add_argument("--eval-minutes", type=float, default=-1, help="reserved for evals (-1: max(1, M/4))")
    parser.add_argument("--startup-minutes", type=float, default=0.4, help="process start, data load and export")
    parser.add_argument("--grace-minutes", type=float, default=4.0, help="hard stop after --minutes plus this")
    parser.add_argument("--log-dir", default="", help="logs and summary.json (default: WEIGHTS_DIR/../logs-digits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gan-steps", type=int, default=100_000, help="upper bound; time usually ends it")
    parser.add_argument("--vae-steps", type=int, default=100_000, help="upper bound; time usually ends it")
    parser.add_argument("--vae2d-steps", type=int, default=20_000)
    parser.add_argument("--classifier-steps", type=int, default=4_000)
    parser.add_argument("--eval-limit", type=int, default=0, help="test digits per eval (0: all 10,000)")
    parser.add_argument("--k", type=int, default=1000, help="IWAE importance samples")
    parser.add_argument("--skip", nargs="*", default=[], help="models to leave out")
    parser.add_argument("--dry-run", action="store_true", help="trainers do 5 steps on 512 digits")
    args = parser.parse_args(argv)
    args.cuda = torch.cuda.is_available()
    if args.cuda:
        print(f"GPU: {torch.cuda.get_device_name(0)}", flush=True)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
