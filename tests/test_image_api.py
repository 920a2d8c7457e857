"""The Image tab through its API, as gradio_client sees the launched app."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from aigc_demo.services.imagegen import read_image_settings

# model, prompt, negative, steps, guidance, width, height, seed, random seed, number of images
SMALL = dict(negative="", steps=2, guidance=0.0, width=32, height=32)


def generate(client, model: str, prompt: str, seed: int | None = 5, count: int = 1):
    return client.predict(model, prompt, SMALL["negative"], SMALL["steps"], SMALL["guidance"],
                          SMALL["width"], SMALL["height"], seed or 0, seed is None, count,
                          api_name="/generate_image")


def test_generate_returns_pngs_with_settings_and_time_per_image(client, weights_dir: Path) -> None:
    model = "tiny-sd"
    gallery, info = generate(client, model, "a green frog", seed=5, count=2)  # the State is not returned
    assert len(gallery) == 2
    assert "s per image" in info and "first seed 5" in info
    first = gallery[0]["image"]
    path = first["path"] if isinstance(first, dict) else first
    assert Image.open(path).size == (32, 32)
    record = read_image_settings(path)
    assert record.model == model and record.settings.prompt == "a green frog" and record.settings.seed == 5
    assert gallery[1]["caption"].startswith("seed 6 ")


def test_load_settings_from_a_generated_png(client, weights_dir: Path) -> None:
    from gradio_client import handle_file

    model = "tiny-sd"
    gallery, _ = generate(client, model, "an old map", seed=42)
    image = gallery[0]["image"]
    path = image["path"] if isinstance(image, dict) else image
    values = client.predict(handle_file(path), api_name="/load_image_settings")
    _model, prompt, negative, steps, guidance, width, height, seed, random_seed, note = values
    assert (prompt, negative, steps, guidance, width, height, seed, random_seed) == (
        "an old map", "", 2, 0.0, 32, 32, 42, False)
    assert "Settings restored" in note


def test_missing_hub_model_is_a_clear_message_not_a_crash(client, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    import huggingface_hub
    from gradio_client.exceptions import AppError

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # nothing cached
    with pytest.raises(AppError) as caught:
        generate(client, "stabilityai/sd-turbo", "a cat")
    message = str(caught.value)
    assert "stabilityai/sd-turbo" in message and "not downloaded" in message
    assert "~1.3B parameters" in message and "hf download stabilityai/sd-turbo" in message


def test_empty_prompt_is_refused(client, weights_dir: Path) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Type a prompt"):
        generate(client, "tiny-sd", "  ")


def test_adding_a_bad_hub_id_is_refused(client) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not a Hugging Face model id"):
        client.predict("not an id", api_name="/add_image_model")


def test_the_default_model_draws_a_picture_offline(client) -> None:
    """Offline (the test server), with the prompt only: the tab's default model makes an image."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/generate_image"]
    model = api["parameters"][0]
    assert model["parameter_has_default"] and model["parameter_default"] == "tiny-sd"  # a pipeline here: first
    gallery, info = client.predict(prompt_text="a lighthouse", negative_text="", n_steps=2, w=32, h=32,
                                   api_name="/generate_image")
    first = gallery[0]["image"]
    assert Image.open(first["path"] if isinstance(first, dict) else first).size == (32, 32)
    assert "s per image" in info


def test_our_gan_draws_number_words_through_the_api(client) -> None:
    gallery, info = client.predict("tiny-gan", "三个七", "", 1, 0.0, 512, 256, 9, False, 1,
                                   api_name="/generate_image")
    first = gallery[0]["image"]
    path = first["path"] if isinstance(first, dict) else first
    assert Image.open(path).size == (3 * 28 * 7 + 8 * 7, 36 * 7)  # three digits, 7 px per pixel
    assert read_image_settings(path).settings.prompt == "三个七" and "first seed 9" in info


def test_a_prompt_our_models_cannot_draw_is_a_clear_message(client) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Our digit models draw only the digits 0-9"):
        client.predict("tiny-diffusion", "a red bicycle", "", 2, 1.0, 512, 256, 1, False, 1,
                       api_name="/generate_image")
