"""What the System panel shows: hardware, library versions, loaded models, hub reachability."""

from __future__ import annotations

import hmac
import os
import re
import platform
import sys
from importlib import metadata
from typing import Any

from aigc_demo.device import memory_report
from aigc_demo.environment import hub_status
from aigc_demo.errors import UserError
from aigc_demo.loading import registry
from aigc_demo.services.jobs import get_manager
from aigc_demo.services.model_ids import public_text
from aigc_demo.settings import current as current_settings
from aigc_demo.settings import operator_settings

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


def _process_memory_mb(pid: int | str = "self") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def app_memory_mb() -> float | None:
    """RAM of the app: this process plus the processes its loaded text models decode in."""
    own = _process_memory_mb()
    if own is None:
        return None
    return round(own + sum(_process_memory_mb(pid) or 0.0 for pid in registry.server_pids()), 1)


def device_summary() -> dict[str, Any]:
    """The device models run on, its dtype and memory (the page's device badge)."""
    return memory_report()


def admin_enabled() -> bool:
    """True when the operator has set an admin token (the admin controls are shown then)."""
    return operator_settings().admin_enabled


def system_report() -> dict[str, Any]:
    """A snapshot for the System panel (imports torch to ask about the device)."""
    hub = hub_status()
    return {
        "device": device_summary(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "process_memory_mb": app_memory_mb(),
        "model_processes": len(registry.server_pids()),
        "memory_budget_mb": round(registry.budget_bytes / 2**20),
        "libraries": library_versions(),
        "hub": {"reachable": hub.reachable, "offline_mode": hub.offline_mode, "detail": hub.detail},
        "loaded_models": [dict(m, key=_public_key(m["key"])) for m in registry.loaded()],
    }


def _public_key(key: str) -> str:
    """A loaded model's key without server folders or session ids (anyone can read this report)."""
    text = public_text(key, get_manager().config.user_models_dir,
                       current_settings().serve.weights_dir)
    # Any other absolute folder (a weights folder given by flag, a local path an operator allowed)
    # shows by its last part only.
    return re.sub(r"(?:/[^/\s:]+)+/([^/\s:]+)", r"\1", text)


def unload_model(key: str) -> str:
    """Unload one model (or all with key "all"); returns what happened, for the page."""
    if key == "all":
        count = registry.unload_all()
        return f"Unloaded {count} model(s)."
    if registry.unload(key) or any(registry.unload(k) for k in [m["key"] for m in registry.loaded()]
                                   if _public_key(k) == key):
        return f"Unloaded {key}."
    raise UserError(f"{key} is not loaded")


def check_admin(token: Any) -> None:
    """UserError unless admin actions are on (AIGC_ADMIN_TOKEN) and `token` is that token.

    The comparison takes the same time for every wrong token (hmac.compare_digest)."""
    expected = operator_settings().admin_token
    if not expected:
        raise UserError("Admin actions are off on this server: the operator turns them on by setting "
                         "AIGC_ADMIN_TOKEN.")
    given = token if isinstance(token, str) else ""
    if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode("utf-8")):
        raise UserError("That is not the admin token: unloading models is for the operator of this server.")
