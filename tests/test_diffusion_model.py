"""The diffusion model: training learns and resumes, exports load, sampling is deterministic, the CLIs work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.factories import make_tiny_digit_models, make_tiny_diffusion
from tests.test_digits_training import _losses, synthetic_digits

pytest.importorskip("diffusers")

TINY = ["--channels", "16,32", "--batch-size", "32", "--lr", "3e-3", "--warmup-steps", "0",
        "--log-every", "5", "--no-progress-bar", "--sampling-steps", "3"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_diffusion(tmp_path_factory.mktemp("diff") / "tiny-diffusion", steps=3)


def test_training_learns_resumes_and_exports_a_diffusers_folder(tmp_path, data_dir):
    from aigc_demo.models.diffusion import load_diffusion
    from aigc_demo.training.diffusion import main

    out = tmp_path / "diff"
    args = ["--data-dir", str(data_dir), "--out", str(out), *TINY, "--checkpoint-every", "20"]
    assert main([*args, "--steps", "40"]) == 0
    rows = _losses(out)
    assert len(rows) == 8
    assert np.mean([r["mse"] for r in rows[-2:]]) < 0.7 * rows[0]["mse"], rows  # starts near 1 (pure noise)
    assert main([*args, "--steps", "45", "--resume"]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["steps_done"] == 45
    for name in ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json",
                 "config.json", "README.md", "sample.png"):
        assert (out / name).is_file(), name
    assert "family: diffusion" in (out / "README.md").read_text()
    model = load_diffusion(out)
    assert model.default_steps == 3
    images = model.sample([0, 9], __import__("aigc_demo.models.diffusion", fromlist=["x"]).initial_noise(2, 0))
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8


def test_sampling_is_deterministic_and_does_not_depend_on_the_batch(tiny):
    from aigc_demo.models.diffusion import generate_per_digit, load_diffusion

    model = load_diffusion(tiny)
    a, labels = generate_per_digit(model, [3, 1], 4, seed=7, batch_size=500)
    b, _ = generate_per_digit(model, [3, 1], 4, seed=7, batch_size=3)
    c, _ = generate_per_digit(model, [3, 1], 4, seed=8, batch_size=500)
    assert labels.tolist() == [3] * 4 + [1] * 4
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float rounding across batch sizes at most
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5  # another seed, other digits


def test_every_sampler_step_is_reported_from_noise_to_digit(tiny):
    from aigc_demo.models.diffusion import initial_noise, load_diffusion

    model, seen = load_diffusion(tiny), []
    final = model.sample([5], initial_noise(1, 0), steps=4, on_step=seen.append)
    assert [s.index for s in seen] == [0, 1, 2, 3]
    fractions = [s.noise_fraction for s in seen]
    assert fractions == sorted(fractions, reverse=True) and fractions[0] > 0.95 and fractions[-1] < 0.8
    assert seen[0].noisy.shape == seen[0].predicted.shape == (1, 28, 28)
    assert final.shape == (1, 28, 28)
    # guidance != 1 runs the unconditional branch too, and changes the result
    guided = model.sample([5], initial_noise(1, 0), steps=4, guidance=3.0)
    assert np.abs(guided.astype(int) - final.astype(int)).sum() > 0


def test_sample_cli_writes_digits_like_sample_gan(tmp_path, tiny):
    from aigc_demo.cli import main

    out = tmp_path / "d.npz"
    assert main(["sample", "diffusion", "--model", str(tiny), "--digits", "072", "--per-digit", "3",
                 "--seed", "0", "--out", str(out)]) == 0
    with np.load(out) as stored:
        assert stored["images"].shape == (9, 28, 28) and stored["images"].dtype == np.uint8
        assert stored["labels"].tolist() == [0, 0, 0, 7, 7, 7, 2, 2, 2]
    with pytest.raises(SystemExit):
        main(["sample", "diffusion", "--model", str(tmp_path), "--out", str(out)])  # not a diffusion folder


def test_eval_cli_measures_fid_accuracy_and_sampling_time(tmp_path, data_dir, tiny):
    from aigc_demo.cli import main

    classifier = make_tiny_digit_models(tmp_path / "digits")["tiny-classifier"]
    assert main(["eval", "diffusion", "--model", str(tiny), "--data-dir", str(data_dir), "--classifier",
                 str(classifier), "--per-class", "3", "--limit", "60", "--steps", "2", "--no-card"]) == 0
    result = json.loads((tiny / "eval.json").read_text())
    names = [m["name"] for m in result["metrics"]]
    assert names == ["FID", "FID floor (train vs test)", "FID / floor", "Conditional accuracy", "Sampling time"]
    assert result["n_generated"] == 30 and result["sampling_steps"] == 2 and result["sampling_seconds"] >= 0
    assert "30 digits, 2 DPM-Solver++ steps" in result["metrics"][-1]["note"]  # 30 tiny digits can take < 0.05 s
    assert result["fid"] > 0 and 0 <= result["conditional_accuracy"] <= 1


def test_bad_settings_are_refused_with_a_message(tmp_path, data_dir):
    from aigc_demo.errors import UserError
    from aigc_demo.training.diffusion import DiffusionConfig

    with pytest.raises(ValueError, match="comma-separated"):
        DiffusionConfig(channels="a,b").check()
    with pytest.raises(ValueError, match="multiples of 8"):
        DiffusionConfig(channels="12,24").check()
    with pytest.raises(UserError, match="does not hold a diffusion model"):
        DiffusionConfig(init_from=str(tmp_path)).resolve_init()


def test_log_sigma_spacing_spreads_the_steps_over_the_noise_levels_asked_for(tiny):
    import dataclasses

    from aigc_demo.models.diffusion import initial_noise, load_diffusion, log_sigma_timesteps, sampler_from

    model = load_diffusion(tiny)
    alphas = sampler_from(model.scheduler_config).alphas_cumprod
    steps = log_sigma_timesteps(alphas, 10, 30.0, 0.05)
    sigmas = [float(((1 - alphas[t]) / alphas[t]).sqrt()) for t in steps]
    assert steps == sorted(set(steps), reverse=True) and len(steps) == 10
    assert 25 < sigmas[0] < 36 and 0.04 < sigmas[-1] < 0.06
    ratios = np.diff(np.log(sigmas))
    assert np.allclose(ratios, ratios.mean(), atol=0.05)  # even in log sigma, unlike even in t

    even_in_t = model.model_calls(4, 1.0)
    model.defaults = dataclasses.replace(model.defaults, sigma_range=(30.0, 0.05))
    seen = []
    model.sample([5], initial_noise(1, 0), steps=4, on_step=seen.append)
    assert [s.timestep for s in seen] == log_sigma_timesteps(alphas, 4, 30.0, 0.05) and even_in_t == 4
    assert model.model_calls(4, 1.0) == 4
    assert model.defaults.as_config()["sigma_range"] == [30.0, 0.05]
