"""How the app is served: flags override environment variables, which override defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class ServeSettings:
    """Where and how the web app listens. On a Space, GRADIO_SERVER_NAME/PORT are set for us."""

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    device: str = "auto"
    weights_dir: str = str(PROJECT_ROOT / "weights")

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
