"""Every endpoint of the Digits tab through gradio_client, against the launched app."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
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


def _sketch_file(tmp_path: Path, blank: bool = False) -> str:
    canvas = np.full((280, 280, 4), 255, dtype=np.uint8)
    if not blank:
        canvas[60:220, 130:150, :3] = 0  # a vertical stroke: a "1"
    path = tmp_path / "sketch.png"
    Image.fromarray(canvas).save(path)
    return str(path)


def test_sketch_is_reconstructed_placed_and_classified(client, weights_dir: Path, tmp_path: Path) -> None:
    sketch = {"background": None, "layers": [], "composite": handle_file(_sketch_file(tmp_path))}
    seen, recon, probs, scatter, where = client.predict(
        sketch, "tiny-vae-2d", "tiny-classifier", api_name="/digits_sketch")
    assert _image(seen).size == _image(recon).size
    assert {c["label"] for c in probs["confidences"]} <= {str(d) for d in range(10)}
    assert "Latent code" in where


def test_blank_sketch_is_refused_clearly(client, weights_dir: Path, tmp_path: Path) -> None:
    sketch = {"background": None, "layers": [], "composite": handle_file(_sketch_file(tmp_path, blank=True))}
    with pytest.raises(AppError, match="blank"):
        client.predict(sketch, "tiny-vae-2d", "tiny-classifier",
                       api_name="/digits_sketch")


def test_latent_map(client, weights_dir: Path) -> None:
    manifold, scatter = client.predict("tiny-vae-2d", api_name="/digits_map")
    assert _image(manifold).width == _image(manifold).height
    with pytest.raises(AppError, match="needs a VAE with a 2-D latent"):
        client.predict("tiny-vae-4d", api_name="/digits_map")
