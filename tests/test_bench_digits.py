"""The digits benchmark's parts run (tiny models, few runs) and report what they claim to."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigc_demo.bench.digits import GRID, app_throughput, model_latency
from tests.factories import make_tiny_digit_models


def test_model_latency_rows_on_tiny_models(tmp_path: Path) -> None:
    folders = make_tiny_digit_models(tmp_path)
    rows = model_latency("cpu", folders["tiny-gan"], folders["tiny-vae-2d"], folders["tiny-classifier"],
                         runs=2, warmup=1)
    assert [r["what"].split(",")[0].strip() for r in rows] == ["GAN", "same", "GAN", "VAE reconstruction",
                                                               "classifier"]
    assert all(r["device"] == "cpu" and r["ms"] > 0 for r in rows)
    assert rows[0]["per_digit_ms"] == pytest.approx(rows[0]["ms"] / GRID)


def test_app_throughput_counts_requests_and_batches(app_url: str, weights_dir: Path) -> None:
    rows = app_throughput(app_url, weights_dir / "tiny-gan", clients=2, requests=4, count=8)
    one, many = rows
    assert one["ratio"] == 1.0 and one["mean_batch"] == 1.0  # one client never shares a batch
    assert many["ratio"] == pytest.approx(one["ms_per_request"] / many["ms_per_request"])
    assert 1.0 <= many["mean_batch"] <= 2.0
    with pytest.raises(ValueError, match="multiple of clients"):
        app_throughput(app_url, weights_dir / "tiny-gan", clients=3, requests=4)
