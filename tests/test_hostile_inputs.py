"""Every named endpoint, read from `view_api`, called with hostile values for each parameter.

What a stranger on a public Space sends through `gradio_client`: None, empty, the wrong type
(a list or dict or number where text belongs, a list where a number belongs), a megabyte of
text, ids over 255 characters, NaN and infinities, huge and negative numbers, control
characters, server paths, a PNG whose header claims 100,000 x 100,000 pixels, a corrupt zip.
Each call must end within a time limit with a valid result or a clear message (never the
generic "Error"); the app must answer afterwards, its memory must stay bounded, and its log
must hold no traceback for these expected user errors.

The app runs as a visitor's Space runs it, `python app.py` in a process of its own, so the
memory measured is the app's (and its model servers'), not this test session's.

The walk is sampled to run in a few minutes on two cores: each parameter gets the values of
its type, with every other parameter at a cheap valid baseline (a few tokens, one 32 px step).
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file

from aigc_demo.ui.strings import table
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]

CALL_LIMIT_S = 45.0  # one call, on a loaded two-core machine
PARALLEL = 4  # calls in flight at once (the app serves 4 at a time)
MAX_RSS_MB = 1024  # the web process after the walk (~730 MB measured on 2 cores)
# The whole tree after the walk, each shared page counted once (PSS): the web process, the fork
# server and three model servers. Issue 25's goal. Measured 869 MB on 2 cores since the app forks
# its fork server from itself (services/job_process.start_fork_server_here); 1,130-1,160 MB before,
# when the app and the fork server each held their own copy of torch & co; 1,589 MB before app.py
# kept its imports under __main__.
MAX_TREE_PSS_MB = 1024
# gradio's own, and the app's for anything that is not a UserError (ui/errors.py)
GENERIC = ("has not enabled verbose error reporting", table("en")["error.internal"])
MB_TEXT = "A" * 1_000_000
LONG_ID = "x" * 300
CONTROL = "\x00\x01\x1b[31mred\x7f\u202e"
PATHS = ["../../etc/passwd", "/etc/passwd"]

# Cheap valid values where a default would be slow (tokens, image steps) or start real work.
BASELINE: dict[str, dict[str, Any]] = {
    "/text_generate": {"prompt": "To be", "max_new_tokens": 2},
    "/text_chat": {"message": "hi", "max_new_tokens": 2, "history": []},
    "/code_complete": {"max_new_tokens": 2},
    "/text_look_inside": {"text": "To be or not"},
    "/code_look_inside": {"text": "def f():\n    return 1\n"},
    "/generate_image": {"prompt_text": "a cat", "negative_text": "", "n_steps": 1, "w": 32, "h": 32},
    "/digits_grid": {"counts": 2},
    "/digits_walk": {"steps": 2},
    "/digits_diffusion": {"counts": 2, "steps": 1},
    "/digits_denoise": {"steps": 1},
    "/compare_digits": {"digits": ["1"], "per_digit": 1, "diffusion": "", "vae": ""},  # the GAN alone: fast
    "/compare_text": {"prompt": "To be", "max_new_tokens": 2},
    "/finetune_start": {"text_value": "", "steps_n": 1},  # no data: every check runs, no job starts
    "/finetune_push": {"repo_id": "me/model", "token_v": "hf_x"},
    "/finetune_save": {"model_name": "m"},
    "/lab_start": {"steps": 0},  # every check runs, no lab starts
    "/lab_save": {"name": "m"},
    "/add_image_model": {"repo_id": "someone/model"},
    "/unload": {"key": None, "admin_token": "wrong"},
    # the MCP tools' endpoints (ui/mcp_tools.py)
    "/mcp_digits_grid": {"count": 2},
    "/mcp_diffusion_digits": {"count": 2, "steps": 1},
    "/mcp_generate_text": {"prompt": "To be", "max_new_tokens": 2},
    "/mcp_chat": {"message": "hi", "max_new_tokens": 2},
    "/mcp_complete_code": {"code": "def f():", "max_new_tokens": 2},
    "/mcp_generate_image": {"prompt": "a cat", "steps": 1, "width": 32, "height": 32},
    "/mcp_compare_digits": {"digits": "1", "per_digit": 1},
    "/mcp_compare_text": {"prompt": "To be", "max_new_tokens": 2},
    "/unload_all": {"admin_token": "wrong"},
}


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels, with one tiny (wrong) data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("hostile")
    files = {
        "bomb.png": png_header(100_000, 100_000),
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + b"garbage" * 50,
        "corrupt.zip": b"PK\x03\x04" + b"\xff" * 200,
        "empty.txt": b"",
        "binary.txt": bytes(range(256)) * 40,
    }
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = str(folder / name)
    return paths


def hostile_values(param: dict[str, Any], files: dict[str, str]) -> list[Any]:
    """The values tried for one parameter, by its type and component."""
    kind = str(param["python_type"]["type"])
    component = str(param.get("component", "")).lower()
    common: list[Any] = [None, [], {"a": 1}]
    if component in ("imageeditor", "sketchpad"):
        return common + ["not a drawing", {"background": None, "layers": [], "composite": None},
                         {"background": None, "layers": [], "composite": handle_file(files["bomb.png"])},
                         {"background": None, "layers": [], "composite": handle_file(files["corrupt.png"])}]
    if component == "file":
        many = kind.startswith("list")
        wrap = (lambda f: [handle_file(f)]) if many else handle_file
        return common + [wrap(files["bomb.png"]), wrap(files["corrupt.zip"]), wrap(files["empty.txt"]),
                         wrap(files["binary.txt"]), 5]
    if component == "chatbot":
        return common + ["text", [1, 2], [{"role": "hacker", "content": 5}],
                         [{"role": "user", "content": MB_TEXT}]]
    if component == "checkbox" or kind == "bool":
        return common + ["yes", 2, -1]
    if kind in ("float", "int"):
        return common + ["abc", [1, 2], math.nan, math.inf, -math.inf, -1e12, 1e12, 2**70, -1, True]
    if component == "checkboxgroup" or kind.startswith("list"):
        return common + ["0123", [LONG_ID], [None, 5], ["11"], list(range(1000))]
    if kind.startswith("Literal") or component in ("dropdown", "radio"):
        return common + ["", 5, ["a", "b"], LONG_ID, CONTROL, *PATHS, "not-an-option", MB_TEXT]
    return common + ["", 5, ["a", "b"], LONG_ID, CONTROL, *PATHS, MB_TEXT, 1.5]


def baseline(name: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    values = {}
    for p in params:
        if p.get("parameter_has_default"):
            values[p["parameter_name"]] = p.get("parameter_default")
        else:
            values[p["parameter_name"]] = None
    values.update({k: v for k, v in BASELINE.get(name, {}).items() if k in values})
    return values


def is_generic(message: str) -> bool:
    text = (message or "").strip()
    return text in ("", "Error", "None") or any(g in text for g in GENERIC)


@pytest.fixture(scope="module")
def app_process(tmp_path_factory: pytest.TempPathFactory, weights_dir: Path) -> Any:
    """`python app.py` on a free port with the tiny fixture models: (process, url, log path)."""
    folder = tmp_path_factory.mktemp("hostile-app")
    log_path = folder / "app.log"
    port = free_port()
    env = dict(os.environ, AIGC_RUNS_DIR=str(folder / "runs"), AIGC_WEIGHTS_DIR=str(weights_dir))
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240  # a loaded CI machine imports torch and gradio slowly
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            Client(url, verbose=False)
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"the app did not start: {log_path.read_text(errors='replace')[-3000:]}")
    yield proc, url, log_path
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid: int | None = None) -> float:
    """The resident memory of one process (this one by default)."""
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def rss_with_children_mb(pid: int | None = None) -> float:
    """A process (this one by default) and every live child (job, probe, model-server processes)."""
    import psutil

    total = 0
    for process in process_tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.Error:  # ended meanwhile
            pass
    return total / 2**20


def process_tree(pid: int | None = None) -> list[Any]:
    """A process (this one by default) and every live child, as psutil processes."""
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def pss_with_children_mb(pid: int | None = None) -> tuple[float, list[str]]:
    """Like `rss_with_children_mb`, but each page shared by several processes (the fork server's
    torch, forked into every job and model server) counted once in all: the memory the tree holds.
    Also one line per process: its name and its own PSS."""
    import psutil

    total, lines = 0, []
    for process in process_tree(pid):
        try:
            pss = process.memory_full_info().pss
        except psutil.Error:  # ended meanwhile, or /proc/PID/smaps unreadable
            continue
        total += pss
        lines.append(f"{process.pid} {' '.join(process.cmdline())[:60] or process.name()}: {pss / 2**20:.0f} MB")
    return total / 2**20, lines


def call(client: Client, name: str, kwargs: dict[str, Any]) -> tuple[str, str]:
    """('ok' | 'message' | 'generic' | 'hang' | 'not sent', detail)."""
    from gradio_client.exceptions import AppError

    try:
        job = client.submit(api_name=name, **kwargs)
    except Exception as err:  # noqa: BLE001 - the client refused to send it (not the app's doing)
        return "not sent", f"{type(err).__name__}: {err}"[:200]
    try:
        job.result(timeout=CALL_LIMIT_S)
        return "ok", ""
    except (FutureTimeout, TimeoutError):
        job.cancel()
        return "hang", f"no answer in {CALL_LIMIT_S:g} s"
    except AppError as err:
        message = str(getattr(err, "message", None) or err)
        return ("generic" if is_generic(message) else "message"), message[:200]
    except ValueError as err:
        if "not JSON compliant" in str(err):  # NaN / inf: JSON cannot carry them, nothing was sent
            return "not sent", str(err)[:200]
        return "generic", f"{type(err).__name__}: {err}"[:200]
    except Exception as err:  # noqa: BLE001 - e.g. a result the client cannot read back
        return "generic", f"{type(err).__name__}: {err}"[:200]


def test_every_endpoint_survives_hostile_inputs(app_process: Any, hostile_files: dict[str, str]) -> None:
    proc, app_url, log_path = app_process
    client = Client(app_url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert len(api) >= 25, sorted(api)
    client.predict(api_name="/models")  # warm: imports done before the first measurement
    rss_before, all_before = rss_mb(proc.pid), rss_with_children_mb(proc.pid)
    tally: dict[str, int] = {"ok": 0, "message": 0, "generic": 0, "hang": 0, "not sent": 0}
    failures: list[str] = []
    started = time.monotonic()
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for name, endpoint in sorted(api.items()):
        params = endpoint["parameters"]
        base = baseline(name, params)
        cases += [(name, base, dict(base)), (name, base, {k: None for k in base})]
        for p in params:
            for value in hostile_values(p, hostile_files):
                cases.append((name, base, {**base, p["parameter_name"]: value}))

    visitors = threading.local()  # one client per worker, as separate visitors would have: one
    # gradio_client shared by threads can drop an event (its stream closes while another waits)

    def run(case: tuple[str, dict[str, Any], dict[str, Any]]) -> tuple[str, str]:
        name, base, kwargs = case
        if not hasattr(visitors, "client"):
            visitors.client = Client(app_url, verbose=False)
        outcome, detail = call(visitors.client, name, kwargs)
        shown = {k: (repr(v)[:40]) for k, v in kwargs.items() if v is not base.get(k)}
        return outcome, f"{name} {shown}: {outcome} {detail}"

    with ThreadPoolExecutor(PARALLEL) as pool:  # a few visitors at once, as on a real server
        for outcome, line in pool.map(run, cases):
            tally[outcome] += 1
            if outcome in ("generic", "hang"):
                failures.append(line)
    seconds = time.monotonic() - started
    client.predict(api_name="/models")  # the app still answers
    still = client.predict(["3"], 2, 1, 1.0, api_name="/digits_grid")
    assert still, "the app no longer draws digits"
    rss_after, all_after = rss_mb(proc.pid), rss_with_children_mb(proc.pid)
    pss_after, processes = pss_with_children_mb(proc.pid)
    logged = log_path.read_text(errors="replace")
    tracebacks = logged.count("Traceback (most recent call last)")
    if tracebacks:
        first = logged.index("Traceback (most recent call last)")
        print("first traceback logged:\n" + logged[first:first + 3000])
    calls = sum(tally.values())
    print(f"\nhostile walk: {calls} calls over {len(api)} endpoints in {seconds:.0f} s: {tally}; "
          f"RSS {rss_before:.0f} MB -> {rss_after:.0f} MB (with children {all_before:.0f} -> {all_after:.0f} MB, "
          f"shared pages once: {pss_after:.0f} MB); tracebacks logged: {tracebacks}")
    print("  " + "\n  ".join(processes))
    for line in failures:
        print("  ", line)
    assert not failures, f"{len(failures)} generic errors or hangs, e.g. {failures[:5]}"
    assert tally["message"] + tally["ok"] >= calls * 0.8, tally
    assert rss_after < MAX_RSS_MB, f"RSS grew to {rss_after:.0f} MB (from {rss_before:.0f} MB)"
    assert pss_after < MAX_TREE_PSS_MB, "\n".join([f"the app's processes hold {pss_after:.0f} MB:", *processes])
    assert tracebacks == 0, logged[-3000:]
