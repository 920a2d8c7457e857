"""What the engines layer needs from the app's settings: one frozen dataclass.

Why apart: the connection (`connection.py`) and the registry (`registry.py`) both read it; with
it here the registry imports the connection and nothing imports back (imports point one way down).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EngineConfig:
    """The servers to front and how patiently to talk to them (the key stays out of every repr)."""

    servers: tuple[str, ...] = ()
    api_key: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    ttl_s: float = 10.0
    retry_s: float = 3.0
