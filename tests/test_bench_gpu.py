"""`python -m aigc_demo bench gpu --tiny` runs end to end on a CPU and writes its JSON (the
figures that matter are measured on a CUDA machine; here only that every section runs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")


def test_bench_gpu_tiny_runs_every_section(tmp_path: Path, weights_dir: Path) -> None:
    from aigc_demo.bench import gpu

    out = tmp_path / "bench.json"
    code = gpu.main(["--tiny", "--device", "cpu", "--out", str(out), "--weights", str(weights_dir),
                     "--gpts", "tiny-gpt", "--gan", "tiny-gan", "--vae", "tiny-vae-2d",
                     "--classifier", "tiny-classifier", "--tokens", "8", "--clients", "3", "--runs", "1",
                     "--dtype", "bfloat16"])
    result = json.loads(out.read_text())
    assert code == 0 and "errors" not in result, result.get("errors")
    assert result["device"] == "cpu" and set(result["sections"]) == {"lm_0.5b", "image", "digits", "our_gpts"}
    lm = result["sections"]["lm_0.5b"]["rows"]
    assert [r["what"].split(":")[1].split(",")[0].strip() for r in lm] == [
        "raw generate (dynamic cache)", "app path", "raw generate (dynamic cache)", "app path", "app path"]
    assert all(r["tokens_per_s"] > 0 and math.isfinite(r["ratio"]) for r in lm)
    assert "3 client(s)" in lm[3]["what"] and "3 streams against 1" in lm[4]["what"]
    assert lm[4]["ratio"] == pytest.approx(lm[3]["tokens_per_s"] / lm[1]["tokens_per_s"])  # N streams over 1
    assert {(r["dtype"], r["attention"]) for r in lm} == {("bfloat16", "sdpa")}  # --dtype reached the weights
    assert result["dtype"] == "torch.bfloat16" and result["settings"]["dtype"] == "bfloat16"
    image = result["sections"]["image"]["rows"][0]
    assert "32x32" in image["what"] and image["ms"] > 0 and image["dtype"] == "bfloat16"
    assert "AttnProcessor2_0" in image["attention"] and "text encoder sdpa" in image["attention"]  # SDPA kernels
    digits = result["sections"]["digits"]["rows"]
    assert len(digits) == 5 and all(r["ms"] > 0 for r in digits)
    ours = result["sections"]["our_gpts"]["rows"]
    assert ours[0]["what"].startswith("tiny-gpt:") and ours[1]["tokens_per_s"] > 0


def test_bench_gpu_reports_a_missing_model_and_keeps_going(tmp_path: Path, weights_dir: Path) -> None:
    from aigc_demo.bench import gpu

    cfg = gpu.GpuBenchSettings(tiny=True, device="cpu", tokens=4, clients=2, runs=1, weights=str(weights_dir),
                               gpts="no-such-gpt", gan="no-such-gan")
    rows = gpu.our_gpt_rows(cfg, "cpu")
    assert rows[0]["what"].startswith("no-such-gpt: skipped (no weights at")
    assert gpu.digit_rows(cfg, "cpu")[0]["what"].startswith("digits: skipped (no weights at")
