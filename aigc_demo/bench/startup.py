"""Startup benchmark: seconds from process start to the first HTTP 200 of the app, against
`python -c "import gradio"` on the same machine in the same command (median of N runs each).

The ratio is the figure to watch (target <= 1.5): it says what the app adds on top of gradio
itself, whatever this machine's speed is today.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from aigc_demo.bench.common import median, print_table
from aigc_demo.environment import child_env

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_import_gradio() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gradio"], check=True, env=_env())
    return time.perf_counter() - started


def time_app_start(timeout: float = 120.0) -> float:
    """Start `app.py`, poll until `/` answers 200, stop it; seconds from spawn to that answer."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.02)
        raise TimeoutError(f"app.py did not answer 200 within {timeout} s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _env() -> dict[str, str]:
    return child_env({"GRADIO_ANALYTICS_ENABLED": "False", "PYTHONDONTWRITEBYTECODE": "1"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo bench startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of each, median reported (default 5)")
    args = parser.parse_args(argv)
    time_import_gradio()  # warm the OS file cache for both
    gradio_times, app_times = [], []
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        gradio_times.append(time_import_gradio())
        app_times.append(time_app_start())
    base, app = median(gradio_times), median(app_times)
    print_table(f"Startup, median of {args.runs} (seconds)", [
        {"what": "python -c 'import gradio'", "seconds": base},
        {"what": "app.py to first HTTP 200", "seconds": app},
        {"what": "ratio app / import gradio (target <= 1.5)", "seconds": app / base},
    ])
    return 0
