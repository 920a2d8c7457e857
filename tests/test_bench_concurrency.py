"""`python -m aigc_demo bench concurrency` end to end against the app in its own process, at tiny
sizes: every row is measured and the ratios are real numbers (their size is the bench's job)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_concurrency_bench_measures_text_and_digits(weights_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from aigc_demo.bench import concurrency

    code = concurrency.main(["--weights", str(weights_dir), "--text-models", str(weights_dir / "tiny-gpt"),
                             "--gan", str(weights_dir / "tiny-gan"), "--device", "cpu", "--clients", "2",
                             "--tokens", "12", "--grid", "4", "--requests", "2", "--rounds", "1"])
    out = capsys.readouterr().out
    assert code == 0
    rows = __import__("json").loads(out.split("JSON ", 1)[1])
    whats = [r["what"] for r in rows]
    assert whats[0] == "text tiny-gpt: 1 client, 12 tokens" and whats[1].startswith("text tiny-gpt: 2 clients")
    assert any(w.startswith("digits: 2 clients at once") for w in whats)
    text_one, text_two = rows[0], rows[1]
    assert text_one["per_s"] > 0 and text_two["per_s"] > 0 and math.isfinite(text_two["ratio"])
    assert 0 < text_one["ttft_s"] < 60
    assert all(r["ratio"] > 0 for r in rows)


def test_served_app_reports_a_failed_start(tmp_path: Path) -> None:
    from aigc_demo.bench.concurrency import served_app

    with pytest.raises(RuntimeError, match="the app exited at start"):
        with served_app(tmp_path, device="no-such-device", timeout_s=120):
            pass
