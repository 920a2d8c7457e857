"""Environment hygiene, serve settings, device choice, the model registry and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aigc_demo import environment
from aigc_demo.device import DeviceChoice, pick_device
from aigc_demo.loading import ModelRegistry
from aigc_demo.settings import ServeSettings, parse_serve_args

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(environment, "_status", None)
    for key in ("HF_HUB_OFFLINE", "GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY", "MALLOC_ARENA_MAX"):
        monkeypatch.delenv(key, raising=False)
    yield monkeypatch
    environment._status = None


def test_unreachable_hub_switches_to_offline_mode_quickly(fresh_environment) -> None:
    started = time.perf_counter()
    status = environment.configure_environment(probe_host="hub.invalid", timeout=1.0)
    assert time.perf_counter() - started < 2.0
    assert status.reachable is False and status.offline_mode is True
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"


def test_reachable_hub_stays_online(fresh_environment) -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    real_connect = socket.create_connection
    fresh_environment.setattr(environment.socket, "create_connection",
                              lambda addr, timeout: real_connect(("127.0.0.1", port), timeout))
    try:
        status = environment.configure_environment(probe_host="localhost")
    finally:
        server.close()
    assert status.reachable is True and status.offline_mode is False
    assert "HF_HUB_OFFLINE" not in os.environ


def test_users_own_offline_setting_wins_without_a_probe(fresh_environment) -> None:
    fresh_environment.setenv("HF_HUB_OFFLINE", "0")
    fresh_environment.setattr(environment, "probe", lambda *a: pytest.fail("probed"))
    status = environment.configure_environment()
    assert status.reachable is None and status.offline_mode is False
    assert os.environ["HF_HUB_OFFLINE"] == "0"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_arenas_are_capped_here_and_in_later_processes_unless_the_user_set_them() -> None:
    probe = ("import os, subprocess, sys; from aigc_demo.environment import cap_malloc_arenas; "
             "took = cap_malloc_arenas(); "
             "child = subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"MALLOC_ARENA_MAX\"])'], "
             "capture_output=True, text=True, check=False).stdout.strip(); "
             "print(took, os.environ['MALLOC_ARENA_MAX'], child)")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    ours = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert ours.stdout.split() == ["True", str(environment.MALLOC_ARENAS), str(environment.MALLOC_ARENAS)], ours.stderr
    theirs = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**env, "MALLOC_ARENA_MAX": "4"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert theirs.stdout.split() == ["True", "4", "4"], theirs.stderr


def test_serve_settings_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AIGC_HOST", "GRADIO_SERVER_NAME", "AIGC_PORT", "GRADIO_SERVER_PORT", "AIGC_SHARE"):
        monkeypatch.delenv(key, raising=False)
    assert parse_serve_args([]) == ServeSettings.from_env()
    defaults = parse_serve_args([])
    assert (defaults.host, defaults.port, defaults.share) == ("127.0.0.1", 7860, False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what a Space sets
    monkeypatch.setenv("AIGC_PORT", "9000")
    monkeypatch.setenv("AIGC_SHARE", "true")
    env = parse_serve_args([])
    assert (env.host, env.port, env.share) == ("0.0.0.0", 9000, True)
    flags = parse_serve_args(["--host", "127.0.0.2", "--port", "8001", "--no-share", "--device", "cpu"])
    assert (flags.host, flags.port, flags.share, flags.device) == ("127.0.0.2", 8001, False, "cpu")
    with pytest.raises(SystemExit):
        parse_serve_args(["--port", "70000"])
    with pytest.raises(SystemExit):
        parse_serve_args(["--device", "tpu"])


def test_device_choice_on_this_machine() -> None:
    import torch

    choice = pick_device("cpu")
    assert choice == DeviceChoice("cpu", "float32") and choice.dtype == torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            pick_device("cuda")
        assert pick_device("auto").name in ("cpu", "mps")
    with pytest.raises(ValueError, match="not one of"):
        pick_device("tpu")


@pytest.mark.cuda
def test_device_choice_on_cuda() -> None:
    choice = pick_device("auto")
    assert choice.name == "cuda" and choice.dtype_name in ("bfloat16", "float16")


def _module(mb: float):
    import torch

    return torch.nn.Linear(int(mb * 2**20 / 4), 1, bias=False)  # float32: 4 bytes a weight


def test_registry_loads_once_under_concurrent_first_requests() -> None:
    registry = ModelRegistry(budget_bytes=2**30)
    calls = []

    def loader():
        calls.append(1)
        time.sleep(0.2)
        return _module(1)

    results = []
    threads = [threading.Thread(target=lambda: results.append(registry.get("m", loader))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1
    [row] = registry.loaded()
    assert row["key"] == "m" and row["memory_mb"] == pytest.approx(1.0, abs=0.01)


def test_registry_unloads_least_recently_used_beyond_budget() -> None:
    registry = ModelRegistry(budget_bytes=int(2.5 * 2**20))
    registry.get("a", lambda: _module(1))
    registry.get("b", lambda: _module(1))
    registry.get("a", lambda: pytest.fail("reloaded"))  # a is now the most recently used
    registry.get("c", lambda: _module(1))
    assert [row["key"] for row in registry.loaded()] == ["c", "a"]
    assert registry.unload("a") is True and registry.unload("a") is False
    assert registry.unload_all() == 1 and registry.loaded() == []


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aigc_demo", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_cli_help_lists_commands() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("serve", "bench"):
        assert command in result.stdout
    serve = _cli("serve", "--help")
    assert serve.returncode == 0 and "--share" in serve.stdout and "--device" in serve.stdout
    bench = _cli("bench", "--help")
    assert bench.returncode == 0 and "startup" in bench.stdout


def test_cli_rejects_unknown_command() -> None:
    result = _cli("fly")
    assert result.returncode == 2 and "invalid choice" in result.stderr
