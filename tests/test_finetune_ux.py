"""Fine-tune pieces behind issue #10: status text without doubled words, a sensible loss-plot axis,
and the speed probe that gives the estimate before Start (a real probe process on a tiny model)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from aigc_demo.services.finetune_plots import x_limits
from aigc_demo.ui.finetune_status import without_status_word


@pytest.mark.parametrize("word, message, expected", [
    ("Training", "Training", ""),
    ("Stopped", "Stopped: what it learned is kept", "what it learned is kept"),
    ("Stopped", "Stopped: Stopped: what it learned is kept", "what it learned is kept"),
    ("Queued", "Waiting for a free slot", "Waiting for a free slot"),
])
def test_status_word_is_never_repeated(word: str, message: str, expected: str) -> None:
    assert without_status_word(word, message) == expected


def test_status_markdown_has_no_doubled_words() -> None:
    from aigc_demo.services.job_records import JobView
    from aigc_demo.ui.finetune_status import status_markdown

    base = dict(id="j1", family="gpt", base="b", base_title="B", data="d", settings={}, step=3, total_steps=10,
                losses={"loss": 1.0}, history=[], previews=[], steps_per_s=1.0, items_per_s=10.0, eta_s=7.0,
                elapsed_s=3.0, device="cpu", queue_position=None, error=None, saved=[], version=1,
                can_stop=True, can_resume=False, can_save=False)
    running = status_markdown(JobView(status="running", message="", **base))
    assert running.startswith("**Training** (job `j1`)") and "Training: Training" not in running
    assert 'class="aigc-progress"' in running  # themed by the app's CSS
    stopped = status_markdown(JobView(status="stopped", message="Stopped: what it learned is kept", **base))
    assert "Stopped**: what it learned is kept" in stopped and "Stopped: Stopped" not in stopped


def test_loss_axis_spans_the_run_not_a_sliver_around_one_point() -> None:
    assert x_limits([1], 60) == (0.0, 60.0)
    assert x_limits([1]) == (0.0, 1.0)
    assert x_limits([5, 10, 80], 60) == (0.0, 80.0)  # a resumed run goes past its first plan


def test_probe_measures_a_tiny_gpt(weights_dir: Path) -> None:
    """A real probe process: seconds per step, startup, preview time and memory, then cached."""
    from aigc_demo.services.finetune import base_model, default_settings
    from aigc_demo.services.finetune_probe import Prober, estimate

    base = base_model(str(weights_dir / "tiny-char-gpt"))
    settings = replace(default_settings("gpt"), steps=50, block_size=32, sample_every=10)
    prober = Prober(timeout_s=240)
    first = estimate(prober, base, settings, threads=1, cpu=True)
    assert first.seconds_per_step > 0 and first.startup_s > 0 and first.peak_mb > 50
    assert first.steps_timed >= 2 and first.previews == 6
    expected = first.startup_s + 50 * first.seconds_per_step + 6 * first.preview_s + first.export_s
    assert first.total_s == pytest.approx(expected)
    longer = estimate(prober, base, replace(settings, steps=100), threads=1, cpu=True)  # cached: no new probe
    assert longer.seconds_per_step == first.seconds_per_step and longer.total_s > first.total_s
    with pytest.raises(ValueError, match="speed probe failed|too short|not a weights folder"):
        estimate(prober, replace(base, ref=str(weights_dir / "broken-model")), settings, threads=1, cpu=True)
