"""Fine-tuning the diffusion model through the app's API (gradio_client): the visitor's own images,
progress with sample grids, the estimate, saving as the visitor's model, and clear refusals."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image


def drawings(folder: Path, count: int = 12) -> list[str]:
    """Dark strokes on white paper named like `1_bar3.png` (labelled 1) and `sketch3.png` (no label)."""
    paths = []
    for i in range(count):
        paper = np.full((40, 32), 255, np.uint8)
        paper[4:36, 12 + i % 5:17 + i % 5] = 0
        path = folder / (f"1_bar{i}.png" if i % 2 else f"sketch{i}.png")
        Image.fromarray(paper).save(path)
        paths.append(str(path))
    return paths


def test_a_diffusion_fine_tune_through_the_api(app_url: str, weights_dir: Path, tmp_path: Path) -> None:
    client = Client(app_url, verbose=False)  # its own session
    files = [handle_file(p) for p in drawings(tmp_path)]
    status = client.predict(model_ref="tiny-diffusion", source_kind="images", text_value="", text_path=None,
                            files=files, steps_n=12, batch_size=8, learning_rate=2e-3, sample_every_n=4,
                            sampler_steps_n=2, diffusion_digit=-1, api_name="/finetune_start")
    assert "job `" in status
    deadline = time.monotonic() + 180
    while True:
        view = client.predict("", api_name="/finetune_status")
        if view["status"] in ("done", "failed", "stopped") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert view["status"] == "done", view["error"]
    assert view["family"] == "diffusion" and view["step"] == view["total_steps"] == 12
    assert {"mse", "weighted_loss"} <= set(view["history"][-1])
    assert [p["step"] for p in view["previews"] if p["image"]] == [4, 8, 12]
    assert view["settings"]["unlabelled_digit"] == -1 and view["settings"]["sampler_steps"] == 2
    assert "12 images" in view["data"] and "6 labelled (1)" in view["data"]

    assert "api-diffusion" in client.predict("api-diffusion", api_name="/finetune_save")
    mine = {m["id"]: m for m in client.predict(api_name="/models")}
    assert mine["yours/api-diffusion"]["family"] == "diffusion"
    assert mine["yours/api-diffusion"]["tab"] == "digits"

    figures = client.predict(model_ref="yours/api-diffusion", steps=30, batch_size=8, api_name="/finetune_estimate")
    assert figures["steps"] == 30 and figures["seconds_per_step"] > 0 and figures["total_s"] > 0


def test_bad_diffusion_settings_through_the_api(app_url: str, weights_dir: Path, tmp_path: Path) -> None:
    client = Client(app_url, verbose=False)
    files = [handle_file(p) for p in drawings(tmp_path, 2)]
    with pytest.raises(Exception, match="99 is greater than maximum value 50"):  # the slider's own limit
        client.predict(model_ref="tiny-diffusion", source_kind="images", text_value="", text_path=None, files=files,
                       sampler_steps_n=99, api_name="/finetune_start")
    with pytest.raises(Exception, match="learns from images"):
        client.predict(model_ref="tiny-diffusion", source_kind="text", text_value="word " * 100, text_path=None,
                       files=None, api_name="/finetune_start")
    with pytest.raises(Exception, match="12.*not in the list of choices"):
        client.predict(model_ref="tiny-diffusion", source_kind="images", text_value="", text_path=None, files=files,
                       diffusion_digit=12, api_name="/finetune_start")
