"""What the System panel shows: hardware, library versions, loaded models, hub reachability."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

from aigc_demo.environment import hub_status
from aigc_demo.loading import registry
from aigc_demo.settings import PROJECT_ROOT

LIBRARIES = ("torch", "transformers", "diffusers", "accelerate", "peft", "gradio",
             "huggingface_hub", "safetensors", "tokenizers")


def library_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _process_memory_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def system_report() -> dict[str, Any]:
    """A snapshot for the System panel (imports torch to ask about the device)."""
    from aigc_demo.device import memory_report

    hub = hub_status()
    return {
        "device": memory_report(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "process_memory_mb": _process_memory_mb(),
        "libraries": library_versions(),
        "hub": {"reachable": hub.reachable, "offline_mode": hub.offline_mode, "detail": hub.detail},
        "loaded_models": [dict(m, key=_public_key(m["key"])) for m in registry.loaded()],
    }


def _public_key(key: str) -> str:
    """A loaded model's key without server folders or session ids (anyone can read this report)."""
    from aigc_demo.services.finetune import get_manager
    from aigc_demo.services.model_ids import public_text

    return public_text(key, get_manager().config.user_models_dir,
                       os.environ.get("AIGC_WEIGHTS_DIR") or str(PROJECT_ROOT / "weights"))


def unload_model(key: str) -> str:
    """Unload one model (or all with key "all"); returns what happened, for the page."""
    if key == "all":
        count = registry.unload_all()
        return f"Unloaded {count} model(s)."
    if registry.unload(key) or any(registry.unload(k) for k in [m["key"] for m in registry.loaded()]
                                   if _public_key(k) == key):
        return f"Unloaded {key}."
    raise ValueError(f"{key} is not loaded")
