"""A fine-tune request becomes the family's normal training task; job events and errors as plain values."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aigc_demo.errors import UserError
from aigc_demo.training.engine import ProgressEvent
from aigc_demo.training.finetune import JobRequest, build_task, default_settings, describe_error, event_dict


def request(family: str, base: str, data: dict, out_dir: str) -> JobRequest:
    return JobRequest(job_id="j1", family=family, base=base, base_title="Base", data=data,
                      data_summary="uploaded images: 3 images", settings=default_settings(family), out_dir=out_dir)


def test_a_fine_tune_is_the_familys_own_task_started_from_the_base(tmp_path):
    from tests.factories import make_tiny_digit_models

    from aigc_demo.training.gan import GanTask
    from aigc_demo.training.vae import VaeTask

    models = make_tiny_digit_models(tmp_path)
    npz = tmp_path / "images.npz"
    np.savez(npz, images=np.zeros((3, 28, 28), np.uint8), labels=np.array([-1, 2, 5]))
    gan, settings = build_task(request("gan", str(models["tiny-gan"]), {"kind": "images", "path": str(npz)},
                                       str(tmp_path / "out")))
    assert type(gan) is GanTask and gan.config.init_from == str(models["tiny-gan"])
    assert gan.config.data_dir == str(npz) and gan.origin.base_title == "Base"
    assert gan.origin.settings["steps"] == settings.steps == default_settings("gan").steps
    vae, _ = build_task(request("vae", str(models["tiny-vae-2d"]),
                                {"kind": "builtin", "dir": "D", "dataset": "mnist", "limit": 7}, str(tmp_path / "o")))
    assert type(vae) is VaeTask and (vae.config.data_dir, vae.config.limit, vae.config.latent_dim) == ("D", 7, 2)
    with pytest.raises(UserError, match="trains on images, not text"):
        build_task(request("gan", str(models["tiny-gan"]), {"kind": "text", "path": "t.txt"}, str(tmp_path / "x")))
    with pytest.raises(UserError, match="not a weights folder"):
        build_task(request("vae", str(tmp_path / "nothing"), {"kind": "images", "path": str(npz)}, str(tmp_path / "y")))


def test_unlabelled_images_in_an_npz_load_as_minus_one(tmp_path):
    from aigc_demo.data.idx import DigitsData

    npz = tmp_path / "images.npz"
    np.savez(npz, images=np.full((3, 28, 28), 7, np.uint8), labels=np.array([-1, 2, 5]))
    data = DigitsData.load(npz)
    assert tuple(data.images.shape) == (3, 1, 28, 28) and data.labels.tolist() == [-1, 2, 5]


def test_errors_meant_for_the_visitor_are_shown_as_they_are():
    assert describe_error(UserError("Give more text.")) == "Give more text."
    assert describe_error(ValueError("shape mismatch")) == "ValueError: shape mismatch"
    assert describe_error(RuntimeError("CUDA out of memory")).startswith("Out of memory")


def test_context_length_fits_the_text_or_says_how_much_is_needed():
    from aigc_demo.training.finetune_tasks import fit_block

    assert fit_block(10_000, 128, 64) == 64 and fit_block(10_000, 32, 256) == 32
    assert fit_block(500, 128, 256) == 500 // 10 * 9 // 10 - 2  # capped by the validation tenth
    with pytest.raises(UserError, match="too short"):
        fit_block(50, 64, 256)


def test_progress_events_are_plain_dicts_with_png_previews():
    preview = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
    event = ProgressEvent(step=5, total_steps=10, losses={"loss": 1.5}, elapsed_s=2.0, steps_per_s=2.5,
                          items_per_s=80.0, eta_s=float("inf"), device="cpu", preview=preview)
    data = event_dict(event)
    assert (data["type"], data["step"], data["losses"], data["eta_s"]) == ("progress", 5, {"loss": 1.5}, None)
    with Image.open(io.BytesIO(data["preview_png"])) as read:
        assert np.array_equal(np.asarray(read), np.asarray(preview))
    assert event_dict(ProgressEvent(1, 2, {}, 0.1, 1.0, 1.0, 1.0, "cpu", preview="ROMEO:"))["preview_text"] == "ROMEO:"
