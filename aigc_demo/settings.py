"""How the app is served: flags override environment variables, which override defaults."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from aigc_demo.device import DEVICE_CHOICES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(*names: str, default: str) -> str:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number (got {raw!r}).") from None


@dataclass(frozen=True)
class PublicSettings:
    """What strangers may do on a shared server and how long what they create is kept.

    Read once from AIGC_* variables (see the README, "Running it in public"), checked here, then
    passed down as data.
    """

    allow_local_paths: bool = False  # [AIGC_ALLOW_LOCAL_PATHS] pickers also take server folder paths
    user_ttl_hours: float = 24.0  # [AIGC_USER_TTL_HOURS] uploads, jobs, saved models, zips expire
    user_quota_mb: float = 500.0  # [AIGC_USER_QUOTA_MB] disk one visitor may fill
    total_quota_mb: float = 20_000.0  # [AIGC_TOTAL_QUOTA_MB] disk all visitors together may fill
    sweep_interval_s: float = 600.0  # [AIGC_SWEEP_INTERVAL_S] how often expired things are deleted

    def __post_init__(self) -> None:
        for name in ("user_ttl_hours", "user_quota_mb", "total_quota_mb", "sweep_interval_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"{name} must be a positive number (got {value!r}).")
        if self.user_quota_mb > self.total_quota_mb:
            raise ValueError(f"user_quota_mb ({self.user_quota_mb:g}) cannot exceed total_quota_mb "
                             f"({self.total_quota_mb:g}).")

    @property
    def ttl_seconds(self) -> float:
        return self.user_ttl_hours * 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "PublicSettings":
        env = os.environ if env is None else env
        return cls(
            allow_local_paths=_truthy(env.get("AIGC_ALLOW_LOCAL_PATHS") or "0"),
            user_ttl_hours=_number(env, "AIGC_USER_TTL_HOURS", cls.user_ttl_hours),
            user_quota_mb=_number(env, "AIGC_USER_QUOTA_MB", cls.user_quota_mb),
            total_quota_mb=_number(env, "AIGC_TOTAL_QUOTA_MB", cls.total_quota_mb),
            sweep_interval_s=_number(env, "AIGC_SWEEP_INTERVAL_S", cls.sweep_interval_s),
        )


@dataclass
class ServeSettings:
    """Where and how the web app listens. On a Space, GRADIO_SERVER_NAME/PORT are set for us."""

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    device: str = "auto"
    weights_dir: str = str(PROJECT_ROOT / "weights")
    public: PublicSettings = field(default_factory=PublicSettings.from_env)

    @classmethod
    def from_env(cls) -> "ServeSettings":
        return cls(
            host=_env("AIGC_HOST", "GRADIO_SERVER_NAME", default=cls.host),
            port=int(_env("AIGC_PORT", "GRADIO_SERVER_PORT", default=str(cls.port))),
            share=_truthy(_env("AIGC_SHARE", default="false")),
            device=_env("AIGC_DEVICE", default=cls.device).lower(),
            weights_dir=_env("AIGC_WEIGHTS_DIR", default=cls.weights_dir),
        )


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    env = ServeSettings.from_env()
    parser.add_argument("--host", default=env.host,
                        help=f"address to listen on; 0.0.0.0 for a LAN (env AIGC_HOST, default {env.host})")
    parser.add_argument("--port", type=int, default=env.port, help=f"port (env AIGC_PORT, default {env.port})")
    parser.add_argument("--share", action=argparse.BooleanOptionalAction, default=env.share,
                        help="also publish a temporary public *.gradio.live link (needs internet; env AIGC_SHARE)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=env.device,
                        help="where models run: auto picks cuda, then mps, then cpu (env AIGC_DEVICE)")
    parser.add_argument("--weights-dir", default=env.weights_dir,
                        help="folder of shipped and saved models (env AIGC_WEIGHTS_DIR)")


def serve_settings_from_args(args: argparse.Namespace) -> ServeSettings:
    if not 0 < args.port < 65536:
        raise SystemExit(f"--port must be between 1 and 65535 (got {args.port})")
    return ServeSettings(host=args.host, port=args.port, share=args.share, device=args.device,
                         weights_dir=args.weights_dir)


def parse_serve_args(argv: list[str] | None = None) -> ServeSettings:
    parser = argparse.ArgumentParser(prog="app.py", description="Start the AIGC Gallery web app.")
    add_serve_args(parser)
    return serve_settings_from_args(parser.parse_args(argv))
