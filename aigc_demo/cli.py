"""`python -m aigc_demo`: one command line for serving, training, sampling, evaluating, benchmarking.

Each `COMMAND TARGET` pair maps to a module with `main(argv) -> int`; the rest of the command
line is that module's own flags (`python -m aigc_demo train gan --help`). Targets whose module
is not part of this build are not listed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from aigc_demo.deploy import main as deploy_main
from aigc_demo.environment import configure_environment
from aigc_demo.services.job_process import start_fork_server_here
from aigc_demo.settings import add_serve_args, serve_settings_from_args

# command -> (help, {target: module})
COMMANDS: dict[str, tuple[str, dict[str, str]]] = {
    "train": ("train a small model (progress bar, loss CSV, checkpoints, resume)", {
        "gan": "aigc_demo.training.gan",
        "vae": "aigc_demo.training.vae",
        "classifier": "aigc_demo.training.classifier",
        "gpt": "aigc_demo.training.gpt",
        "diffusion": "aigc_demo.training.diffusion",
    }),
    "sample": ("write samples from a trained model to a file", {
        "gan": "aigc_demo.evaluation.sample_gan",
        "gpt": "aigc_demo.evaluation.sample_gpt",
        "diffusion": "aigc_demo.evaluation.sample_diffusion",
    }),
    "eval": ("measure a model and record the metrics in its model card", {
        "gan": "aigc_demo.evaluation.eval_gan",
        "vae": "aigc_demo.evaluation.eval_vae",
        "classifier": "aigc_demo.evaluation.eval_classifier",
        "gpt": "aigc_demo.evaluation.eval_gpt",
        "diffusion": "aigc_demo.evaluation.eval_diffusion",
    }),
    "bench": ("benchmarks that report ratios against a baseline run in the same command", {
        "startup": "aigc_demo.bench.startup",
        "digits": "aigc_demo.bench.digits",
        "text": "aigc_demo.bench.text",
        "hub": "aigc_demo.bench.hub",
        "train": "aigc_demo.bench.train",
        "concurrency": "aigc_demo.bench.concurrency",
        "gpu": "aigc_demo.bench.gpu",
        "remote": "aigc_demo.bench.remote",
    }),
}


def _available(targets: dict[str, str]) -> dict[str, str]:
    return {name: module for name, module in targets.items() if importlib.util.find_spec(module)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="start the web app (same as `python app.py`)")
    add_serve_args(serve)
    deploy = commands.add_parser("deploy", help="upload the app to a Hugging Face Space (checks every file first)",
                                 add_help=False)
    deploy.add_argument("args", nargs=argparse.REMAINDER, help="--space owner/name [--private] [--dry-run]")
    for name, (help_text, targets) in COMMANDS.items():
        found = _available(targets)
        if not found:
            continue
        sub = commands.add_parser(name, help=f"{help_text}: {', '.join(found)}",
                                  description=f"{help_text}. Targets: {', '.join(found)}. "
                                  f"Run `python -m aigc_demo {name} TARGET --help` for its flags.")
        sub.add_argument("target", choices=sorted(found))
        sub.add_argument("args", nargs=argparse.REMAINDER, help="the target's own flags")
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_environment()
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "deploy":  # its flags start with --, which argparse's REMAINDER will not take
        return int(deploy_main(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        start_fork_server_here()  # before gradio and any thread (see its docstring)
        from aigc_demo.ui.launch import serve

        serve(serve_settings_from_args(args))
        return 0
    module = importlib.import_module(COMMANDS[args.command][1][args.target])
    return int(module.main(args.args) or 0)


if __name__ == "__main__":
    sys.exit(main())
