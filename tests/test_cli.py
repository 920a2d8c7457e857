"""The training CLIs parse dataclass flags (HfArgumentParser) as README documents them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_demo.training.digits_common import parse
from aigc_demo.training.gan import DEFAULTS as GAN_DEFAULTS
from aigc_demo.training.gan import GanConfig

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc_demo", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_dashed_flags_aliases_booleans_and_dry_run() -> None:
    settings, config = parse("gan", GanConfig, GAN_DEFAULTS, [
        "--data-dir", "D", "--out", "runs/x", "--init-from", "weights/dcgan-mnist", "--no-progress-bar",
        "--cpu", "--no-spectral-norm", "--latent-dim", "16", "--lr", "3e-3", "--dry-run"])
    assert (settings.out_dir, settings.progress_bar, settings.cpu, settings.lr) == ("runs/x", False, True, 3e-3)
    assert (config.data_dir, config.init_from, config.spectral_norm, config.latent_dim) == (
        "D", "weights/dcgan-mnist", False, 16)
    assert settings.steps == 5 and config.limit == 512  # --dry-run
    defaults, _ = parse("gan", GanConfig, GAN_DEFAULTS, [])
    assert (defaults.batch_size, defaults.steps, defaults.out_dir) == (128, 20000, "runs/dcgan-mnist")


def test_unknown_flags_end_with_argparse_usage_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("gan", GanConfig, GAN_DEFAULTS, ["--no-such-flag", "1"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --no-such-flag 1" in capsys.readouterr().err


def test_gpt_flags_take_the_presets_defaults() -> None:
    from aigc_demo.training.gpt import parse_args

    gpt, train = parse_args(["--config", "python", "--data", "stdlib", "--init-from", "weights/gpt-python",
                             "--no-keep-best", "--dry-run"])
    assert (gpt.config, gpt.init_from, gpt.keep_best, gpt.dry_run) == ("python", "weights/gpt-python", False, True)
    assert train.out_dir == "runs/gpt-python" and train.steps == 12 and train.lr == 1e-3


def test_train_help_through_the_module_cli() -> None:
    for family in ("gan", "vae", "gpt"):
        result = _cli("train", family, "--help")
        assert result.returncode == 0, result.stderr
        assert "--init-from" in result.stdout and "--out" in result.stdout
