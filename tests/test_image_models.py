"""The Image tab's models: best-that-runs-now first, our digit models as text-to-image, and hub
pipelines loaded from their fp16 files on a GPU (with a fallback when a repo has none)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from aigc_demo.errors import UserError
from aigc_demo.services import availability, image_models
from aigc_demo.services.digits_image import crisp_scale, digit_family
from aigc_demo.services.image_models import FETCH, NOT_READY, OURS, READY, image_models as list_models, make_images
from aigc_demo.services.imagegen import ImageSettings, read_image_settings
from tests.factories import make_tiny_digit_models, make_tiny_sd_pipeline


@pytest.fixture(scope="module")
def digits_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with our digit models and no text-to-image pipeline (a fresh offline start)."""
    root = tmp_path_factory.mktemp("digits-only")
    make_tiny_digit_models(root)
    return root


@pytest.fixture(scope="module")
def with_pipeline(digits_only: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("with-sd")
    for name in ("tiny-gan", "tiny-diffusion"):
        shutil.copytree(digits_only / name, root / name)
    make_tiny_sd_pipeline(root / "tiny-sd")
    return root


@pytest.fixture(autouse=True)
def empty_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No hub model is downloaded here, whatever this machine's cache holds."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))


def offline(monkeypatch: pytest.MonkeyPatch, is_offline: bool, cuda: bool = False) -> None:
    monkeypatch.setattr(image_models, "hub_offline", lambda: is_offline)
    monkeypatch.setattr(image_models, "device_is_cuda", lambda: cuda)
    monkeypatch.setattr(availability, "on_cuda", lambda: cuda)


def test_offline_without_a_pipeline_our_gan_is_the_default(digits_only: Path, monkeypatch) -> None:
    offline(monkeypatch, True)
    models = list_models(digits_only)
    assert [(m.ref, m.rank) for m in models] == [
        ("tiny-gan", OURS), ("tiny-diffusion", OURS),
        ("stabilityai/sd-turbo", NOT_READY), ("stabilityai/sdxl-turbo", NOT_READY)]
    assert models[0].ready and models[0].ours
    assert {m.why for m in models if not m.ours} == {"offline"}
    assert models[2].download_gb == 5.2  # what a CPU machine would fetch: the fp32 files


def test_online_a_hub_model_that_can_be_fetched_comes_before_ours(digits_only: Path, monkeypatch) -> None:
    offline(monkeypatch, False)
    models = list_models(digits_only)
    assert [(m.ref, m.rank, m.why) for m in models] == [
        ("stabilityai/sd-turbo", FETCH, "download"), ("tiny-gan", OURS, ""), ("tiny-diffusion", OURS, ""),
        ("stabilityai/sdxl-turbo", NOT_READY, "needs_gpu")]  # suited to a GPU, and this is a CPU
    offline(monkeypatch, False, cuda=True)
    models = list_models(digits_only)
    assert [m.ref for m in models][:2] == ["stabilityai/sd-turbo", "stabilityai/sdxl-turbo"]
    assert models[0].download_gb == 2.6  # the fp16 files on CUDA, not 5.2 GB
    assert availability.hub_download_gb("stabilityai/sd-turbo") == 2.6


def test_a_pipeline_here_is_the_default(with_pipeline: Path, monkeypatch) -> None:
    offline(monkeypatch, True)
    models = list_models(with_pipeline)
    assert [(m.ref, m.rank) for m in models][:3] == [("tiny-sd", READY), ("tiny-gan", OURS), ("tiny-diffusion", OURS)]


def test_our_models_are_told_apart_by_their_cards(with_pipeline: Path) -> None:
    assert digit_family(with_pipeline / "tiny-gan") == "gan"
    assert digit_family(with_pipeline / "tiny-diffusion") == "diffusion"
    assert digit_family(with_pipeline / "tiny-sd") is None  # a diffusers pipeline
    assert digit_family(with_pipeline / "nothing-here") is None and digit_family(None) is None


@pytest.mark.parametrize("name", ["tiny-gan", "tiny-diffusion"])
def test_our_models_draw_the_digits_a_prompt_names_at_a_size_one_can_see(digits_only: Path, tmp_path: Path,
                                                                          name: str) -> None:
    folder = str(digits_only / name)
    settings = ImageSettings(prompt="三个七", steps=2, guidance=1.0, width=512, height=256, seed=3, num_images=2)
    batch = make_images(folder, settings, out_dir=tmp_path, record_as=name)
    assert [img.seed for img in batch.images] == [3, 4]
    sizes = {Image.open(img.path).size for img in batch.images}
    assert sizes == {(3 * 28 * 7 + 8 * 7, 36 * 7)}  # three 28-px cells and margins, 7 px per pixel
    first = Image.open(batch.images[0].path).convert("L")
    assert first.getextrema() == (0, 255) or first.getextrema()[1] - first.getextrema()[0] > 100
    record = read_image_settings(batch.images[0].path)
    assert record.model == name and record.settings.prompt == "三个七" and record.settings.seed == 3
    again = make_images(folder, settings, out_dir=tmp_path, record_as=name)
    assert Image.open(again.images[0].path).tobytes() == first.tobytes()  # a seed makes it again
    other = make_images(folder, ImageSettings(prompt="seven", seed=3, height=256), out_dir=tmp_path)
    assert Image.open(other.images[0].path).size == (28 * 7 + 8 * 7, 36 * 7)


def test_an_unparseable_prompt_says_what_our_models_draw(digits_only: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="Our digit models draw only the digits 0-9.*'cat' is not one"):
        make_images(str(digits_only / "tiny-gan"), ImageSettings(prompt="a cat"), out_dir=tmp_path)


def test_enlargement_is_whole_pixels_and_bounded() -> None:
    assert crisp_scale(120, 256) == 7 and crisp_scale(120, 32) == 2 and crisp_scale(120, 5000) == 16
    assert crisp_scale(1128, 1024) == 1  # 40 digits: never wider than 2048 px


# ---- hub pipelines in half precision: the fp16 variant where there is one -----------------------

@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny pipeline saved twice: full precision only, and with its fp16 variant files only."""
    import torch
    from diffusers import StableDiffusionPipeline

    root = tmp_path_factory.mktemp("variants")
    plain = make_tiny_sd_pipeline(root / "plain")
    half = root / "fp16-only"
    StableDiffusionPipeline.from_pretrained(plain).to(torch.float16).save_pretrained(
        half, variant="fp16", safe_serialization=True)
    return plain, half


def test_half_precision_loads_the_fp16_variant_else_falls_back(pipelines: tuple[Path, Path]) -> None:
    import torch

    from aigc_demo.hub import TEXT_TO_IMAGE, ModelSource, load_text_to_image

    plain, half = pipelines
    assert sorted(p.name for p in half.glob("*/*.safetensors")) == [
        "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.safetensors",
        "model.fp16.safetensors"]
    # the fp16-only folder loads only when the variant is asked for: this proves it was
    pipe = load_text_to_image(ModelSource("fp16-only", half, TEXT_TO_IMAGE, None, None), dtype=torch.float16)
    assert pipe.unet.dtype == torch.float16
    # a repo without the variant: its full-precision files, cast to half precision
    pipe = load_text_to_image(ModelSource("plain", plain, TEXT_TO_IMAGE, None, None), dtype=torch.float16)
    assert pipe.unet.dtype == torch.float16 and pipe.text_encoder.dtype == torch.float16
    # in full precision (CPU) the variant is not asked for
    pipe = load_text_to_image(ModelSource("plain", plain, TEXT_TO_IMAGE, None, None), dtype=torch.float32)
    assert pipe.unet.dtype == torch.float32
