"""Text to image through the real loading path, with a tiny random Stable Diffusion pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigc_demo.services.imagegen import (ImageRecord, ImageSettings, generate_images, model_defaults,
                                         read_image_settings, save_png)
from tests.factories import TINY_SD_DEFAULTS

SMALL = dict(steps=2, guidance=0.0, width=32, height=32)


@pytest.fixture(scope="module")
def tiny_sd(weights_dir: Path) -> str:
    return str(weights_dir / "tiny-sd")


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_images_have_the_asked_size_count_and_per_step_progress(tiny_sd: str, tmp_path: Path) -> None:
    steps: list[tuple[int, int]] = []
    batch = generate_images(tiny_sd, ImageSettings("a red cat", num_images=2, seed=7, **SMALL),
                            on_step=lambda done, total: steps.append((done, total)), out_dir=tmp_path)
    assert steps == [(1, 2), (2, 2)]
    assert [img.seed for img in batch.images] == [7, 8]
    for img in batch.images:
        assert Path(img.path).parent == tmp_path and img.path.endswith(".png")
        assert pixels(img.path).shape == (32, 32, 3)
        assert img.seconds > 0
    assert batch.seconds_per_image == pytest.approx(batch.seconds / 2)
    assert batch.device == "cpu" and batch.model == tiny_sd and batch.revision is None


def test_same_seed_same_image_and_image_i_is_seed_plus_i(tiny_sd: str, tmp_path: Path) -> None:
    pair = generate_images(tiny_sd, ImageSettings("a tree", num_images=2, seed=11, **SMALL), out_dir=tmp_path)
    again = generate_images(tiny_sd, ImageSettings("a tree", seed=11, **SMALL), out_dir=tmp_path / "a")
    second = generate_images(tiny_sd, ImageSettings("a tree", seed=12, **SMALL), out_dir=tmp_path / "b")
    other = generate_images(tiny_sd, ImageSettings("a tree", seed=99, **SMALL), out_dir=tmp_path / "c")
    first_px, second_px = pixels(pair.images[0].path), pixels(pair.images[1].path)
    assert np.abs(first_px.astype(int) - pixels(again.images[0].path)).max() <= 1
    assert np.abs(second_px.astype(int) - pixels(second.images[0].path)).max() <= 1
    assert np.abs(first_px.astype(int) - pixels(other.images[0].path)).max() > 1


def test_random_seed_is_reported_so_it_can_be_reused(tiny_sd: str, tmp_path: Path) -> None:
    batch = generate_images(tiny_sd, ImageSettings("a boat", **SMALL), out_dir=tmp_path)
    seed = batch.settings.seed
    assert isinstance(seed, int) and batch.images[0].seed == seed
    again = generate_images(tiny_sd, ImageSettings("a boat", seed=seed, **SMALL), out_dir=tmp_path / "x")
    assert np.array_equal(pixels(batch.images[0].path), pixels(again.images[0].path))


def test_png_metadata_round_trip(tiny_sd: str, tmp_path: Path) -> None:
    batch = generate_images(tiny_sd, ImageSettings("a blue house", negative_prompt="fog", seed=3,
                                                   steps=2, guidance=2.5, width=40, height=32), out_dir=tmp_path)
    record = read_image_settings(batch.images[0].path)
    assert record.model == tiny_sd and record.revision is None
    s = record.settings
    assert (s.prompt, s.negative_prompt, s.seed, s.steps, s.guidance, s.width, s.height, s.num_images) == (
        "a blue house", "fog", 3, 2, 2.5, 40, 32, 1)
    params = Image.open(batch.images[0].path).text["parameters"]
    assert "Seed: 3" in params and "Size: 40x32" in params and "CFG scale: 2.5" in params


def test_restored_settings_make_the_same_image(tiny_sd: str, tmp_path: Path) -> None:
    first = generate_images(tiny_sd, ImageSettings("a lamp", seed=21, **SMALL), out_dir=tmp_path)
    record = read_image_settings(first.images[0].path)
    again = generate_images(record.model, record.settings, out_dir=tmp_path / "again")
    assert np.array_equal(pixels(first.images[0].path), pixels(again.images[0].path))


def test_reading_settings_from_other_files_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(ValueError, match="has no generation settings"):
        read_image_settings(plain)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png could not be read as an image"):
        read_image_settings(text)
    broken = tmp_path / "broken.png"
    save_png(Image.new("RGB", (8, 8)), ImageRecord("m", None, ImageSettings("x")), broken)
    assert read_image_settings(broken).settings.prompt == "x"


@pytest.mark.parametrize("changes, message", [
    (dict(prompt="   "), "Type a prompt"),
    (dict(steps=0), "Steps must be a whole number from 1 to 100"),
    (dict(steps=101), "Steps must be"),
    (dict(guidance=-1), "Guidance must be from 0 to 30"),
    (dict(guidance=float("nan")), "Guidance must be a number"),
    (dict(num_images=9), "Number of images must be a whole number from 1 to 8"),
    (dict(seed=-5), "The seed must be a whole number"),
    (dict(prompt="x" * 2001), "keep it under 2000"),
])
def test_bad_settings_are_refused_with_a_clear_message(changes: dict, message: str) -> None:
    settings = ImageSettings(**{"prompt": "a cat", **SMALL, **changes})
    with pytest.raises(ValueError, match=message):
        settings.checked()


def test_sizes_snap_to_multiples_of_8_within_range() -> None:
    fixed, notices = ImageSettings("a cat", width=37, height=5000, negative_prompt="dogs").checked()
    assert (fixed.width, fixed.height) == (32, 2048)
    assert any("Width 37 became 32" in n for n in notices)
    assert any("Height 5000 became 2048" in n for n in notices)
    assert any("negative prompt has no effect" in n for n in notices)


def test_bad_model_references_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        generate_images(str(tmp_path / "nope"), ImageSettings("a cat", **SMALL))
    with pytest.raises(ValueError, match="not a Hugging Face model id"):
        generate_images("not a repo id", ImageSettings("a cat", **SMALL))


def test_defaults_come_from_the_card_or_the_catalog(tiny_sd: str) -> None:
    assert model_defaults(tiny_sd) == TINY_SD_DEFAULTS
    assert model_defaults("stabilityai/sd-turbo") == {"steps": 1, "guidance": 0.0, "width": 512, "height": 512}
