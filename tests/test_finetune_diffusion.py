"""Fine-tuning the diffusion model (issue #15): a real job on the tiny factory base, its "Train on"
choices and settings, the pre-flight estimate, the saved model as the visitor's, and bad settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigc_demo.catalog import ModelSpec, discover_local
from aigc_demo.data.idx import write_idx
from aigc_demo.errors import UserError
from aigc_demo.modelcard import write_model_card
from aigc_demo.services import finetune as ft
from aigc_demo.services.finetune_probe import probe_key
from aigc_demo.services.job_config import FinetuneConfig
from aigc_demo.services.jobs import FinetuneManager
from aigc_demo.training.finetune import FinetuneSettings, JobRequest, build_task, default_settings
from tests.factories import make_tiny_diffusion

A = "session-diff-aaaa"


def strokes(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Two kinds of digit made here: a vertical bar (labelled 1) and a hollow square (labelled 7)."""
    images = np.zeros((count, 28, 28), np.uint8)
    labels = np.zeros(count, np.uint8)
    for i in range(count):
        shift = i % 5 - 2
        if i % 2:
            images[i, 4:24, 12 + shift:16 + shift] = 255
            labels[i] = 1
        else:
            images[i, 6:22, 6 + shift:22 + shift] = 255
            images[i, 10:18, 10 + shift:18 + shift] = 0
            labels[i] = 7
    return images, labels


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_tiny_diffusion(tmp_path_factory.mktemp("ft-diffusion") / "tiny-diffusion")


@pytest.fixture(scope="module")
def builtin(tmp_path_factory) -> ft.PreparedData:
    """A tiny built-in set in MNIST's own IDX layout, as `builtin_folder` finds one."""
    folder = tmp_path_factory.mktemp("ft-data") / "mnist"
    folder.mkdir()
    images, labels = strokes(64)
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    return ft.PreparedData("builtin", "MNIST training split (test copy: 64 images)", folder=str(folder),
                           dataset="mnist")


@pytest.fixture
def manager(tmp_path) -> FinetuneManager:
    config = FinetuneConfig(runs_dir=str(tmp_path / "runs"), user_models_dir=str(tmp_path / "user"),
                            job_threads=1, max_steps=5000)
    made = FinetuneManager(config)
    yield made
    made.shutdown()


def unet_weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))


# ---------------------------------------------------------------- a real job

def test_a_diffusion_job_trains_previews_and_saves_a_model_that_samples_digits(manager, base, builtin):
    from aigc_demo.models.diffusion import initial_noise, load_diffusion

    settings = FinetuneSettings(steps=24, batch_size=16, lr=2e-3, log_every=1, sample_every=8, sampler_steps=2,
                                unlabelled_digit=-1)
    job = manager.start(A, str(base), builtin, settings)
    view = manager.wait(A, job, 180)
    assert view.status == "done", view.error
    assert view.family == "diffusion" and view.device == "cpu"
    assert [row["step"] for row in view.history] == list(range(1, 25))
    assert {"mse", "weighted_loss"} <= set(view.history[-1])
    first = np.mean([row["mse"] for row in view.history[:6]])
    last = np.mean([row["mse"] for row in view.history[-6:]])
    assert last < 0.9 * first, (first, last)  # it learns to predict the noise of these digits

    grids = [p for p in view.previews if Path(p.get("image", "")).is_file()]
    assert [p["step"] for p in grids][:3] == [8, 16, 24]
    with Image.open(grids[0]["image"]) as grid:  # two classes in the data: each in 2 columns of 4, 2-px gaps
        assert grid.size == (4 * 30 + 2, 4 * 30 + 2)

    saved = manager.save(A, job, "my-diffusion")
    before, after = unet_weights(base), unet_weights(saved)
    assert before.keys() == after.keys() and any(not np.array_equal(before[k], after[k]) for k in before)
    model = load_diffusion(saved)
    digits = model.sample([1, 7, 1, 7], initial_noise(4, 0), steps=2)
    assert digits.shape == (4, 28, 28) and digits.dtype == np.uint8 and digits.std() > 0
    spec = discover_local(saved.parent, "user")[0]
    assert (spec.family, spec.tab, spec.task, spec.error) == ("diffusion", "digits", "image-generation", None)
    assert spec.title == "my-diffusion (fine-tuned Tiny diffusion)" and spec.sample_image
    assert '"sampler_steps": 2' in (saved / "finetune.json").read_text()
    # the visitor's own diffusion model can be fine-tuned again, listed as theirs
    choices = ft.finetunable([spec], A)
    assert choices == [("my-diffusion (fine-tuned Tiny diffusion) (yours)", "yours/my-diffusion")]
    assert ft.base_model(str(saved)).family == "diffusion"


def test_unlabelled_images_train_the_no_digit_class_or_the_chosen_digit(tmp_path, base):
    from accelerate import Accelerator

    from aigc_demo.models.diffusion import NULL_CLASS

    npz = tmp_path / "drawings.npz"
    images, _ = strokes(6)
    np.savez(npz, images=images, labels=np.array([-1, -1, -1, -1, 3, -1]))

    def task_for(digit: int):
        req = JobRequest(job_id="j", family="diffusion", base=str(base), base_title="Tiny diffusion",
                         data={"kind": "images", "path": str(npz)}, data_summary="your drawings",
                         settings=replace(default_settings("diffusion"), unlabelled_digit=digit, batch_size=4),
                         out_dir=str(tmp_path / f"out{digit}"), cpu=True)
        task, _ = build_task(req)
        task.build(Accelerator(cpu=True))
        return task

    default = task_for(-1)
    assert default.config.init_from == str(base) and default.config.sampling_steps == 4  # the base's own
    assert default.data.labels.tolist() == [NULL_CLASS] * 4 + [3, NULL_CLASS]
    assert default.present == [3] and default.preview_columns() == ([3, 3, 3, 3], False)
    as_five = task_for(5)
    assert sorted(set(as_five.data.labels.tolist())) == [3, 5] and as_five.present == [3, 5]
    grid = as_five.preview()  # 4 x 4 digits at the model's own 4 sampler steps
    assert grid.size == (4 * 30 + 2, 4 * 30 + 2)
    as_five.present = list(range(10))  # all ten digits: one column each, 4 rows sharing their noise
    assert as_five.preview_columns() == (list(range(10)), True)
    assert as_five.preview().size == (10 * 30 + 2, 4 * 30 + 2)


# ---------------------------------------------------------------- what the tab offers for it

def test_train_on_choices_and_settings_follow_the_diffusion_family(base, tmp_path):
    from aigc_demo.ui.finetune import default_source, family_view, settings_from, source_choices

    assert [value for _, value in source_choices("diffusion")] == ["images", "sketches", "builtin"]
    assert default_source("diffusion") == "images"
    shown = [column.visible for column in family_view("diffusion")]
    # gan, vae, text, lora, diffusion settings; image samples, text samples
    assert shown == [False, False, False, False, True, True, False]
    assert family_view("gan")[4].visible is False

    values = settings_from(150, 32, 5e-4, "adam", "nsgan", 1.0, 0, 25, 128, 8, 0, 6, -1, family="diffusion")
    assert (values["unlabelled_digit"], values["sampler_steps"]) == (-1, 6)
    assert settings_from(150, 32, 5e-4, "adam", "nsgan", 1.0, 0, 25, 128, 8, 4, 6, -1,
                         family="gan")["unlabelled_digit"] == 4  # the GAN's own control
    d = ft.default_settings("diffusion")
    assert (d.unlabelled_digit, d.sampler_steps, d.optimizer) == (-1, 0, "adam")
    assert ft.make_settings({"optimizer": "rmsprop"}, family="diffusion").optimizer == "rmsprop"
    assert ft.preview_steps(ft.base_model(str(base))) == 4

    hub_sd = ModelSpec(id="stabilityai/sd-turbo", title="SD-Turbo", task="text-to-image", family="diffusion",
                       source="hub", tab="image", repo_id="stabilityai/sd-turbo")
    shipped = ModelSpec(id="tiny-diffusion", title="Tiny diffusion", task="image-generation", family="diffusion",
                        source="shipped", tab="digits", folder=str(base))
    assert ft.finetunable([hub_sd, shipped]) == [("Tiny diffusion", "tiny-diffusion")]
    pipeline = tmp_path / "tiny-sd"  # a text-to-image pipeline folder is of the diffusion family too
    (pipeline / "unet").mkdir(parents=True)
    (pipeline / "config.json").write_text("{}")
    write_model_card(pipeline, gallery={"title": "Tiny SD", "task": "text-to-image", "family": "diffusion",
                                        "tab": "image", "metrics": []}, body="# Tiny SD")
    with pytest.raises(UserError, match="cannot be fine-tuned here.*digit diffusion model"):
        ft.base_model(str(pipeline))


@pytest.mark.parametrize("values, message", [
    ({"sampler_steps": 51}, "Sampler steps must be between 0"),
    ({"sampler_steps": -1}, "Sampler steps must be between 0"),
    ({"unlabelled_digit": 10}, "must be 0-9"),
    ({"lr": 0}, "positive number"),
    ({"batch_size": 0}, "Batch size must be between 1 and 1024"),
])
def test_bad_diffusion_settings_get_a_clear_message(values, message):
    with pytest.raises(UserError, match=message):
        ft.make_settings(values, max_steps=5000, family="diffusion")


def test_no_digit_class_is_diffusion_only_and_said_in_chinese_too(manager, base, builtin):
    from aigc_demo.ui.messages import localize

    with pytest.raises(UserError, match='A GAN has no "no digit" class') as err:
        ft.make_settings({"unlabelled_digit": -1}, family="gan")
    assert localize(str(err.value), "zh").startswith("GAN 没有")
    with pytest.raises(UserError) as err:
        ft.make_settings({"sampler_steps": 99}, family="diffusion")
    assert localize(str(err.value), "zh") == "采样步数须在 0（用模型自己的步数）到 50 之间（当前为 99）。"
    with pytest.raises(ValueError, match="at most 5000"):  # the server's limits hold for diffusion jobs too
        manager.start(A, str(base), builtin, replace(default_settings("diffusion"), steps=5001))
    with pytest.raises(ValueError, match="learns from images"):
        manager.start(A, str(base), ft.prepare_text("word " * 100, None), default_settings("diffusion"))


# ---------------------------------------------------------------- the estimate before Start

def test_the_estimate_runs_real_diffusion_steps(base):
    from aigc_demo.services.finetune_probe import Prober, estimate

    model = ft.base_model(str(base))
    settings = replace(default_settings("diffusion"), steps=40, batch_size=8, sample_every=10, sampler_steps=2)
    prober = Prober(timeout_s=240)
    first = estimate(prober, model, settings, threads=1, cpu=True)
    assert first.seconds_per_step > 0 and first.preview_s > 0 and first.startup_s > 0 and first.peak_mb > 50
    assert first.previews == 5 and first.steps_timed >= 2
    assert first.export_s > 0  # the saved sample grid is part of a job's time
    assert first.total_s == pytest.approx(first.startup_s + 40 * first.seconds_per_step + 5 * first.preview_s
                                          + first.export_s)
    longer = estimate(prober, model, replace(settings, steps=80), threads=1, cpu=True)  # cached: no new probe
    assert longer.seconds_per_step == first.seconds_per_step
    assert probe_key(model, settings, 1, True) != probe_key(model, replace(settings, sampler_steps=8), 1, True)


def test_the_estimate_is_within_a_quarter_of_the_jobs_measured_time(manager, base, builtin):
    """Issue 21: the pre-flight estimate of a diffusion job against the same job run for real (start to done)."""
    import time

    from aigc_demo.services.finetune_probe import Prober, estimate

    settings = replace(default_settings("diffusion"), steps=60, batch_size=16, sample_every=20, sampler_steps=4)
    guess = estimate(Prober(timeout_s=240), ft.base_model(str(base)), settings, threads=1, cpu=True)
    began = time.perf_counter()
    job = manager.start(A, str(base), builtin, settings)
    view = manager.wait(A, job, 240)
    measured = time.perf_counter() - began
    assert view.status == "done", view.error
    assert abs(guess.total_s - measured) <= 0.25 * measured, (
        f"estimated {guess.total_s:.1f} s (startup {guess.startup_s:.1f}, steps {60 * guess.seconds_per_step:.1f}, "
        f"{guess.previews} previews {guess.previews * guess.preview_s:.1f}, export {guess.export_s:.1f}), "
        f"measured {measured:.1f} s")


def test_every_preview_asked_for_is_drawn_whatever_the_log_interval(tmp_path):
    from aigc_demo.training.finetune import train_settings

    def loop(sample_every: int, log_every: int = 5) -> int:
        settings = replace(default_settings("diffusion"), sample_every=sample_every, log_every=log_every)
        req = JobRequest(job_id="j", family="diffusion", base="b", base_title="B", data={}, data_summary="",
                         settings=settings, out_dir=str(tmp_path))
        return train_settings(req).log_every

    assert (loop(4), loop(25), loop(10), loop(0), loop(6, 4)) == (1, 5, 5, 5, 2)
