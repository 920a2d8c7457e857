"""Every endpoint of the Digits tab through gradio_client, against the launched app."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image


@pytest.fixture(scope="module")
def gan(weights_dir: Path) -> str:
    return "tiny-gan"


def _image(result) -> Image.Image:
    return Image.open(result if isinstance(result, str) else result["path"])


def test_grid_is_deterministic_by_seed(client, gan: str) -> None:
    first = _image(client.predict(["3", "5"], 20, 11, 1.0, gan, api_name="/digits_grid"))
    again = _image(client.predict(["3", "5"], 20, 11, 1.0, gan, api_name="/digits_grid"))
    other = _image(client.predict(["3", "5"], 20, 12, 1.0, gan, api_name="/digits_grid"))
    assert first.size == again.size and np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_grid_count_beyond_the_limit_is_refused_clearly(client, gan: str) -> None:
    with pytest.raises(AppError, match="greater than maximum value 100"):
        client.predict([], 10_000, 1, 1.0, gan, api_name="/digits_grid")
    hundred = _image(client.predict([], 100, 1, 1.0, gan, api_name="/digits_grid"))
    assert hundred.size == (2 * (10 * 30 + 2), 2 * (10 * 30 + 2))  # 10 x 10 cells, scaled 2x


@pytest.mark.parametrize("seed, message", [(-5, "less than minimum value 0"),
                                           (2**40, "greater than maximum value 4294967295")])
def test_grid_bad_seed_is_a_clear_message(client, gan: str, seed: int, message: str) -> None:
    with pytest.raises(AppError, match=message):
        client.predict([], 4, seed, 1.0, gan, api_name="/digits_grid")


def test_eight_concurrent_grid_requests_all_answer(client, gan: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(client.predict, ["7"], 16, seed, 1.0, gan, api_name="/digits_grid")
                for seed in range(8)]
        images = [np.asarray(_image(job.result(timeout=120))) for job in jobs]
    assert len({image.tobytes() for image in images}) == 8  # each request got its own seed's grid


def test_write_digits_returns_image_and_download(client, gan: str) -> None:
    image, download = client.predict("3.14", 7, 0.8, gan, api_name="/digits_write")
    line = _image(image)
    assert line.width > line.height * 2
    assert Path(download if isinstance(download, str) else download["path"]).suffix == ".png"


@pytest.mark.parametrize("text, message", [("", "Type some digits"), ("12ab", "remove 'a' 'b'"),
                                           ("1" * 10_000, "At most 40")])
def test_write_digits_bad_text(client, gan: str, text: str, message: str) -> None:
    with pytest.raises(AppError, match=message):
        client.predict(text, 7, 0.8, gan, api_name="/digits_write")


def test_latent_walks(client, gan: str, weights_dir: Path) -> None:
    vae = "tiny-vae-4d"
    gif, strip = client.predict("gan", 1, 2, 3, 1, 7, 6, gan, vae, api_name="/digits_walk")
    animation = _image(gif)
    assert animation.format == "GIF" and animation.n_frames == 10  # 6 steps there and back
    gif, strip = client.predict("vae", 1, 2, 3, 1, 7, 5, gan, vae, api_name="/digits_walk")
    assert _image(gif).format == "GIF"
    assert _image(strip).width > 4 * _image(strip).height  # five frames side by side
    with pytest.raises(AppError, match="greater than maximum value 64"):
        client.predict("gan", 1, 2, 3, 1, 7, 500, gan, vae, api_name="/digits_walk")


def _sketch_url(blank: bool = False) -> str:
    """What the page's sketchpad sends: the drawing as a PNG data URL."""
    import base64
    import io

    canvas = np.full((280, 280, 4), 255, dtype=np.uint8)
    if not blank:
        canvas[60:220, 130:150, :3] = 0  # a vertical stroke: a "1"
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_sketch_is_reconstructed_placed_and_classified(client, weights_dir: Path) -> None:
    seen, recon, probs, scatter, where = client.predict(
        _sketch_url(), "tiny-vae-2d", "tiny-classifier",
        api_name="/digits_sketch")
    assert _image(seen).size == _image(recon).size
    assert {c["label"] for c in probs["confidences"]} <= {str(d) for d in range(10)}
    assert "Latent code" in where


@pytest.mark.parametrize("sketch, message", [("", "blank: draw a digit first"),
                                             (None, "blank: draw a digit first"),
                                             ("data:image/png;base64,AAAA", "not an image")])
def test_blank_or_broken_sketch_gives_one_message(client, weights_dir: Path, sketch, message: str) -> None:
    """One message in the page (where the answer goes), no error in every output."""
    if sketch is None:
        sketch = _sketch_url(blank=True)
    seen, recon, probs, scatter, where = client.predict(
        sketch, "tiny-vae-2d", "tiny-classifier", api_name="/digits_sketch")
    assert message in where
    assert seen is None and recon is None and scatter is None


def test_downloads_are_named_by_content(client, gan: str, weights_dir: Path) -> None:
    _, download = client.predict("2026", 7, 0.8, gan, api_name="/digits_write")
    assert Path(download if isinstance(download, str) else download["path"]).name == "handwriting-2026-style7.png"
    grid = client.predict(["3", "5"], 4, 42, 1.0, gan, api_name="/digits_grid")
    assert Path(grid if isinstance(grid, str) else grid["path"]).name == "digits-grid-35-seed42.png"
    gif, strip = client.predict("gan", 1, 2, 3, 1, 7, 4, gan, "tiny-vae-4d", api_name="/digits_walk")
    assert Path(gif if isinstance(gif, str) else gif["path"]).name == "latent-walk-gan-digit3-seeds1-2.gif"


def test_latent_map(client, weights_dir: Path) -> None:
    manifold, scatter = client.predict("tiny-vae-2d", api_name="/digits_map")
    assert _image(manifold).width == _image(manifold).height
    with pytest.raises(AppError, match="needs a VAE with a 2-D latent"):
        client.predict("tiny-vae-4d", api_name="/digits_map")


def test_a_refused_request_does_not_fail_the_others_in_its_batch(client, gan: str) -> None:
    """Gradio fails a whole batch on one exception: a request with an id the app refuses, or one
    whose model cannot load (direct API calls), gets an empty result when batched with others, and
    they get their grids; alone, it gets its message."""
    import gradio as gr

    from aigc_demo.ui import digits as digits_ui

    (images,) = digits_ui.grid_batched([["7"], ["3"], ["1"], ["2"]], [4, 4, 4, 4], [1, 2, 3, 4], [1.0] * 4,
                                       [gan, "../../etc", "someone/not-downloaded", gan])
    assert images[1] is None and images[2] is None
    first, last = (_image(images[i]) for i in (0, 3))
    assert first.size == last.size and not np.array_equal(np.asarray(first), np.asarray(last))
    for bad in ("../../etc", "someone/not-downloaded"):
        with pytest.raises(gr.Error) as refused:
            digits_ui.grid_batched([["7"]], [4], [1], [1.0], [bad])
        assert refused.value.message
