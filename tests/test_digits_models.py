"""Digit models, losses, IDX reader and FID: shapes, determinism, known values, round trips."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from aigc_demo.data.idx import DigitsData, IdxFormatError, load_split, read_idx, write_idx
from aigc_demo.evaluation.fid import fid_from_features, frechet_distance
from aigc_demo.models.classifier import DigitClassifier
from aigc_demo.models.digits_io import generate_per_digit, load_generator, load_vae
from aigc_demo.models.gan import Discriminator, Generator
from aigc_demo.models.vae import VAE, vae_kl
from aigc_demo.training import losses


def test_shapes():
    G, D, V, C = Generator(z_dim=8, channels=8), Discriminator(channels=8), VAE(latent_dim=2, channels=8, hidden=16), DigitClassifier(channels=8)
    z, y = torch.randn(5, 8), torch.arange(5)
    x = G(z, y)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (5,)
    logits, mean, logvar = V(x.add(1).div(2))
    assert logits.shape == (5, 1, 28, 28) and mean.shape == logvar.shape == (5, 2)
    assert C(x).shape == (5, 10) and C.features(x).shape == (5, 128)


def test_generation_is_deterministic_and_batch_independent(tmp_path):
    torch.manual_seed(0)
    Generator(z_dim=8, channels=8).save_pretrained(tmp_path)
    G = load_generator(tmp_path)
    a, la = generate_per_digit(G, range(10), 3, seed=7, batch_size=4)
    b, lb = generate_per_digit(G, range(10), 3, seed=7, batch_size=1000)
    c, _ = generate_per_digit(G, range(10), 3, seed=8)
    assert a.dtype == np.uint8 and a.shape == (30, 28, 28)
    assert (a == b).all() and (la == lb).all() and list(la[:4]) == [0, 0, 0, 1]
    assert not (a == c).all()


def test_save_load_round_trip(tmp_path):
    vae = VAE(latent_dim=3, channels=8, hidden=16)
    vae.save_pretrained(tmp_path)
    loaded = load_vae(tmp_path)
    assert loaded.latent_dim == 3
    for (k, p), (_, q) in zip(vae.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(p, q), k


def test_gan_losses_known_values():
    zero = torch.zeros(4)
    assert losses.d_loss_nsgan(zero, zero).item() == pytest.approx(2 * np.log(2), abs=1e-6)
    assert losses.g_loss_nsgan(zero).item() == pytest.approx(np.log(2), abs=1e-6)
    assert losses.d_loss_hinge(torch.full((3,), 2.0), torch.full((3,), -2.0)).item() == 0.0
    assert losses.d_loss_hinge(zero, zero).item() == pytest.approx(2.0)
    assert losses.d_loss_wgan(torch.ones(3), torch.zeros(3)).item() == -1.0
    # the critic 3 * sum(x) has gradient norm 3 * sqrt(n) everywhere: penalty (3*sqrt(4) - 1)^2 = 25
    real, fake = torch.randn(2, 4), torch.randn(2, 4)
    assert losses.gradient_penalty(lambda x: 3 * x.sum(1), real, fake).item() == pytest.approx(25.0)
    with pytest.raises(ValueError, match="must be one of"):
        losses.gan_losses("lsgan")


def test_vae_losses_known_values():
    mean, logvar = torch.zeros(2, 5), torch.zeros(2, 5)
    assert vae_kl(mean, logvar).item() == 0.0
    assert vae_kl(torch.ones(1, 4), torch.zeros(1, 4)).item() == pytest.approx(2.0)
    x = torch.ones(3, 1, 28, 28)
    assert losses.vae_recon_loss(torch.zeros(3, 1, 28, 28), x).item() == pytest.approx(784 * np.log(2), rel=1e-5)


def test_fid_identical_sets_is_zero_and_shift_is_measured():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16))
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid_from_features(a, a + 2.0) == pytest.approx(16 * 4.0, rel=1e-6)
    # two Gaussians with covariance I and 4I in 3 dims: tr(I + 4I - 2*2I) = 3
    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), 4 * np.eye(3)) == pytest.approx(3.0)


def _write_mnist(folder, n=20, raw=False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    ext = "" if raw else ".gz"
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", labels)
    return images, labels


@pytest.mark.parametrize("raw", [False, True])
def test_idx_round_trip(tmp_path, raw):
    images, labels = _write_mnist(tmp_path, raw=raw)
    got_images, got_labels = load_split(tmp_path, "test")
    assert (got_images == images).all() and (got_labels == labels).all()
    data = DigitsData.load(tmp_path, "train", limit=8)
    x, y = data.batch(16, torch.Generator().manual_seed(0))
    assert len(data) == 8 and x.shape == (16, 1, 28, 28) and 0 <= x.min() and x.max() <= 1 and y.max() <= 9


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x01\x02\x08\x01\x00\x00\x00\x05")
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        read_idx(bad)
    short = write_idx(tmp_path / "short", np.zeros((4, 3), np.uint8))
    short.write_bytes(short.read_bytes()[:-2])
    with pytest.raises(IdxFormatError, match="truncated"):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="MNIST-style IDX"):
        load_split(tmp_path, "train")


def test_fid_matches_scipy_sqrtm_on_non_commuting_covariances():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    assert np.abs(cov1 @ cov2 - cov2 @ cov1).max() > 1.0  # they do not commute: sqrt(S1 S2) != sqrt(S1) sqrt(S2)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    root = linalg.sqrtm(cov1 @ cov2)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root).real
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-9)
    naive = np.trace(linalg.sqrtm(cov1) @ linalg.sqrtm(cov2)).real  # the wrong formula differs
    assert abs(np.trace(root).real - naive) > 0.1
