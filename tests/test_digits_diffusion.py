"""The Digits tab's diffusion part: the service (grids, 'watch it denoise', checks), the step
sentences, and both endpoints through gradio_client against the launched app (tiny models)."""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from aigc_demo.errors import UserError
from aigc_demo.services import digits_diffusion as diff
from aigc_demo.ui import digits_diffusion as ui
from aigc_demo.ui.strings import in_lang

MODEL, CLASSIFIER = "tiny-diffusion", "tiny-classifier"


@pytest.fixture(scope="module")
def folder(weights_dir: Path) -> Path:
    return weights_dir / MODEL


@pytest.fixture(scope="module")
def classifier(weights_dir: Path) -> Path:
    return weights_dir / CLASSIFIER


@pytest.fixture(scope="module")
def watched(folder: Path, classifier: Path) -> diff.DenoiseResult:
    return diff.denoise("27", seed=3, steps=5, guidance=1.0, folder=folder, classifier_folder=classifier)


def _cells(columns: int, rows: int, scale: int = 2) -> tuple[int, int]:
    """The size of a grid of 28-px cells with 2-px padding, drawn `scale` times."""
    return scale * (columns * 30 + 2), scale * (rows * 30 + 2)


# ---------------------------------------------------------------- service
def test_grid_shape_and_model_defaults(folder: Path) -> None:
    assert diff.model_defaults(folder) == (4, 1.0)  # the tiny factory's config.json
    assert diff.model_defaults(None) == (10, 1.0)
    grid = diff.diffusion_grid("37", 16, 5, folder=folder)
    assert grid.size == _cells(8, 2)  # 16 digits: 8 columns, 2 rows, scaled 2x
    digits = diff.diffusion_digits(np.array([3, 7, 1]), seed=5, steps=3, folder=folder)
    assert digits.shape == (3, 28, 28) and digits.dtype == np.uint8


def test_digits_depend_on_the_seed_only(folder: Path) -> None:
    labels = np.array([1, 4, 9])
    first = diff.diffusion_digits(labels, seed=11, steps=3, folder=folder)
    again = diff.diffusion_digits(labels, seed=11, steps=3, folder=folder)
    other = diff.diffusion_digits(labels, seed=12, steps=3, folder=folder)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_request_is_the_same_alone_and_batched(folder: Path) -> None:
    mine = diff.grid_request("3", 5, 1)
    alone = diff.diffusion_digits_batched([mine], 4, 1.0, folder)[0]
    batched = diff.diffusion_digits_batched([diff.grid_request("7", 9, 2), mine, diff.grid_request(None, 3, 8)],
                                            4, 1.0, folder)
    assert [len(images) for images in batched] == [9, 5, 3]
    assert np.array_equal(alone, batched[1])


def test_guidance_above_one_runs_and_changes_the_digits(folder: Path) -> None:
    labels = np.array([2, 5])
    plain = diff.diffusion_digits(labels, seed=4, steps=3, guidance=1.0, folder=folder)
    guided = diff.diffusion_digits(labels, seed=4, steps=3, guidance=3.0, folder=folder)
    assert guided.shape == plain.shape and not np.array_equal(plain, guided)


@pytest.mark.parametrize("value, message", [
    (0, "Sampler steps must be from 1 to 50 (got 0)"), (51, "Sampler steps must be from 1 to 50 (got 51)"),
    ("ten", "Sampler steps must be a whole number from 1 to 50"), (2.5, "Sampler steps must be a whole number"),
    (float("inf"), "Sampler steps must be a whole number"), (None, "Sampler steps must be a whole number")])
def test_bad_steps_are_refused_clearly(value: object, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        diff.check_steps(value)


@pytest.mark.parametrize("value, message", [
    (-1, "Guidance must be a number from 0 to 5 (got -1)"), (9, "Guidance must be a number from 0 to 5 (got 9)"),
    (float("nan"), "Guidance must be a number from 0 to 5"), ("x", "Guidance must be a number from 0 to 5")])
def test_bad_guidance_is_refused_clearly(value: object, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        diff.check_guidance(value)


def test_digits_to_watch() -> None:
    assert diff.check_watch("2026", 0) == [2, 0, 2, 6]
    assert diff.check_watch("7", 0) == [7]
    assert diff.check_watch(" ", 5) == diff.check_watch("", 5) and len(diff.check_watch("", 5)) == 1
    with pytest.raises(UserError, match="At most 6 digits can be watched at once \\(got 7\\)"):
        diff.check_watch("1234567", 0)
    for bad in ("7a", "-3", "٣", ["x"], {"a": 1}):
        with pytest.raises(UserError, match="Type up to 6 digits to watch"):
            diff.check_watch(bad, 0)


def test_denoise_keeps_every_step(watched: diff.DenoiseResult) -> None:
    steps, n = 5, 2
    assert watched.labels == [2, 7] and watched.steps == steps
    assert watched.noisy.shape == watched.predicted.shape == (steps, n, 28, 28)
    assert watched.final.shape == (n, 28, 28)
    # The strip: steps + 1 columns (each step, then the finished digits), two rows per digit.
    width, height = _cells(steps + 1, 2 * n)
    assert watched.strip.size == (width, height + diff.STRIP_HEADER)  # and a band for the step numbers
    gif = Image.open(__import__("io").BytesIO(watched.gif))
    assert gif.n_frames == steps + 1
    assert len(watched.readings) == steps + 1
    shares = [r.noise_share for r in watched.readings]
    assert all(a > b for a, b in zip(shares, shares[1:])) and shares[-1] == 0.0  # noise only goes down
    for reading in watched.readings:
        assert reading.asked == [2, 7] and len(reading.read_as) == n
        assert all(0.0 <= p <= 1.0 for p in reading.confidence + reading.asked_probability)
    assert watched.readings[0].change is None
    # The change is measured on the predictions: check one by hand.
    expected = np.abs(watched.predicted[2].astype(int) - watched.predicted[1]).mean() / 255
    assert watched.readings[2].change == pytest.approx(expected)
    # ... and the strip's last column is the finished digit (upper-left cell of that column).
    cell = np.asarray(watched.strip)[diff.STRIP_HEADER:][2 * 2:2 * 30, 2 * (steps * 30 + 2):2 * (steps * 30 + 30)][::2, ::2]
    assert np.array_equal(cell, watched.final[0])


def _reading(read: list[int], asked: list[int], step: int = 3, steps: int = 10, **kw: object) -> diff.Reading:
    values = dict(timestep=500, noise_share=0.583, confidence=[0.934] * len(read),
                  asked_probability=[0.051] * len(read), change=0.0421)
    values.update(kw)
    return diff.Reading(step=step, steps=steps, read_as=read, asked=asked, **values)


def test_step_sentences_say_the_measured_numbers() -> None:
    with in_lang("en"):
        ok = ui.step_sentence(_reading([7], [7]))
        other = ui.step_sentence(_reading([1], [7]))
        row = ui.step_sentence(_reading([2, 0, 2, 1], [2, 0, 2, 6], change=None))
        done = ui.step_sentence(_reading([7], [7], step=11, noise_share=0.0))
        missed = ui.step_sentence(_reading([1], [7], step=11, noise_share=0.0))
    assert ok.startswith("**Step 3/10**") and "58% of the sample's variance is still noise" in ok
    assert "already reads as a 7 (classifier: 93%)" in ok and "4.2% of the pixel range" in ok
    assert "reads as a 1 (classifier: 93%), not yet the 7 asked for (5%)" in other
    assert "reads as 2 0 2 1: 3 of 4 as asked (mean classifier confidence 93%)" in row and "pixel range" not in row
    assert done == "**Finished**: no noise left; the result reads as a 7 (classifier: 93%)."
    assert missed == "**Finished**: no noise left; the result reads as a 1 (classifier: 93%), not the 7 asked for (5%)."
    with in_lang("zh"):
        assert "58%" in ui.step_sentence(_reading([7], [7])) and "第 3/10 步" in ui.step_sentence(_reading([7], [7]))


def test_first_read_is_where_the_guess_settles(watched: diff.DenoiseResult) -> None:
    readings = [_reading(r, [7], step=i + 1, steps=4) for i, r in enumerate([[1], [7], [7], [7]])]
    readings.append(_reading([7], [7], step=5, steps=4))
    result = diff.DenoiseResult([7], 0, 4, 1.0, readings, watched.noisy, watched.predicted, watched.final,
                                watched.strip, watched.gif)
    assert result.first_read == 2
    result.readings[2] = _reading([4], [7], step=3, steps=4)  # it wandered off again: settles at step 4
    assert result.first_read == 4


def test_steps_markdown_has_a_line_per_step(watched: diff.DenoiseResult) -> None:
    with in_lang("en"):
        text = ui.steps_markdown(watched)
    lines = [line for line in text.splitlines() if re.match(r"^\d+\. ", line)]
    assert len(lines) == watched.steps + 1
    first = watched.readings[0]
    assert f"{100 * first.noise_share:.0f}% of the sample's variance" in lines[0]
    assert lines[0].startswith("1. **Step 1/5**") and lines[-1].startswith("6. **Finished**")


# ---------------------------------------------------------------- API
def _path(result: object) -> str:
    return result if isinstance(result, str) else result["path"]  # type: ignore[index]


def _grid(client, digits: list[str], count: int, seed: int, steps: int = 2) -> np.ndarray:
    image, note = client.predict(digits, count, seed, steps, 1.0, MODEL, api_name="/digits_diffusion")
    assert re.fullmatch(rf"{count} digit\(s\) in \d+\.\d\d s: {steps} steps × 1 model call\(s\), "
                        r"\*\*\d+ ms per digit\*\*\.", note), note  # measured, per request
    return np.asarray(Image.open(_path(image)))


def test_api_grid_is_the_same_alone_twice_and_batched(client) -> None:
    alone = _grid(client, ["3", "8"], 16, 21)
    assert alone.shape == _cells(8, 2)[::-1]
    assert np.array_equal(alone, _grid(client, ["3", "8"], 16, 21))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # waiting requests are batched together
        jobs = [pool.submit(_grid, client, ["3", "8"], 16, seed) for seed in (21, 22, 23, 24)]
        grids = [job.result(timeout=300) for job in jobs]
    assert np.array_equal(grids[0], alone)
    assert len({grid.tobytes() for grid in grids}) == 4


def test_api_denoise_returns_strip_gif_and_sentences(client) -> None:
    strip, gif, text = client.predict("27", 3, 4, 1.0, MODEL, CLASSIFIER, api_name="/digits_denoise")
    width, height = _cells(5, 4)
    assert Image.open(_path(strip)).size == (width, height + diff.STRIP_HEADER)
    animation = Image.open(_path(gif))
    assert animation.format == "GIF" and animation.n_frames == 5
    assert Path(_path(gif)).name == "diffusion-denoise-27-seed3-4steps.gif"
    assert re.match(r"Sampled 2 digit\(s\) in \d+\.\d\d s \(4 steps × 1 model call\(s\)\)\.", text)
    lines = [line for line in text.splitlines() if re.match(r"^\d+\. ", line)]
    assert len(lines) == 5 and "**Step 1/4**" in lines[0] and "% of the sample's variance is still noise" in lines[0]


def test_api_refuses_an_unknown_model_and_bad_values(client) -> None:
    with pytest.raises(AppError, match="not one this app offers"):
        client.predict(["3"], 4, 1, 2, 1.0, "../../etc", api_name="/digits_diffusion")
    with pytest.raises(AppError, match="not one this app offers"):
        client.predict("7", 1, 2, 1.0, "no-such-model", CLASSIFIER, api_name="/digits_denoise")
    with pytest.raises(AppError, match="greater than maximum value 50"):
        client.predict("7", 1, 500, 1.0, MODEL, CLASSIFIER, api_name="/digits_denoise")
    with pytest.raises(AppError, match="Sampler steps must be a whole number from 1 to 50"):
        client.predict("7", 1, 2.5, 1.0, MODEL, CLASSIFIER, api_name="/digits_denoise")
    with pytest.raises(AppError, match="At most 6 digits can be watched"):
        client.predict("12345678", 1, 2, 1.0, MODEL, CLASSIFIER, api_name="/digits_denoise")
    assert _grid(client, ["1"], 1, 1).shape == _cells(1, 1)[::-1]  # and it still draws


# ---------------------------------------------------------------- gallery
def test_a_diffusion_folder_is_a_gallery_card_that_opens_its_part(tmp_path: Path) -> None:
    """As `train diffusion` writes it: unet/, scheduler/, config.json, a card and sample.png, and no
    top-level model.safetensors. It is listed, counted, shown with its sample, runnable and loadable."""
    from aigc_demo.catalog import discover_local
    from aigc_demo.modelcard import write_model_card
    from aigc_demo.services import availability, digits
    from aigc_demo.services.gallery import models_for_tab
    from aigc_demo.ui.cards import card_html
    from tests.factories import make_tiny_diffusion

    folder = make_tiny_diffusion(tmp_path / "diffusion-mnist", title="Digits by diffusion")
    Image.fromarray(np.full((60, 60), 255, np.uint8)).save(folder / "sample.png")
    write_model_card(folder, gallery={"title": "Digits by diffusion", "task": "image-generation",
                                      "family": "diffusion", "tab": "digits", "sample": "sample.png",
                                      "metrics": [{"name": "FID / floor", "value": 1.2, "lower_is_better": True}]},
                     body="# Digits by diffusion")
    assert not (folder / "model.safetensors").exists()
    (spec,) = discover_local(tmp_path)
    assert spec.error is None and (spec.family, spec.tab) == ("diffusion", "digits")
    unet = digits.load_diffusion(folder).unet
    assert spec.parameters == sum(p.numel() for p in unet.parameters())  # read from unet/*.safetensors
    assert spec.size_mb and spec.size_mb > 0 and spec.sample_image == str(folder / "sample.png")
    page = card_html(spec, ["gallery", "digits"])
    assert 'data-tab="digits" data-part="diffusion"' in page and 'class="card-sample"' in page
    assert "FID / floor <b>1.2</b>" in page
    assert availability.check(str(folder)).runnable
    assert models_for_tab(tmp_path, "digits", families=("diffusion",)) == [("Digits by diffusion", "diffusion-mnist")]


def test_a_card_open_picks_the_part_of_its_family() -> None:
    class Event:
        def __init__(self, data: dict) -> None:
            self._data = data

    assert ui.open_from_card(Event({"tab": "digits", "part": "diffusion"})).selected == "digits-diffusion"
    assert ui.open_from_card(Event({"tab": "digits", "part": "gan"})).selected == "digits-grid"
    for other in ({"tab": "text", "part": "diffusion"}, {"tab": "digits", "part": "vae"}, {}):
        assert not hasattr(ui.open_from_card(Event(other)), "selected")  # gr.skip(): nothing changes


def test_a_model_that_cannot_load_fails_only_its_own_requests_in_a_batch(client) -> None:
    import gradio as gr

    images, notes = ui.diffusion_batched(["3", "4"], [2, 2], [1, 2], [2, 2], [1.0, 1.0],
                                         ["tiny-diffusion", "someone/not-downloaded"])
    assert images[0] is not None and images[1] is None and notes[1] == ""
    with pytest.raises(gr.Error):  # alone, it gets its message
        ui.diffusion_batched(["4"], [2], [2], [2], [1.0], ["someone/not-downloaded"])
