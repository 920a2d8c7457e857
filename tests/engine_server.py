"""The real engine the remote-engine tests start: see aigc_demo/engines/local_serve.py."""

from aigc_demo.engines.local_serve import TransformersServe as EngineServer

__all__ = ["EngineServer"]
