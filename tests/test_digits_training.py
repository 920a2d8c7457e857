"""Tiny training runs on synthetic digits: losses go down, exports load, schedules behave."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aigc_demo.data.idx import write_idx
from aigc_demo.training.schedule import Progress, lr_factor


def synthetic_digits(folder, n=300):
    """Structured fake digits: class k is a bar at column 2 + 2k (easy to learn, not noise)."""
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, k in enumerate(labels):
        top = rng.integers(2, 8)
        images[i, top:top + 16, 2 + 2 * k:5 + 2 * k] = 255
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_digits(tmp_path_factory.mktemp("digits"))


def _losses(out):
    rows = (out / "losses.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    return [dict(zip(header, map(float, r.split(",")))) for r in rows[1:]]


def test_classifier_learns(tmp_path, data_dir):
    from aigc_demo.training.classifier import main

    out = tmp_path / "clf"
    assert main(["--data-dir", str(data_dir), "--out", str(out), "--steps", "40", "--batch-size", "32",
                 "--lr", "3e-3", "--log-every", "5", "--no-progress-bar", "--channels", "8", "--no-augment",
                 "--checkpoint-every", "0"]) == 0
    rows = _losses(out)
    assert rows[-1]["loss"] < rows[0]["loss"] * 0.5
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file() and (out / "sample.png").is_file()
    record = json.loads((out / "training.json").read_text())
    assert record["steps_done"] == 40


def test_vae_learns_and_resumes(tmp_path, data_dir):
    from aigc_demo.training.vae import main

    out = tmp_path / "vae"
    args = ["--data-dir", str(data_dir), "--out", str(out), "--batch-size", "32", "--lr", "2e-3",
            "--log-every", "5", "--no-progress-bar", "--channels", "8", "--hidden", "32", "--latent-dim", "2",
            "--warmup-steps", "0", "--eval-limit", "50", "--checkpoint-every", "10"]
    assert main([*args, "--steps", "30"]) == 0
    rows = _losses(out)
    assert rows[-1]["recon"] < rows[0]["recon"] - 20
    assert (out / "latents.npz").is_file()
    assert main([*args, "--steps", "35", "--resume"]) == 0
    assert json.loads((out / "training.json").read_text())["steps_done"] == 35


@pytest.mark.parametrize("loss,optimizer", [("nsgan", "adam"), ("hinge", "rmsprop"), ("wgan-gp", "sgd")])
def test_gan_runs_every_loss_and_optimizer(tmp_path, data_dir, loss, optimizer):
    from aigc_demo.models.digits_io import load_generator
    from aigc_demo.training.gan import main

    out = tmp_path / loss
    assert main(["--data-dir", str(data_dir), "--out", str(out), "--steps", "3", "--batch-size", "16",
                 "--loss", loss, "--optimizer", optimizer, "--g-channels", "4", "--d-channels", "4",
                 "--latent-dim", "8", "--log-every", "1", "--no-progress-bar", "--checkpoint-every", "0",
                 "--bn-samples", "500"]) == 0
    assert len(_losses(out)) == 3
    assert load_generator(out).z_dim == 8
    assert (out / "discriminator" / "model.safetensors").is_file()


def test_gan_discriminator_learns(tmp_path, data_dir):
    from aigc_demo.training.gan import main

    out = tmp_path / "gan"
    assert main(["--data-dir", str(data_dir), "--out", str(out), "--steps", "25", "--batch-size", "32",
                 "--g-channels", "8", "--d-channels", "8", "--latent-dim", "8", "--lr", "1e-3",
                 "--log-every", "1", "--no-progress-bar", "--checkpoint-every", "0", "--bn-samples", "500"]) == 0
    rows = _losses(out)
    # at chance D loss is 2 ln 2 = 1.386 and D accuracy 0.5; a learning D does better
    assert np.median([r["d_loss"] for r in rows[-10:]]) < 1.2
    assert np.mean([r["d_accuracy"] for r in rows[-10:]]) > 0.7


def test_bad_flags_are_refused(tmp_path, data_dir):
    from aigc_demo.training.gan import main

    with pytest.raises(ValueError, match="--loss must be one of"):
        main(["--data-dir", str(data_dir), "--out", str(tmp_path), "--loss", "lsgan"])
    with pytest.raises(FileNotFoundError, match="data folder"):
        main(["--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path), "--steps", "1"])


def test_schedules():
    assert lr_factor(0.0, 0, "cosine", 0) == pytest.approx(1.0)
    assert lr_factor(1.0, 100, "cosine", 0, min_factor=0.0) == pytest.approx(0.0, abs=1e-9)
    assert lr_factor(0.5, 4, "constant", 10) == pytest.approx(0.5)
    progress = Progress(steps=100, max_minutes=0)
    assert progress(50) == 0.5 and progress(500) == 1.0


def test_gan_and_vae_start_from_a_weights_folder(tmp_path, data_dir):
    """--init-from: the folder's weights and architecture win over the size flags."""
    from aigc_demo.models.digits_io import load_generator, load_vae
    from aigc_demo.training.gan import main as gan_main
    from aigc_demo.training.vae import main as vae_main

    common = ["--data-dir", str(data_dir), "--steps", "2", "--batch-size", "8", "--log-every", "1",
              "--no-progress-bar", "--checkpoint-every", "0"]
    base, tuned = tmp_path / "gan", tmp_path / "gan-tuned"
    assert gan_main([*common, "--out", str(base), "--g-channels", "4", "--d-channels", "4", "--latent-dim", "8",
                     "--bn-samples", "500"]) == 0
    assert gan_main([*common, "--out", str(tuned), "--init-from", str(base), "--latent-dim", "64",
                     "--bn-samples", "500"]) == 0
    assert load_generator(tuned).z_dim == 8
    record = json.loads((tuned / "training.json").read_text())["config"]
    assert record["init_from"] == str(base) and record["d_channels"] == 4

    vae_base, vae_tuned = tmp_path / "vae", tmp_path / "vae-tuned"
    assert vae_main([*common, "--out", str(vae_base), "--channels", "8", "--hidden", "16", "--latent-dim", "3",
                     "--eval-limit", "50"]) == 0
    assert vae_main([*common, "--out", str(vae_tuned), "--init-from", str(vae_base), "--eval-limit", "50"]) == 0
    assert load_vae(vae_tuned).latent_dim == 3
    with pytest.raises(ValueError, match="not a weights folder"):
        vae_main([*common, "--out", str(tmp_path / "x"), "--init-from", str(tmp_path / "nothing")])
