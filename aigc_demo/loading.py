"""One loaded copy per model, shared by every user, within a memory budget.

`registry.get(key, loader)` loads on first use (two first requests load once: a lock per key),
keeps models in least-recently-used order and unloads the oldest when the budget is exceeded.
The System panel lists what is loaded and unloads on request.

Two *different* models loading at once are a separate danger: `from_pretrained` in transformers
and diffusers builds a model under process-wide switches (meta-device init, skipped weight init,
tied-weight bookkeeping), so two loads in two threads can leave one with a meta tensor or an
untied head (measured: 18 of 20 concurrent GPT-2 + Llama loads did). `building()` runs the
construction part of every load one at a time; downloads and everything else stay parallel.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from aigc_demo.settings import operator_settings


_build_lock = threading.RLock()


@contextmanager
def building() -> Iterator[None]:
    """Hold while a library builds a model from files (`from_pretrained`): one at a time in the
    process, since those builds flip process-wide state (see the module docstring)."""
    with _build_lock:
        yield


def _module_bytes(obj: Any) -> int:
    """Bytes held by the parameters and buffers of a torch module, a pipeline or a tuple of them."""
    try:
        import torch
    except ImportError:  # nothing torch-based can be loaded then
        return 0
    seen: set[int] = set()
    total = 0

    def visit(item: Any) -> None:
        nonlocal total
        if hasattr(item, "nbytes") and not isinstance(item, torch.Tensor):  # numpy arrays
            total += int(item.nbytes)
        elif hasattr(item, "getbbox") and hasattr(item, "size") and hasattr(item, "mode"):  # PIL images
            total += item.size[0] * item.size[1] * max(len(item.getbands()), 1)
        elif isinstance(item, torch.nn.Module):
            for tensor in [*item.parameters(), *item.buffers()]:
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    total += tensor.numel() * tensor.element_size()
        elif isinstance(item, (list, tuple)):
            for part in item:
                visit(part)
        elif isinstance(item, dict):
            for part in item.values():
                visit(part)
        elif hasattr(item, "components"):  # diffusers pipelines
            visit(dict(item.components))
        elif hasattr(item, "model"):
            visit(item.model)

    visit(obj)
    return total


@dataclass
class LoadedModel:
    key: str
    value: Any
    bytes: int
    device: str
    loaded_at: float
    load_seconds: float
    last_used: float


def default_budget_bytes() -> int:
    """`AIGC_MEMORY_BUDGET_GB` (default 8 GB): what loaded models and cached maps hold together."""
    return int(operator_settings().memory_budget_gb * 2**30)


class ModelRegistry:
    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = budget_bytes if budget_bytes is not None else default_budget_bytes()
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def get(self, key: str, loader: Callable[[], Any], device: str = "cpu") -> Any:
        """The loaded model for `key`, loading it with `loader()` the first time."""
        with self._lock:
            entry = self._models.get(key)
            if entry is not None:
                entry.last_used = time.time()
                self._models.move_to_end(key)
                return entry.value
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; others wait here and then find it loaded
            with self._lock:
                entry = self._models.get(key)
                if entry is not None:
                    self._models.move_to_end(key)
                    return entry.value
            started = time.perf_counter()
            value = loader()
            now = time.time()
            entry = LoadedModel(key, value, _module_bytes(value), device, now,
                                time.perf_counter() - started, now)
            with self._lock:
                self._models[key] = entry
                self._evict(keep=key)
            return value

    def _evict(self, keep: str) -> None:
        """Unload least recently used models until the budget holds (never the one just loaded)."""
        while sum(m.bytes for m in self._models.values()) > self.budget_bytes:
            oldest = next((k for k in self._models if k != keep), None)
            if oldest is None:
                break
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        entry = self._models.pop(key, None)
        if entry is None:
            return
        for part in entry.value if isinstance(entry.value, tuple) else (entry.value,):
            if callable(getattr(part, "on_unload", None)):
                part.on_unload()  # a model served by its own process: that process ends
        del entry
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def unload(self, key: str) -> bool:
        with self._lock:
            present = key in self._models
            self._drop(key)
            return present

    def unload_all(self) -> int:
        with self._lock:
            keys = list(self._models)
            for key in keys:
                self._drop(key)
            return len(keys)

    def is_loaded(self, key: str) -> bool:
        with self._lock:
            return key in self._models

    def server_pids(self) -> list[int]:
        """The processes that serve loaded models (text models decode in their own process)."""
        with self._lock:
            parts = [p for m in self._models.values() for p in (m.value if isinstance(m.value, tuple) else (m.value,))]
        return [pid for pid in (getattr(p, "pid", None) for p in parts) if isinstance(pid, int)]

    def loaded(self) -> list[dict[str, Any]]:
        """What is loaded, most recently used first, as plain values."""
        with self._lock:
            return [
                {"key": m.key, "memory_mb": round(m.bytes / 2**20, 1), "device": m.device,
                 "load_seconds": round(m.load_seconds, 2),
                 "idle_seconds": round(time.time() - m.last_used, 1)}
                for m in reversed(self._models.values())
            ]


registry = ModelRegistry()
