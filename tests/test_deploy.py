"""Deploying to a Space: every file the deploy sends is one the Hub accepts, and on a Space the
GPU-bound service functions carry spaces.GPU (checked with a stand-in `spaces` module)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aigc_demo import deploy
from aigc_demo.settings import PROJECT_ROOT

# The service functions that run models on the GPU, with the seconds each may hold it (docs/deploy-space.md).
GPU_BOUND = {
    "aigc_demo.services.digits_grid.generate_grid_batched": 30,
    "aigc_demo.services.digits_grid.handwriting_batched": 30,
    "aigc_demo.services.digits_walk.gan_walk": 30,
    "aigc_demo.services.digits_walk.vae_walk": 30,
    "aigc_demo.services.digits_sketch.reconstruct_sketch": 30,
    "aigc_demo.services.digits_map.latent_map": 30,
    "aigc_demo.services.digits_diffusion.diffusion_grid_batched": 30,
    "aigc_demo.services.digits_diffusion.denoise": 30,
    "aigc_demo.generation.stream.stream_with": 120,
    "aigc_demo.generation.inside.look_inside_with": 30,
    "aigc_demo.services.imagegen.generate_images": 120,
}


def test_every_file_the_deploy_sends_is_allowed() -> None:
    plan = deploy.plan(PROJECT_ROOT)
    assert deploy.check(plan) == []
    names = {f.as_posix() for f in plan.files}
    assert {"app.py", "README.md", "requirements.txt", ".gitattributes", "docs/api.md"} <= names  # README's links
    assert "weights/gpt-python/model.safetensors" in names  # 24.6 MB: through LFS/Xet
    assert not any(n.startswith(("tests/", "runs/", "data/", ".git/")) or "__pycache__" in n for n in names)
    patterns = deploy.lfs_patterns(PROJECT_ROOT)
    for rel in plan.files:
        size = (PROJECT_ROOT / rel).stat().st_size
        assert size < deploy.HUB_PLAIN_LIMIT or deploy.is_lfs(rel, patterns), rel


def test_the_check_refuses_what_the_hub_would(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "README.md").write_text("# x\n")
    (tmp_path / "requirements.txt").write_text("gradio\n")
    weights = tmp_path / "weights" / "big"
    weights.mkdir(parents=True)
    (weights / "model.safetensors").write_bytes(b"\0" * (deploy.HUB_PLAIN_LIMIT + 1))
    (weights / "sample.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (weights / "notes.txt").write_text("x" * (deploy.HUB_PLAIN_LIMIT + 1))
    (tmp_path / "aigc_demo").mkdir()
    (tmp_path / "aigc_demo" / "state.pkl").write_bytes(b"\x80\x04")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "log.txt").write_text("not sent\n")
    plan = deploy.plan(tmp_path)
    assert "runs/log.txt" not in {f.as_posix() for f in plan.files}
    problems = deploy.check(plan)
    assert len(problems) == 4 and all("not tracked by LFS" in p for p in problems[:0])
    assert any(p.startswith("weights/big/model.safetensors: 10.0 MB") for p in problems)
    assert any(p.startswith("weights/big/sample.png: binary") for p in problems)
    assert any(p.startswith("weights/big/notes.txt") for p in problems)
    assert any(p.startswith("aigc_demo/state.pkl") for p in problems)
    (tmp_path / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
                                             "*.png filter=lfs diff=lfs merge=lfs -text\n")
    assert len(deploy.check(deploy.plan(tmp_path))) == 2  # the big text file and the pickle remain


def test_deploy_dry_run_from_the_command_line() -> None:
    result = subprocess.run([sys.executable, "-m", "aigc_demo", "deploy", "--space", "someone/aigc-gallery",
                             "--dry-run"], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert "-> https://huggingface.co/spaces/someone/aigc-gallery" in result.stdout
    assert "weights/gpt-python/model.safetensors" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "aigc_demo", "deploy", "--space", "https://evil/x", "--dry-run"],
                         capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert bad.returncode != 0 and "web address" in bad.stderr


STAND_IN = r'''
import json, sys, types
spaces = types.ModuleType("spaces")
def GPU(duration=60):
    def wrap(fn):
        def wrapped(*a, **k):
            return fn(*a, **k)
        wrapped.zerogpu_duration = duration
        wrapped.__wrapped__ = fn
        return wrapped
    return wrap
spaces.GPU = GPU
sys.modules["spaces"] = spaces
import app  # what a Space runs
from aigc_demo.ui.launch import create  # noqa: F401  (the UI imports every service)
import importlib
found = {}
for name in json.loads(sys.argv[1]):
    module, function = name.rsplit(".", 1)
    fn = getattr(importlib.import_module(module), function)
    found[name] = getattr(fn, "zerogpu_duration", None)
print(json.dumps(found))
'''


def test_gpu_bound_functions_carry_spaces_gpu_on_a_space() -> None:
    result = subprocess.run([sys.executable, "-c", STAND_IN, json.dumps(sorted(GPU_BOUND))], capture_output=True,
                            text=True, timeout=300, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == GPU_BOUND


def test_without_spaces_the_functions_are_untouched() -> None:
    from aigc_demo.device import GPU_TASKS
    from aigc_demo.generation import inside, stream
    from aigc_demo.services import digits_grid, imagegen

    assert not hasattr(digits_grid.generate_grid_batched, "zerogpu_duration")
    assert {k: v for k, v in GPU_TASKS.items() if k in GPU_BOUND} == GPU_BOUND
    assert stream.stream_with.__module__ == "aigc_demo.generation.stream" and imagegen.generate_images
    assert not hasattr(inside.look_inside_with, "zerogpu_duration")
