"""`transformers serve` in its own process, on a port of our choosing, with local model folders
loaded before use: the real OpenAI-compatible engine the tests and `bench remote` talk to.

`transformers serve` (transformers 5) takes a local folder as the model id: POST /load_model
with {"model": "<folder>"} loads it, and /v1/models lists it under that path while it stays
loaded (`--model-timeout -1`: never unloaded). Without `--force-model` one server holds several
models, which is what the gallery must show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aigc_demo.environment import child_env

READY_TIMEOUT_S = 120.0  # importing torch + transformers on a loaded 2-core machine


class TransformersServe:
    """Start, stop and restart one `transformers serve` process; its log goes to `log_path`."""

    def __init__(self, port: int, models: list[Path] | list[str], log_path: Path,
                 extra_args: list[str] | None = None) -> None:
        self.port, self.models, self.log_path = port, [str(m) for m in models], log_path
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "TransformersServe":
        env = child_env({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--device", "cpu", "--dtype", "float32", "--model-timeout", "-1",
                   "--log-level", "info", *self.extra_args]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        log.close()
        self._wait_ready()
        for model in self.models:
            self._load(model)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"transformers serve exited early; log: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"transformers serve was not ready within {READY_TIMEOUT_S:.0f} s; log: {self.log_tail()}")

    def _load(self, model: str) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/load_model", method="POST",
                                         data=json.dumps({"model": model}).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=READY_TIMEOUT_S) as answer:
            events = answer.read().decode()
        if '"ready"' not in events:
            raise RuntimeError(f"transformers serve could not load {model}: {events[-500:]}")

    def listed(self) -> list[str]:
        with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as answer:
            return [m["id"] for m in json.loads(answer.read())["data"]]

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL after a few seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None

    def kill(self) -> None:
        """Die at once, as a crashed or unplugged server would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
