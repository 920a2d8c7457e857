"""How job and probe processes start: forked from a server that has imported torch & co once.

A fine-tune job runs in a process of its own (a crash ends only that process). Spawning one
re-imports torch, transformers, accelerate and peft every time: about 8 s on two CPU cores
before a job can load its model, which is most of what a Fine-tune visitor waits for. With the
"forkserver" start method, one server process imports them once (the first job or speed probe
starts it: the Fine-tune tab runs a probe when it opens) and every later process is forked from
it in a fraction of a second. The server holds no model and never touches CUDA, so a forked job
may still pick its device. Where forkserver does not exist (Windows), processes are spawned.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import sys
import threading
from multiprocessing.context import BaseContext
from typing import Any

from aigc_demo.device import on_zero_gpu

# What every job imports, paid once by the fork server; names that fail to import are skipped.
# diffusers imports lazily: its UNet, schedulers and EMA are named so that a diffusion job finds
# them loaded. Measured with the speed probe on 2 loaded cores (a training run on both): a forked
# diffusion job was ready in 5.0-5.3 s without them, 0.6-0.9 s with them (a GAN job: 0.8 s); the
# server pays the ~2.3 s of imports once.
# A text model server (services/text_server.py) decodes our GPT-2-layout models with generation's
# code, so those modules are preloaded too. `fork_ready` comes last: it freezes what is imported.
PRELOAD = ("torch", "transformers", "accelerate", "peft", "safetensors", "diffusers.models.unets.unet_2d",
           "diffusers.schedulers.scheduling_ddpm", "diffusers.schedulers.scheduling_dpmsolver_multistep",
           "diffusers.training_utils", "transformers.models.gpt2.modeling_gpt2", "transformers.generation.utils",
           "aigc_demo.hub", "aigc_demo.generation.model_server", "aigc_demo.services.fork_ready")


def job_context() -> BaseContext:
    """The multiprocessing context that job and probe processes start from."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def start_fork_server_here() -> bool:
    """Import `PRELOAD` here, then start the fork server as a fork of this process.

    Why: started the usual way, the fork server is a fresh interpreter that imports torch & co
    on its own, and the app imports them again: two private copies of ~280 MB of module memory
    (torch, transformers, accelerate, peft, diffusers' UNet). Forked from the app after those
    imports, the app, the fork server and every job and model server share one copy.

    A fork copies the calling thread only, so this runs first thing, before gradio is imported
    and before any thread starts; otherwise (or on ZeroGPU, or without forkserver) it does
    nothing and the fork server starts the usual way when first needed. Returns whether it ran.
    The fork server runs the standard library's own code (`multiprocessing.forkserver.main`,
    the command it would have run in a new interpreter), so jobs start exactly as before."""
    if "forkserver" not in mp.get_all_start_methods() or threading.active_count() > 1 or on_zero_gpu():
        return False
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # as the fork server itself skips it
    from multiprocessing import forkserver, util

    spawn = util.spawnv_passfds
    util.spawnv_passfds = lambda path, args, passfds: (
        _fork_running(args[-1], passfds) if "multiprocessing.forkserver" in args[-1] else spawn(path, args, passfds))
    try:
        job_context()  # its preload list
        forkserver.ensure_running()
    finally:
        util.spawnv_passfds = spawn
    return True


def _fork_running(command: str, keep_fds: Any) -> int:
    """Fork; the child runs `command` (`python -c` code) with only `keep_fds` and stdio open."""
    from multiprocessing import forkserver

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: never returns into the app's code
        forkserver._forkserver._lock = threading.Lock()  # held by the parent at the fork
        last = 2
        for fd in sorted(set(keep_fds)):
            os.closerange(last + 1, fd)
            last = fd
        os.closerange(last + 1, os.sysconf("SC_OPEN_MAX"))
        exec(command, {"__name__": "__forkserver__"})
    finally:
        os._exit(0)
