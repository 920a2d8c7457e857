"""The loss options the Lab varies, as real config fields of the trainers: VAE MSE vs BCE
reconstruction, GPT label smoothing, diffusion noise vs v-prediction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aigc_demo.training.losses import vae_recon, vae_recon_loss, vae_recon_mse


def test_vae_reconstruction_losses_on_known_values() -> None:
    logits, ones = torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28)
    assert vae_recon_mse(logits, ones).item() == pytest.approx(784 * 0.25)  # sigmoid(0) = 0.5
    assert vae_recon_loss(logits, ones).item() == pytest.approx(784 * math.log(2), rel=1e-5)
    assert vae_recon("mse") is vae_recon_mse and vae_recon("bce") is vae_recon_loss
    with pytest.raises(ValueError, match="bce, mse"):
        vae_recon("l1")


def test_vae_config_takes_the_reconstruction_loss() -> None:
    from aigc_demo.training.engine import TrainSettings
    from aigc_demo.training.vae import VaeConfig, VaeTask

    assert VaeTask(VaeConfig(recon="mse"), TrainSettings()).recon_fn is vae_recon_mse
    with pytest.raises(ValueError, match="--recon"):
        VaeConfig(recon="nope").check()


def test_gpt_label_smoothing_is_a_setting_of_the_training_loss_only() -> None:
    from aigc_demo.training.engine import TrainSettings
    from aigc_demo.training.gpt import GPTTask
    from aigc_demo.training.gpt_data import GPTSettings

    with pytest.raises(ValueError, match="label-smoothing"):
        GPTTask(GPTSettings(label_smoothing=1.0), TrainSettings())
    task = GPTTask(GPTSettings(label_smoothing=0.1), TrainSettings())
    logits = torch.tensor([[[4.0, 0.0, 0.0]]])
    task.model = lambda input_ids: type("Out", (), {"logits": logits})()
    y = torch.tensor([[0]])
    plain, smoothed = task._loss(None, y).item(), task._loss(None, y, 0.1).item()
    log_p = F.log_softmax(logits[0, 0], -1)
    assert plain == pytest.approx(-log_p[0].item())
    assert smoothed == pytest.approx(-(0.9 * log_p[0] + 0.1 * log_p.mean()).item())  # (1-e) one-hot + e uniform
    assert smoothed > plain


def test_diffusion_learns_the_velocity_when_asked(tmp_path) -> None:
    from accelerate import Accelerator

    from aigc_demo.models.diffusion import train_scheduler
    from aigc_demo.training.diffusion import DiffusionConfig, DiffusionTask
    from aigc_demo.training.engine import TrainSettings
    from tests.factories import make_tiny_mnist

    assert train_scheduler("v_prediction").config.prediction_type == "v_prediction"
    with pytest.raises(ValueError, match="prediction must be one of"):
        train_scheduler("x0")
    with pytest.raises(ValueError, match="--prediction"):
        DiffusionConfig(prediction="x0").check()
    data = make_tiny_mnist(tmp_path / "mnist", train=32, test=8)
    losses = {}
    for prediction in ("epsilon", "v_prediction"):
        torch.manual_seed(0)
        task = DiffusionTask(DiffusionConfig(data_dir=str(data), channels="16,32", attention=False,
                                             prediction=prediction, snr_gamma=0.0),
                             TrainSettings(steps=1, batch_size=4, seed=0))
        task.build(Accelerator(cpu=True))
        assert task.noise_scheduler.config.prediction_type == prediction  # what a saved folder samples with
        losses[prediction] = task.train_step(0)["mse"]
    # the same weights, batch and noise: only the target differs (eps vs v = sqrt(a) eps - sqrt(1-a) x0)
    assert all(math.isfinite(v) for v in losses.values()) and losses["epsilon"] != losses["v_prediction"]
