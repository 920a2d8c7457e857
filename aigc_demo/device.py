"""Where models run: one decision (CUDA, else MPS, else CPU) that every GPU-bound path shares.

torch is imported inside the functions, never at module import, so the page is served before
the first model is touched.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from aigc_demo.errors import UserError
from aigc_demo.settings import DEVICE_CHOICES, current

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class DeviceChoice:
    """The device and dtype models load onto."""

    name: str  # "cuda", "mps" or "cpu"
    dtype_name: str  # "bfloat16", "float16" or "float32"

    @property
    def dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype_name)

    @property
    def torch_device(self) -> Any:
        import torch

        return torch.device(self.name)


def requested_device() -> str:
    """The operator's wish from `--device` / `AIGC_DEVICE` ("auto" when unset), as the served
    settings say (ui/launch.create installs them; settings.ServeSettings validates the choice)."""
    return current().serve.device


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


@functools.lru_cache(maxsize=None)
def pick_device(wish: str | None = None) -> DeviceChoice:
    """Resolve a wish ("auto", "cuda", "mps", "cpu") to a device that exists, with its dtype.

    CUDA gets bfloat16 where the GPU supports it (Ampere and newer), float16 otherwise; MPS and
    CPU compute in float32, the only dtype that is fast and safe on both.
    """
    import torch

    wish = (wish or requested_device()).lower()
    if wish not in DEVICE_CHOICES:
        raise UserError(f"device {wish!r} is not one of {', '.join(DEVICE_CHOICES)}")
    if wish in ("auto", "cuda") and torch.cuda.is_available():
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return DeviceChoice("cuda", dtype)
    if wish == "cuda":
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA GPU")
    if wish in ("auto", "mps") and _mps_available():
        return DeviceChoice("mps", "float32")
    if wish == "mps":
        raise RuntimeError("--device mps was asked for, but this torch has no usable MPS backend")
    return DeviceChoice("cpu", "float32")


def memory_report() -> dict[str, Any]:
    """What the device has and uses, for the System panel (plain values, no torch objects)."""
    import torch

    choice = pick_device()
    report: dict[str, Any] = {"device": choice.name, "dtype": choice.dtype_name}
    if choice.name == "cuda":
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        free, total = torch.cuda.mem_get_info(index)
        report.update(
            gpu_name=props.name,
            gpu_count=torch.cuda.device_count(),
            memory_total_gb=round(total / 2**30, 2),
            memory_free_gb=round(free / 2**30, 2),
            memory_allocated_gb=round(torch.cuda.memory_allocated(index) / 2**30, 3),
            cuda_version=torch.version.cuda,
        )
    elif choice.name == "mps":
        report.update(memory_allocated_gb=round(torch.mps.current_allocated_memory() / 2**30, 3))
    report["cpu_threads"] = torch.get_num_threads()
    return report


@functools.cache  # asked on every text request; a failed import is not cached by Python (~1 ms each)
def on_zero_gpu() -> bool:
    """Whether this is a ZeroGPU Space: the GPU is attached to this process's `gpu_task` calls
    only, so a model must compute here, not in a child process."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return False
    config = getattr(getattr(spaces, "config", None), "Config", None)
    return bool(getattr(config, "zero_gpu", False))


GPU_TASKS: dict[str, int] = {}  # "module.function" -> seconds asked for, for the README and tests


def gpu_task(duration: int = 60) -> Callable[[F], F]:
    """`spaces.GPU(duration=...)` when the `spaces` package is importable (a Hugging Face Space;
    on ZeroGPU hardware the GPU is attached for each call only, elsewhere spaces.GPU does nothing),
    the function unchanged otherwise. `duration` is the longest one call may hold the GPU."""
    def decorate(fn: F) -> F:
        GPU_TASKS[f"{fn.__module__}.{fn.__qualname__}"] = duration
        try:
            import spaces  # type: ignore[import-not-found]
        except ImportError:
            return fn
        return spaces.GPU(duration=duration)(fn)
    return decorate
