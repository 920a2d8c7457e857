"""The exact recipe behind weights/gpt-shakespeare and weights/gpt-python.

Two steps, because the GPU machine has neither ../shared nor this interpreter's stdlib:

1. Here (CPU, once): tokenise both corpora into a small folder (tokenizers + uint16 token arrays
   + manifest)::

       python -m aigc_demo.training.recipes_gpt prepare --out DIR

2. On the GPU machine: train both models as parallel processes on the one GPU, each bounded by
   `--max-minutes`, then measure and write the model cards, all within `--minutes`::

       python -m aigc_demo.training.recipes_gpt --data-dir DIR --weights-dir weights --minutes 6

Only the final weights, tokenizer, card, settings and loss curve are copied into
`weights/NAME`; optimizer checkpoints stay in `--runs-dir`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aigc_demo.data import text as textdata
from aigc_demo.evaluation.eval_gpt import evaluate_folder
from aigc_demo.models import tokenizers as toks

MODELS = {"shakespeare": "gpt-shakespeare", "python": "gpt-python"}
EXPORTED_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "README.md",
                  "training_info.json", "data_manifest.json", "losses.csv")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHAKESPEARE = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
# Minutes kept back from the budget for start-up (imports, CUDA init), export and evaluation.
OVERHEAD_MINUTES = 1.4


# ---- step 1: prepare (CPU) --------------------------------------------------------------------

def prepare(out: Path, shakespeare: Path, stdlib: Path | None, vocab_size: int = 4096) -> dict[str, Any]:
    """Write OUT/shakespeare and OUT/python: tokenizer/, train.npy, val.npy, meta.json (+ manifest)."""
    import hashlib

    summary: dict[str, Any] = {}
    text = textdata.read_text_file(shakespeare)
    train_text, val_text = textdata.split_text(text, 0.1)
    tok = toks.build_char_tokenizer(text)
    folder = out / "shakespeare"
    toks.save_tokenizer(tok, folder / "tokenizer")
    meta = {"source": "tinyshakespeare/input.txt", "sha256": hashlib.sha256(shakespeare.read_bytes()).hexdigest(),
            "bytes": shakespeare.stat().st_size, "val_fraction": 0.1, "tokenizer_kind": "char",
            "vocab_size": len(tok), "train_chars": len(train_text), "train_bytes": len(train_text.encode()),
            "val_chars": len(val_text), "val_bytes": len(val_text.encode())}
    textdata.write_prepared(folder, toks.encode(tok, train_text), toks.encode(tok, val_text), meta)
    summary["shakespeare"] = textdata.read_prepared_meta(folder)

    corpus = textdata.build_python_corpus(stdlib)
    started = time.perf_counter()
    tok = toks.train_bpe_tokenizer([corpus.train_text], vocab_size=vocab_size)
    bpe_seconds = time.perf_counter() - started
    folder = out / "python"
    toks.save_tokenizer(tok, folder / "tokenizer")
    manifest = corpus.manifest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    sep = textdata.FILE_SEPARATOR
    val_plain = corpus.val_text.replace(sep, "")
    meta = {"source": "python-stdlib", "python_version": manifest["python_version"],
            "train_files": len(manifest["train_files"]), "val_files": len(manifest["val_files"]),
            "val_modules": manifest["val_modules"], "tokenizer_kind": "bpe", "vocab_size": len(tok),
            "bpe_train_seconds": round(bpe_seconds, 1),
            "train_bytes": manifest["train_bytes"], "val_chars": len(val_plain), "val_bytes": len(val_plain.encode())}
    train_ids, val_ids = toks.encode(tok, corpus.train_text), toks.encode(tok, corpus.val_text)
    textdata.write_prepared(folder, train_ids, val_ids, meta)
    summary["python"] = textdata.read_prepared_meta(folder)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    summary["total_mb"] = round(total / 2**20, 2)
    return summary


# ---- step 2: train both on the GPU --------------------------------------------------------------

def train_command(config: str, data: Path, run_dir: Path, max_minutes: float, cuda: bool,
                  extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "aigc_demo.training.gpt", "--config", config, "--data", str(data),
            "--out", str(run_dir), "--name", MODELS[config], "--max-minutes", f"{max_minutes:.2f}",
            "--mixed-precision", "bf16" if cuda else "no", "--checkpoint-every", "0",
            "--log-every", "50", "--no-progress-bar", *extra]


def run_recipe(data_dir: Path, weights_dir: Path, minutes: float, runs_dir: Path, log_dir: Path,
               only: list[str], extra: list[str], eval_max_tokens: int = 0) -> dict[str, Any]:
    import torch

    t0 = time.perf_counter()
    cuda = torch.cuda.is_available()
    train_minutes = max(minutes - OVERHEAD_MINUTES, 0.2)
    deadline = t0 + minutes * 60
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "4"),
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    procs: dict[str, tuple[subprocess.Popen, Any]] = {}
    for config in only:
        data = data_dir / config
        if not (data / "meta.json").is_file():
            raise SystemExit(f"{data} is not a prepared corpus: run `prepare --out {data_dir}` first")
        run_dir = runs_dir / MODELS[config]
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = train_command(config, data, run_dir, train_minutes, cuda, extra)
        log = open(log_dir / f"train-{MODELS[config]}.log", "w")
        log.write(" ".join(cmd) + "\n")
        log.flush()
        print("starting:", " ".join(cmd), flush=True)
        procs[config] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT), log)
    codes: dict[str, int | None] = {}
    for config, (proc, log) in procs.items():
        try:
            codes[config] = proc.wait(timeout=max(deadline - 25 - time.perf_counter(), 1))
        except subprocess.TimeoutExpired:
            proc.kill()  # past the hard budget: keep going with what the other produced
            codes[config] = None
        log.close()
        print(f"{MODELS[config]}: exit {codes[config]} after {time.perf_counter() - t0:.0f} s", flush=True)

    report: dict[str, Any] = {"hardware": torch.cuda.get_device_name(0) if cuda else "cpu",
                              "minutes_budget": minutes, "train_minutes": train_minutes, "models": {}}
    for config in only:
        name = MODELS[config]
        run_dir = runs_dir / name
        entry: dict[str, Any] = {"exit_code": codes.get(config)}
        if codes.get(config) == 0 and (run_dir / "model.safetensors").is_file():
            dest = weights_dir / name
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for file in EXPORTED_FILES:
                if (run_dir / file).is_file():
                    shutil.copy2(run_dir / file, dest / file)
            metric = evaluate_folder(str(dest), str(data_dir / config), device="cuda" if cuda else "cpu",
                                     max_tokens=eval_max_tokens)
            info = json.loads((dest / "training_info.json").read_text())
            entry.update(metric=metric.summary(), metrics=metric.as_card_metrics(),
                         steps=info["steps_done"], train_seconds=info["train_seconds"],
                         tokens_per_second=info["tokens_per_second"], weights=info["weights"],
                         folder_mb=round(sum(p.stat().st_size for p in dest.iterdir()) / 2**20, 2))
            print(f"{name}: {metric.summary()}; {entry['steps']} steps in {entry['train_seconds']} s; "
                  f"{entry['folder_mb']} MB", flush=True)
        else:
            entry["error"] = f"training failed or timed out; see {log_dir / f'train-{name}.log'}"
            print(f"{name}: {entry['error']}", flush=True)
        report["models"][name] = entry
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    (log_dir / "recipe-gpt.json").write_text(json.dumps(report, indent=2))
    print(f"recipe done in {report['total_seconds']} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["prepare"]:
        parser = argparse.ArgumentParser(prog="python -m aigc_demo.training.recipes_gpt prepare")
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument("--shakespeare", type=Path, default=DEFAULT_SHAKESPEARE)
        parser.add_argument("--stdlib", type=Path, default=None, help="Lib/ folder (default: this interpreter's)")
        parser.add_argument("--vocab-size", type=int, default=4096)
        args = parser.parse_args(argv[1:])
        summary = prepare(args.out, args.shakespeare, args.stdlib, args.vocab_size)
        print(json.dumps(summary, indent=2))
        return 0
    parser = argparse.ArgumentParser(prog="python -m aigc_demo.training.recipes_gpt", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="the folder `prepare` wrote")
    parser.add_argument("--weights-dir", required=True, type=Path)
    parser.add_argument("--minutes", type=float, default=6.0, help="wall-time budget for everything")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/aigc-gpt-runs"),
                        help="checkpoints and run folders (not shipped)")
    parser.add_argument("--log-dir", type=Path, default=None, help="default: WEIGHTS_DIR/../logs-gpt")
    parser.add_argument("--only", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--eval-max-tokens", type=int, default=0,
                        help="evaluate on only this many held-out tokens (0: all; for CPU checks)")
    args, extra = parser.parse_known_args(argv)
    report = run_recipe(args.data_dir, args.weights_dir, args.minutes, args.runs_dir,
                        args.log_dir or args.weights_dir.parent / "logs-gpt", args.only, extra,
                        args.eval_max_tokens)
    return 0 if all(m.get("exit_code") == 0 for m in report["models"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
