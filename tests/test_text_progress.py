"""While a hub model downloads, the Text and Code tabs show bytes and ETA, then 'loading'; the
tab hands the service a model id and a progress callback, never a model."""

from __future__ import annotations

import gradio as gr
import pytest

from aigc_demo.errors import UserError
from aigc_demo.hub import DownloadProgress
from aigc_demo.services import textgen
from aigc_demo.ui import code, generation, text


class FakeProgress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, value: float, desc: str = "") -> None:
        self.calls.append((value, desc))


SAMPLING = (5, 0.8, 0, 1.0, 1.0, 1, False)  # max tokens, temperature, top-k, top-p, penalty, seed, random


@pytest.mark.parametrize("run", [
    lambda progress: text.complete("org/model", "To be", *SAMPLING, progress=progress),
    lambda progress: code.complete_code("org/model", "def f():\n", True, *SAMPLING, progress=progress),
    lambda progress: text.chat("org/model", "hi", [], "", *SAMPLING, progress=progress),
], ids=["text", "code", "chat"])
def test_download_progress_reaches_the_page(monkeypatch: pytest.MonkeyPatch, run) -> None:
    loaded: list[str] = []

    def fake_load(ref, device=None, eager=False, on_progress=None):
        loaded.append(ref)
        for done in (0, 50 * 2**20, 100 * 2**20):
            on_progress(DownloadProgress(done, 100 * 2**20, 25 * 2**20, (100 * 2**20 - done) / (25 * 2**20)))
        raise UserError("Downloaded, then stopped here by the test.")

    monkeypatch.setattr(textgen, "serve_causal_lm", fake_load)
    progress = FakeProgress()
    with pytest.raises(gr.Error, match="stopped here by the test"):
        list(run(progress))
    assert loaded == ["org/model"]  # the service got the id and loaded it itself
    assert progress.calls[0] == (0, "Loading the model…")
    assert progress.calls[2] == (0.5, "Downloading the model: 50.0 MB of 100.0 MB, 25.0 MB/s, about 2 s left")
    assert progress.calls[-1][0] == 1.0


def test_no_model_is_a_clear_message() -> None:
    with pytest.raises(UserError, match="Pick a model first"):
        generation.model_with_progress("", FakeProgress())
