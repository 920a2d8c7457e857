"""Remote OpenAI-compatible inference engines (vLLM, TGI, SGLang, llama.cpp, `transformers serve`).

`configure` is called once by the app with its settings; the catalog lists `registry.models()`,
and `services/remote_text.py` streams from them. Importing this package is cheap (no `openai`).
"""

from __future__ import annotations

from typing import Any

from aigc_demo.engines.config import EngineConfig
from aigc_demo.engines.registry import PREFIX, RemoteModel, is_remote_ref, registry, split_ref

__all__ = ["PREFIX", "EngineConfig", "RemoteModel", "configure", "is_remote_ref", "registry", "split_ref"]


def configure(settings: Any) -> EngineConfig:
    """Point the registry at `settings.llm_servers` (a ServeSettings or anything with its fields)."""
    config = EngineConfig(servers=tuple(getattr(settings, "llm_servers", ()) or ()),
                          api_key=getattr(settings, "llm_api_key", None),
                          connect_timeout_s=float(getattr(settings, "llm_connect_timeout_s", 3.0)),
                          read_timeout_s=float(getattr(settings, "llm_read_timeout_s", 10.0)))
    registry.configure(config)
    return config
