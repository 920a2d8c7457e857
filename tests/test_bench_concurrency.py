"""`python -m aigc_demo bench concurrency` end to end against the app in its own process, at tiny
sizes: every row is measured and the ratios are real numbers (their size is the bench's job)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_concurrency_bench_measures_text_and_digits(weights_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from aigc_demo.bench import concurrency

    code = concurrency.main(["--weights", str(weights_dir), "--text-models", "tiny-gpt",
                             "--gan", "tiny-gan", "--device", "cpu", "--clients", "2",
                             "--tokens", "12", "--grid", "4", "--requests", "2", "--rounds", "1"])
    out = capsys.readouterr().out
    assert code == 0
    rows = __import__("json").loads(out.split("JSON ", 1)[1])
    whats = [r["what"] for r in rows]
    assert whats[0] == "text tiny-gpt: 1 client, 12 tokens" and whats[1].startswith("text tiny-gpt: 2 clients")
    assert any(w.startswith("digits: 2 clients at once") for w in whats)
    digits = [r for r in rows if r["what"].startswith("digits")]
    # the app process's CPU per grid (read from /proc in 10 ms ticks: one of two tiny rounds may read 0)
    assert len(digits) == 2 and all(0 <= r["server_cpu_ms"] < 10_000 for r in digits)
    assert any(r["server_cpu_ms"] > 0 for r in digits)
    assert "server_cpu_ms" in out.split("JSON ", 1)[0]  # a column of the printed table too
    prefill = [r for r in rows if "prompt forward pass, 2 rows / 1 row" in r["what"]]
    assert len(prefill) == 1 and 0 < prefill[0]["ttft_s"] < 10 and math.isfinite(prefill[0]["ratio"])
    text_one, text_two = rows[0], rows[1]
    assert text_one["per_s"] > 0 and text_two["per_s"] > 0 and math.isfinite(text_two["ratio"])
    assert 0 < text_one["ttft_s"] < 60
    # The service's own first-token time is read from the stats line (0.01 s steps): NaN at these sizes.
    assert all(r["ratio"] > 0 for r in rows if "measured in the service" not in r["what"])


def test_served_app_reports_a_failed_start(tmp_path: Path) -> None:
    from aigc_demo.bench.concurrency import served_app

    with pytest.raises(RuntimeError, match="the app exited at start"):
        with served_app(tmp_path, device="no-such-device", timeout_s=120):
            pass


def test_the_soak_counts_no_failure_and_no_mixed_up_stream(weights_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from aigc_demo.bench import concurrency

    code = concurrency.main(["--weights", str(weights_dir), "--text-models", "tiny-gpt", "--gan", "tiny-gan",
                             "--device", "cpu", "--clients", "2", "--skip", "text,digits", "--soak", "6",
                             "--soak-clients", "4"])
    assert code == 0
    [row] = __import__("json").loads(capsys.readouterr().out.split("JSON ", 1)[1])
    assert row["what"].startswith("soak: 4 mixed clients for ")
    text, digits = (int(n) for n in __import__("re").search(r"(\d+) text streams, (\d+) digit grids", row["what"]).groups())
    assert text > 0 and digits > 0
    assert "failures 0, mixed-up streams 0" in row["what"] and row["ratio"] == 0
