"""Starting the model server of a text model: a child process that loads it and decodes for every
visitor (`generation.model_server`), so the web process's interpreter lock only relays tokens.

The child is forked from the job fork server (`services/job_process.py`: torch and transformers
are imported there once), so starting one costs the model's load, not the imports. It is a
daemon of the app and exits as soon as the app's end of its connection closes, so SIGTERM, a
crash or a `kill -9` of the app never leaves it behind.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from aigc_demo import hub
from aigc_demo.errors import UserError
from aigc_demo.loading import registry
from aigc_demo.services.job_process import job_context


def decode_threads() -> int:
    """Torch threads of a model server on CPU: the cores less one, which the web process needs to
    relay tokens and serve pages (as fine-tune jobs do, `job_config.job_threads`): a step's
    parallel regions would otherwise wait for a core the relay holds."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 2
    return max(1, cores - 1)


def _child_main(conn: Any, source: hub.ModelSource, dtype_name: str, device: str, device_map_auto: bool,
                cpu_bf16: bool) -> None:
    """The model server's process: load the model, then serve it until the app is gone."""
    import torch

    from aigc_demo.generation import model_server
    from aigc_demo.generation.cpu_bf16 import fit_for_cpu_decoding

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the app ends it (EOF)
    if device == "cpu":
        torch.set_num_threads(decode_threads())
    try:
        model, _ = hub.load_causal_lm(source, dtype=getattr(torch, dtype_name), device=device,
                                      device_map_auto=device_map_auto)
    except BaseException as err:  # noqa: BLE001 - the app reports it to the visitor
        message = err if isinstance(err, UserError) else UserError(
            f"{source.label} could not be loaded: {type(err).__name__}: {err}")
        conn.send(("failed", UserError(str(message))))
        return
    fit_for_cpu_decoding(model, cpu_bf16)
    model_server.serve(conn, model)


def starter(source: hub.ModelSource, dtype_name: str, device: str, device_map_auto: bool = False,
            cpu_bf16: bool = True) -> Any:
    """A function that starts one model server for `source` (and again after a crash); `cpu_bf16`:
    a float32 model on a CPU with native bfloat16 multiplies in it (`generation.cpu_bf16`)."""
    def start() -> tuple[Any, Any]:
        ctx = job_context()
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_child_main,
                              args=(child, source, dtype_name, device, device_map_auto, cpu_bf16),
                              name=f"model-server {source.label}", daemon=True)
        process.start()
        child.close()  # the child holds its end: when it dies, the app's end reads EOF
        return process, parent
    return start


def serve_model(source: hub.ModelSource, dtype_name: str, device: str, device_map_auto: bool = False,
                cpu_bf16: bool = True) -> Any:
    """A `ServedModel` for `source`, its child started and the model loaded."""
    from aigc_demo.generation.model_server import ServedModel

    return ServedModel(starter(source, dtype_name, device, device_map_auto, cpu_bf16), source.label)


def warm_up() -> None:
    """Start the fork server in the background now (it imports torch and transformers once), so a
    visitor's first text request waits for the model's load only."""
    ctx = job_context()
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    threading.Thread(target=forkserver.ensure_running, name="forkserver-warm-up", daemon=True).start()


def close_all() -> int:
    """Unload every loaded model (the app is shutting down): the text models' processes exit."""
    return registry.unload_all()
