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

import multiprocessing as mp
from multiprocessing.context import BaseContext

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
