"""Digits studio services on tiny random models saved into tmp folders (no shipped weights needed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from aigc_demo.models.classifier import DigitClassifier
from aigc_demo.models.gan import Generator
from aigc_demo.models.vae import VAE
from aigc_demo.errors import UserError
from aigc_demo.services import digits, digits_grid, digits_map, digits_sketch, digits_walk


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    Generator(z_dim=8, channels=8).save_pretrained(root / "gan")
    VAE(latent_dim=2, channels=8, hidden=16).save_pretrained(root / "vae2")
    VAE(latent_dim=4, channels=8, hidden=16).save_pretrained(root / "vae4")
    DigitClassifier(channels=8).save_pretrained(root / "clf")
    rng = np.random.default_rng(0)
    np.savez(root / "vae2" / "latents.npz", z=rng.normal(size=(200, 2)).astype(np.float16),
             labels=rng.integers(0, 10, 200).astype(np.uint8))
    return {k: root / k for k in ("gan", "vae2", "vae4", "clf")}


def test_grid_deterministic_and_clamped(folders):
    a = digits_grid.generate_grid("0123456789", 20, 5, 1.0, folder=folders["gan"], scale=1)
    b = digits_grid.generate_grid("0123456789", 20, 5, 1.0, folder=folders["gan"], scale=1)
    assert a.size == (10 * 30 + 2, 2 * 30 + 2) and np.array_equal(np.asarray(a), np.asarray(b))
    big = digits_grid.generate_grid(None, 10_000, 1, folder=folders["gan"], scale=1)
    assert big.size == (302, 302)  # clamped to MAX_GRID = 100 digits


def test_batched_grid_matches_single(folders):
    single = digits_grid.generate_grid([3], 8, 11, 0.7, folder=folders["gan"], scale=1)
    batch = digits_grid.generate_grid_batched(["random", [3]], [4, 8], [1, 11], [1.0, 0.7], folder=folders["gan"], scale=1)
    assert np.array_equal(np.asarray(batch[1]), np.asarray(single))


@pytest.mark.parametrize("seed,message", [(-1, "0 or more"), (2**40, "at most"), ("abc", "whole number"), (1.5, "whole number")])
def test_bad_seeds(folders, seed, message):
    with pytest.raises(UserError, match=message):
        digits_grid.generate_grid(None, 4, seed, folder=folders["gan"])


def test_bad_digits_and_truncation(folders):
    with pytest.raises(UserError, match="Digits must be 0-9"):
        digits_grid.generate_grid("12x", 4, 0, folder=folders["gan"])
    with pytest.raises(UserError, match="Truncation"):
        digits_grid.generate_grid(None, 4, 0, 5.0, folder=folders["gan"])


def test_handwriting(folders):
    line = digits_grid.handwriting("3.14159", seed=2, folder=folders["gan"], scale=1)
    assert line.height == 36 and line.width == 6 * 28 + 12 + 8
    assert np.array_equal(np.asarray(line), np.asarray(digits_grid.handwriting("3.14159", seed=2, folder=folders["gan"], scale=1)))
    two = digits_grid.handwriting_batched(["2026", "7"], [1, 1], [0.8, 0.8], folder=folders["gan"], scale=1)
    assert two[0].width == 4 * 28 + 8 and two[1].width == 28 + 8


@pytest.mark.parametrize("text,message", [("", "Type some digits"), ("   ", "Type some digits"),
                                          ("12ab", "remove 'a' 'b'"), ("1" * 10_000, "At most 40"),
                                          ("...", "at least one digit"), (None, "Type some digits")])
def test_handwriting_bad_text(folders, text, message):
    with pytest.raises(UserError, match=message):
        digits_grid.handwriting(text, folder=folders["gan"])


def test_walks(folders):
    walk = digits_walk.gan_walk(1, 2, 3, 6, folder=folders["gan"], scale=2)
    assert len(walk.frames) == 6 and walk.frames[0].size == (56, 56)
    gif = Image.open(io.BytesIO(walk.gif))
    assert gif.format == "GIF" and gif.n_frames == 10  # there and back
    vae = digits_walk.vae_walk(1, 7, 5, folder=folders["vae4"], gan_folder=folders["gan"])
    assert len(vae.frames) == 5 and vae.info["digits"] == [1, 7]
    with pytest.raises(UserError, match="Steps must be between"):
        digits_walk.gan_walk(1, 2, 3, 1000, folder=folders["gan"])
    with pytest.raises(UserError, match="digit 0-9"):
        digits_walk.vae_walk(1, 12, 5, folder=folders["vae4"], gan_folder=folders["gan"])


def _drawing(mode="RGBA"):
    canvas = np.full((300, 200, 4), 255, np.uint8)
    canvas[60:240, 90:110, :3] = 0  # a black "1" on white
    return canvas if mode == "RGBA" else canvas[..., :3]


@pytest.mark.parametrize("sketch", [
    {"composite": _drawing(), "layers": [], "background": None},
    _drawing("RGB"),
    Image.fromarray(_drawing()),
    Image.fromarray(255 - _drawing("RGB")[..., 0]),  # white ink on black, grayscale
])
def test_reconstruct_sketch_accepts_many_forms(folders, sketch):
    result = digits_sketch.reconstruct_sketch(sketch, folder=folders["vae2"], classifier_folder=folders["clf"])
    assert result.latent is not None and len(result.latent) == 2
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert result.reconstruction.size == result.digit.size == (168, 168)
    assert result.scatter.size[0] > 100 and result.latent_map.size == (15 * 56, 15 * 56)


def test_sketch_is_centred_like_mnist():
    x = digits_sketch.sketch_to_mnist(_drawing())
    rows, cols = np.where(x > 0.5)
    assert rows.max() - rows.min() <= 20 and abs(rows.mean() - 14) < 2 and abs(cols.mean() - 14) < 2


@pytest.mark.parametrize("sketch,message", [
    ({"composite": np.full((100, 100, 4), 255, np.uint8)}, "blank"),
    ({"composite": None, "layers": []}, "empty"),
    (np.zeros((50, 50)), "blank"),
    ("not an image", "not an image"),
    (12345, "Expected an image"),
])
def test_reconstruct_bad_sketches(folders, sketch, message):
    with pytest.raises(UserError, match=message):
        digits_sketch.reconstruct_sketch(sketch, folder=folders["vae2"], classifier_folder=folders["clf"])


def test_latent_map_needs_2d_and_missing_weights(folders, tmp_path):
    with pytest.raises(UserError, match="2-D latent"):
        digits_map.latent_map(folders["vae4"])
    with pytest.raises(UserError, match="weights are missing"):
        digits_grid.generate_grid(None, 4, 0, folder=tmp_path / "none")


def test_latent_dim_is_read_from_the_config_without_loading(folders, tmp_path):
    assert digits.latent_dim(folders["vae2"]) == 2 and digits.latent_dim(folders["vae4"]) == 4
    assert digits.latent_dim(folders["gan"]) is None  # no latent_dim in a GAN's config
    assert digits.latent_dim(tmp_path / "nothing-here") is None
