"""While a hub model downloads, the Text and Code tabs show bytes and ETA, then 'loading'."""

from __future__ import annotations

import pytest

from aigc_demo.hub import DownloadProgress
from aigc_demo.services import textgen
from aigc_demo.ui import generation


class FakeProgress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, value: float, desc: str = "") -> None:
        self.calls.append((value, desc))


def test_download_progress_reaches_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_load(ref, device=None, eager=False, on_progress=None):
        for done in (0, 50 * 2**20, 100 * 2**20):
            on_progress(DownloadProgress(done, 100 * 2**20, 25 * 2**20, (100 * 2**20 - done) / (25 * 2**20)))
        return "model", "tokenizer"

    monkeypatch.setattr(textgen, "load_causal_lm", fake_load)
    progress = FakeProgress()
    assert generation.load_with_progress("org/model", progress) == ("model", "tokenizer")
    assert progress.calls[0] == (0, "Loading the model…")
    assert progress.calls[2] == (0.5, "Downloading the model: 50.0 MB of 100.0 MB, 25.0 MB/s, about 2 s left")
    assert progress.calls[-1][0] == 1.0


def test_no_model_is_a_clear_message() -> None:
    with pytest.raises(ValueError, match="Pick a model first"):
        generation.load_with_progress("", FakeProgress())
