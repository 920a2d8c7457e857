"""The fine-tuning service: real jobs in real processes on tiny models, and every bad input."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigc_demo.errors import UserError
from aigc_demo.services import finetune as ft
from aigc_demo.services import finetune_data as fd
from aigc_demo.services.job_config import FinetuneConfig
from aigc_demo.services.job_records import JobView
from aigc_demo.services.jobs import FinetuneManager
from aigc_demo.services.user_models import push_to_hub
from aigc_demo.training.finetune import FinetuneSettings
from tests.factories import (
    TINY_TEXT,
    make_tiny_causal_lm,
    make_tiny_char_gpt,
    make_tiny_digit_models,
)

A, B = "session-aaaa", "session-bbbb"


def bars(count: int = 24) -> list[np.ndarray]:
    """Dark vertical bars on white paper, like a pen stroke: clearly not what a random model draws."""
    out = []
    for i in range(count):
        a = np.full((40, 32), 255, np.uint8)
        a[4:36, 12 + i % 6: 17 + i % 6] = 0
        out.append(a)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ft-models")
    folders = make_tiny_digit_models(root)
    folders["gpt"] = make_tiny_char_gpt(root / "tiny-char-gpt")
    folders["lm"] = make_tiny_causal_lm(root / "tiny-gpt2")
    return folders


@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("ft-images")
    paths = []
    for i, array in enumerate(bars()):
        path = folder / f"{i % 3}_bar{i}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def manager(tmp_path) -> FinetuneManager:
    config = FinetuneConfig(runs_dir=str(tmp_path / "runs"), user_models_dir=str(tmp_path / "user"),
                               job_threads=1, max_steps=5000, max_queued=2)
    made = FinetuneManager(config)
    yield made
    made.shutdown()


def run(manager: FinetuneManager, folder: Path, data: ft.PreparedData, timeout: float = 120, **settings) -> JobView:
    job = manager.start(A, str(folder), data, FinetuneSettings(**{"log_every": 1, "sample_every": 5, **settings}))
    view = manager.wait(A, job, timeout)
    assert view.status == "done", view.error
    return view


# ---------------------------------------------------------------- each family learns and saves

def test_gan_fine_tunes_toward_the_data_and_saves_a_loadable_generator(manager, models, image_files):
    import torch

    from aigc_demo.models.digits_io import load_generator

    data = ft.prepare_images(image_files)
    target = data.images.images.astype(np.float32).mean(0) / 255.0  # the mean training image

    def distance(folder: Path) -> float:
        G = load_generator(folder)
        with torch.no_grad():
            images = (G(torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(0)), torch.zeros(64).long()) + 1) / 2
        return float(np.abs(images.mean(0)[0].numpy() - target).mean())

    view = run(manager, models["tiny-gan"], data, steps=30, batch_size=16, lr=2e-3)
    assert [row["step"] for row in view.history] == list(range(1, 31))
    assert {"g_loss", "d_loss"} <= set(view.history[-1])
    assert any(Path(p.get("image", "")).is_file() for p in view.previews) and view.device == "cpu"
    restarted = FinetuneManager(manager.config).view(A, view.id)  # a new app reads the job's files back
    assert (restarted.status, restarted.history, restarted.previews) == ("done", view.history, view.previews)
    saved = manager.save(A, view.id, "my-gan")
    assert distance(saved) < 0.5 * distance(models["tiny-gan"])  # the samples moved toward the data
    assert (saved / "discriminator" / "model.safetensors").is_file() and not (saved / "checkpoint").exists()
    card = (saved / "README.md").read_text()
    assert "Tiny GAN" in card and "uploaded images: 24 images" in card and "g_loss" in card
    assert "my-gan (fine-tuned Tiny GAN)" in card


def test_vae_fine_tunes_lowering_its_loss(manager, models, image_files):
    from aigc_demo.models.digits_io import load_vae

    view = run(manager, models["tiny-vae-2d"], ft.prepare_images(image_files), steps=20, batch_size=16, lr=3e-3,
               kl_weight=0.5)
    first, last = view.history[0], view.history[-1]
    assert last["recon"] < 0.8 * first["recon"] and "kl" in last
    saved = manager.save(A, view.id, "my-vae")
    vae = load_vae(saved)
    assert vae.latent_dim == 2 and (saved / "latents.npz").is_file() and (saved / "sample.png").is_file()
    assert '"kl_weight": 0.5' in (saved / "finetune.json").read_text()


def test_char_gpt_full_fine_tune_lowers_train_and_val_loss(manager, models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    view = run(manager, models["gpt"], ft.prepare_text(TINY_TEXT * 3, None), steps=30, batch_size=8, lr=3e-3,
               block_size=32, sample_every=10)
    first, last = view.history[0], view.history[-1]
    assert last["loss"] < first["loss"] - 0.3 and last["val_loss"] < first["val_loss"]
    assert any(isinstance(p.get("text"), str) and p["text"] for p in view.previews)
    saved = manager.save(A, view.id, "my-gpt")
    model, tok = AutoModelForCausalLM.from_pretrained(saved), AutoTokenizer.from_pretrained(saved)
    out = model.generate(**tok("To be", return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert out.shape[1] > 5
    from aigc_demo.catalog import discover_local

    spec = discover_local(saved.parent, "user")[0]
    assert (spec.family, spec.tab, spec.task, spec.error) == ("gpt", "text", "text-generation", None)


def test_lora_on_a_causal_lm_lowers_the_loss_and_saves_merged_weights(manager, models):
    from transformers import AutoModelForCausalLM

    view = run(manager, models["lm"], ft.prepare_text(TINY_TEXT * 3, None), steps=40, batch_size=8, lr=2e-2,
               block_size=32, lora_rank=4, sample_every=20)
    assert view.family == "lora"
    # A random tiny base (tied, untouched embeddings) moves slowly, but clearly beyond batch noise.
    first, last = view.history[0], view.history[-1]
    assert last["loss"] < first["loss"] - 0.08 and last["val_loss"] < first["val_loss"] - 0.05
    saved = manager.save(A, view.id, "my-lora")
    assert (saved / "adapter" / "adapter_config.json").is_file()
    assert AutoModelForCausalLM.from_pretrained(saved).config.n_layer == 2


# ---------------------------------------------------------------- stop, resume, queue, isolation

def test_stop_resume_queue_and_isolation(manager, models, image_files):
    long_run = FinetuneSettings(steps=4000, batch_size=4, lr=1e-3, log_every=1, sample_every=0)
    images = ft.prepare_images(image_files)
    job = manager.start(A, str(models["tiny-vae-4d"]), images, long_run)
    with pytest.raises(ValueError, match="already have a job"):
        manager.start(A, str(models["tiny-gan"]), images, long_run)
    queued = manager.start(B, str(models["gpt"]), ft.prepare_text(TINY_TEXT * 3, None), FinetuneSettings(steps=5))
    view_b = manager.view(B, queued)
    assert view_b.status == "queued" and view_b.queue_position == 1 and "position 1" in view_b.message
    with pytest.raises(ValueError, match="No such job"):
        manager.view(B, job)  # another visitor's job is invisible
    assert manager.stop(B, queued).startswith("Removed from the queue")
    with pytest.raises(ValueError, match="not running"):
        manager.stop(B, queued)

    manager.wait(A, job, 120, until=("running",))
    while manager.view(A, job).step < 5:
        pass
    manager.stop(A, job)
    with pytest.raises(ValueError, match="Already stopping"):
        manager.stop(A, job)
    stopped = manager.wait(A, job, 60)
    assert stopped.status == "stopped" and 5 <= stopped.step < 4000
    assert stopped.can_save and stopped.can_resume
    with pytest.raises(ValueError, match="not running"):
        manager.stop(A, job)

    manager.resume(A, job)
    manager.wait(A, job, 120, until=("running",))
    while manager.view(A, job).step <= stopped.step + 3:
        pass
    resumed = manager.view(A, job)
    steps = [row["step"] for row in resumed.history]
    assert steps == sorted(set(steps)) and steps[0] == 1  # one history, continued after the stop
    manager.stop(A, job)
    final = manager.wait(A, job, 60)
    assert final.status == "stopped" and final.step > stopped.step

    saved = manager.save(A, job, "kept")
    with pytest.raises(ValueError, match="already have a model named kept"):
        manager.save(A, job, "kept")
    with pytest.raises(ValueError, match="shipped model"):
        manager.save(A, job, "tiny-gan", shipped_names=("tiny-gan",))
    with pytest.raises(ValueError, match="letters, digits"):
        manager.save(A, job, "../escape")
    assert manager.user_dirs(A) == [str(saved.parent)] and manager.user_dirs(B) == []
    with pytest.raises(ValueError, match="only your own"):
        manager.zip_model(B, folder=str(saved))
    archive = zipfile.ZipFile(manager.zip_model(A, job))
    names = archive.namelist()
    assert "kept/config.json" in names and "kept/model.safetensors" in names
    assert not any("checkpoint" in n for n in names)
    manager.config.publish_user_models = True
    assert str(saved.parent) in manager.user_dirs(B)


def crash(request, events, stop) -> None:
    """A job process that dies hard, like a segfault or the OOM killer."""
    os.abort()


def test_a_crashing_job_is_reported_and_the_manager_survives(tmp_path, models, image_files):
    config = FinetuneConfig(runs_dir=str(tmp_path / "runs"), user_models_dir=str(tmp_path / "user"))
    manager = FinetuneManager(config, target=crash)
    data = ft.prepare_images(image_files)
    job = manager.start(A, str(models["tiny-vae-2d"]), data, FinetuneSettings(steps=5))
    view = manager.wait(A, job, 60)
    assert view.status == "failed" and "ended unexpectedly" in view.error and "app is fine" in view.error
    second = manager.start(A, str(models["tiny-vae-2d"]), data, FinetuneSettings(steps=5))  # still serving
    assert manager.wait(A, second, 60).status == "failed"


# ---------------------------------------------------------------- bad input, no process needed

@pytest.mark.parametrize("lr, message", [(0, "positive number"), (1e9, "diverge at once"),
                                         (float("nan"), "positive number")])
def test_learning_rates_that_cannot_train_are_refused(lr, message):
    with pytest.raises(ValueError, match=message):
        FinetuneSettings(lr=lr).check()


def test_other_settings_are_checked(manager, models, image_files):
    with pytest.raises(ValueError, match="at most 5000"):
        manager.start(A, str(models["tiny-gan"]), ft.prepare_images(image_files), FinetuneSettings(steps=5001))
    with pytest.raises(ValueError, match="learns from text"):
        manager.start(A, str(models["gpt"]), ft.prepare_images(image_files), FinetuneSettings(steps=5))
    with pytest.raises(ValueError, match="learns from images"):
        manager.start(A, str(models["tiny-gan"]), ft.prepare_text(TINY_TEXT, None), FinetuneSettings(steps=5))
    with pytest.raises(ValueError, match="cannot be fine-tuned"):
        ft.base_model(str(models["tiny-classifier"]))
    with pytest.raises(ValueError, match="offline"):  # a hub LM that is not downloaded, no network
        ft.base_model("someone-else/not-downloaded-lm")
    assert ft.base_model(str(models["lm"])).family == "lora"
    with pytest.raises(UserError, match="at most 5000"):  # shown to the visitor as it is
        ft.make_settings({"steps": 5001}, max_steps=5000)
    assert ft.make_settings({"steps": 7}, family="gan") == replace(ft.default_settings("gan"), steps=7)
    with pytest.raises(ValueError, match="no session"):
        manager.start("../x", str(models["tiny-gan"]), ft.prepare_images(image_files), FinetuneSettings(steps=5))


def test_bad_text_is_refused_clearly(tmp_path):
    cases = {"empty.txt": (b"", "is empty"), "binary.txt": (b"\x00\x01\x02abc" * 100, "binary"),
             "latin1.txt": ("café ".encode("latin-1") * 100, "not UTF-8"),
             "blank.txt": (b" \n\t " * 100, "only whitespace"), "short.txt": (b"hello", "at least 200")}
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=message):
            fd.load_text(None, str(path))
    with pytest.raises(ValueError, match="paste some text"):
        fd.load_text("   ", None)
    big = tmp_path / "big.txt"
    big.write_text("a" * 3000)
    with pytest.raises(ValueError, match="at most"):
        fd.load_text(None, str(big), fd.DataLimits(max_upload_bytes=1000))
    assert fd.load_text(TINY_TEXT, None) == TINY_TEXT


def _zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_unsafe_or_empty_zips_are_refused(tmp_path):
    image = _png_bytes(bars(1)[0])
    with pytest.raises(ValueError, match="holds no images"):
        fd.load_images([_zip(tmp_path / "text.zip", {"a.txt": b"hello", "b/readme.md": b"x"})])
    with pytest.raises(ValueError, match="path traversal"):
        fd.load_images([_zip(tmp_path / "evil.zip", {"ok.png": image, "../../evil.png": image})])
    with pytest.raises(ValueError, match="path traversal"):
        fd.load_images([_zip(tmp_path / "abs.zip", {"/etc/evil.png": image})])
    bomb = _zip(tmp_path / "bomb.zip", {"a.png": image, "huge.bmp": b"\0" * (40 * 2**20)})
    assert Path(bomb).stat().st_size < 2**20  # tiny on disk, 40 MB unpacked
    with pytest.raises(ValueError, match="zip bomb"):
        fd.load_images([bomb], fd.DataLimits(max_zip_total_bytes=20 * 2**20, max_zip_member_bytes=50 * 2**20))
    with pytest.raises(ValueError, match="at most 16 MB per image"):
        fd.load_images([bomb])
    with pytest.raises(ValueError, match="at most 3 per zip"):
        fd.load_images([_zip(tmp_path / "many.zip", {f"{i}.png": image for i in range(4)})], fd.DataLimits(max_zip_members=3))
    with pytest.raises(ValueError, match="not a readable zip"):
        (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04garbage")
        fd.read_zip(tmp_path / "broken.zip")
    ok = fd.load_images([_zip(tmp_path / "good.zip", {"digits/7/a.png": image, "3_b.png": image, "c.png": image,
                                                       "__MACOSX/._c.png": b"junk"})])
    assert len(ok) == 3 and sorted(ok.labels.tolist()) == [-1, 3, 7]


def test_images_of_any_mode_and_size_become_mnist_digits(tmp_path):
    stroke = bars(1)[0]
    rgba = np.zeros((60, 50, 4), np.uint8)
    rgba[10:50, 20:28] = (0, 0, 0, 255)  # black ink on a transparent canvas (a sketchpad export)
    images = {
        "l.png": Image.fromarray(stroke), "one.png": Image.fromarray(stroke).convert("1"),
        "p.gif": Image.fromarray(stroke).convert("P"), "rgb.jpg": Image.fromarray(stroke).convert("RGB"),
        "rgba.png": Image.fromarray(rgba), "la.png": Image.fromarray(rgba).convert("LA"),
        "cmyk.tiff": Image.fromarray(stroke).convert("CMYK"),
        "i16.png": Image.fromarray(stroke.astype(np.uint16) * 257), "f.tiff": Image.fromarray(stroke.astype(np.float32)),
        "wide.png": Image.fromarray(np.pad(stroke, ((0, 0), (900, 900)), constant_values=255)),
        "tiny.png": Image.fromarray(stroke[::8, ::8]),
    }
    paths = []
    for name, image in images.items():
        path = tmp_path / name
        image.save(path)
        paths.append(str(path))
    blank = tmp_path / "blank.png"
    Image.new("L", (30, 30), 255).save(blank)
    not_image = tmp_path / "fake.png"
    not_image.write_bytes(b"not a png")
    result = fd.load_images(paths + [str(blank), str(not_image)])
    assert result.images.shape == (len(images), 28, 28) and result.images.dtype == np.uint8
    for array in result.images:  # ink bright in the middle, background black, as MNIST
        assert array[:, :3].max() < 30 and array.max() > 200
    assert len(result.skipped) == 2 and any("blank" in s for s in result.skipped)
    assert "2 files skipped" in result.summary()
    assert result.preview().size[0] > 28
    with pytest.raises(ValueError, match="None of the files"):
        fd.load_images([str(blank), str(not_image)])


def test_sketches_build_a_per_session_dataset(manager):
    canvas = np.full((280, 280, 4), 0, np.uint8)
    canvas[60:220, 130:150] = (0, 0, 0, 255)
    for digit in (1, 1, None):
        images = manager.add_sketch(A, {"composite": canvas}, digit)
    assert len(images) == 3 and images.labels.tolist() == [1, 1, -1]
    assert manager.sketches(B) is None
    with pytest.raises(ValueError, match="blank"):
        manager.add_sketch(A, {"composite": np.zeros((280, 280, 4), np.uint8)}, 1)
    assert manager.prepare_sketches(A).summary.startswith("your drawings: 3 images")
    manager.clear_sketches(A)
    with pytest.raises(ValueError, match="No drawings yet"):
        manager.prepare_sketches(A)


def test_builtin_sets_local_download_and_clear_failure(tmp_path):
    from aigc_demo.data.idx import write_idx

    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    images = np.zeros((10, 28, 28), np.uint8)
    images[:, 10:18, 10:18] = 255
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    assert fd.builtin_folder("fashion-mnist", allow_download=False, roots=[tmp_path / "data"]) == folder
    preview, summary = fd.builtin_preview(folder, "fashion-mnist")
    assert "10 images" in summary and preview.size[0] > 28
    with pytest.raises(ValueError, match="not on this machine.*downloads are off"):
        fd.builtin_folder("mnist", allow_download=False, roots=[tmp_path / "data"])
    with pytest.raises(ValueError, match="could not be downloaded"):
        fd.download_builtin("mnist", tmp_path / "dl", timeout=2, mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(ValueError, match="checksum mismatch"):
        fd.verify_idx(folder / "train-labels-idx1-ubyte.gz", fd.CHECKSUMS["mnist"]["train-labels-idx1-ubyte"])


def test_push_to_hub_offline_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="offline"):
        push_to_hub(tmp_path, "someone/model", "hf_token")
    with pytest.raises(ValueError, match="access token"):
        push_to_hub(tmp_path, "someone/model", "")
