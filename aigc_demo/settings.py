"""How the app is served: flags override environment variables, which override defaults."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

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


def parse_llm_servers(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated OpenAI-compatible base URLs -> validated tuple (http/https, ends in /v1,
    one server per host:port). ValueError with a clear message otherwise."""
    items = text.split(",") if isinstance(text, str) else list(text)
    urls: list[str] = []
    hosts: set[str] = set()
    for raw in items:
        url = raw.strip().rstrip("/")
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"LLM server {url!r} must be an http:// or https:// address, "
                             "e.g. http://gpu-node:8000/v1")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"LLM server {parts.scheme}://{parts.hostname}: give the base URL only "
                             "(no user:password, query or fragment); set the key in AIGC_LLM_API_KEY")
        if not parts.path.endswith("/v1"):
            raise ValueError(f"LLM server {url!r} must end with /v1 (the OpenAI-compatible base URL), "
                             f"e.g. {parts.scheme}://{parts.netloc}/v1")
        if parts.netloc in hosts:
            raise ValueError(f"LLM server {parts.netloc} is listed twice: give one base URL per host:port")
        hosts.add(parts.netloc)
        urls.append(url)
    return tuple(urls)
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
    llm_servers: tuple[str, ...] = ()  # OpenAI-compatible base URLs ending in /v1
    llm_api_key: str | None = field(default=None, repr=False)  # never printed, logged or shown
    llm_connect_timeout_s: float = 3.0
    llm_read_timeout_s: float = 10.0  # longest silence between two streamed chunks
    public: PublicSettings = field(default_factory=PublicSettings.from_env)

    def __post_init__(self) -> None:
        self.llm_servers = parse_llm_servers(self.llm_servers)
        for name in ("llm_connect_timeout_s", "llm_read_timeout_s"):
            if not 0 < float(getattr(self, name)) <= 600:
                raise ValueError(f"{name} must be between 0 and 600 seconds (got {getattr(self, name)})")

    @classmethod
    def from_env(cls) -> "ServeSettings":
        return cls(
            host=_env("AIGC_HOST", "GRADIO_SERVER_NAME", default=cls.host),
            port=int(_env("AIGC_PORT", "GRADIO_SERVER_PORT", default=str(cls.port))),
            share=_truthy(_env("AIGC_SHARE", default="false")),
            device=_env("AIGC_DEVICE", default=cls.device).lower(),
            weights_dir=_env("AIGC_WEIGHTS_DIR", default=cls.weights_dir),
            llm_servers=parse_llm_servers(_env("AIGC_LLM_SERVERS", default="")),
            llm_api_key=os.environ.get("AIGC_LLM_API_KEY") or None,
            llm_connect_timeout_s=_number(os.environ, "AIGC_LLM_CONNECT_TIMEOUT", cls.llm_connect_timeout_s),
            llm_read_timeout_s=_number(os.environ, "AIGC_LLM_READ_TIMEOUT", cls.llm_read_timeout_s),
        )


def _env_settings() -> ServeSettings:
    try:
        return ServeSettings.from_env()
    except ValueError as err:  # a bad AIGC_* value: one clear line, no traceback
        raise SystemExit(f"Environment setting: {err}") from None


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    env = _env_settings()
    parser.add_argument("--host", default=env.host,
                        help=f"address to listen on; 0.0.0.0 for a LAN (env AIGC_HOST, default {env.host})")
    parser.add_argument("--port", type=int, default=env.port, help=f"port (env AIGC_PORT, default {env.port})")
    parser.add_argument("--share", action=argparse.BooleanOptionalAction, default=env.share,
                        help="also publish a temporary public *.gradio.live link (needs internet; env AIGC_SHARE)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=env.device,
                        help="where models run: auto picks cuda, then mps, then cpu (env AIGC_DEVICE)")
    parser.add_argument("--weights-dir", default=env.weights_dir,
                        help="folder of shipped and saved models (env AIGC_WEIGHTS_DIR)")
    parser.add_argument("--llm-servers", default=",".join(env.llm_servers),
                        help="comma-separated OpenAI-compatible base URLs ending in /v1 (vLLM, TGI, "
                             "SGLang, transformers serve); their models join the gallery and the Text "
                             "and Code tabs (env AIGC_LLM_SERVERS; the key comes from AIGC_LLM_API_KEY)")


def serve_settings_from_args(args: argparse.Namespace) -> ServeSettings:
    if not 0 < args.port < 65536:
        raise SystemExit(f"--port must be between 1 and 65535 (got {args.port})")
    try:
        servers = parse_llm_servers(args.llm_servers or "")
    except ValueError as err:
        raise SystemExit(f"--llm-servers: {err}") from None
    env = _env_settings()
    return ServeSettings(host=args.host, port=args.port, share=args.share, device=args.device,
                         weights_dir=args.weights_dir, llm_servers=servers, llm_api_key=env.llm_api_key,
                         llm_connect_timeout_s=env.llm_connect_timeout_s,
                         llm_read_timeout_s=env.llm_read_timeout_s)


def parse_serve_args(argv: list[str] | None = None) -> ServeSettings:
    parser = argparse.ArgumentParser(prog="app.py", description="Start the AIGC Gallery web app.")
    add_serve_args(parser)
    return serve_settings_from_args(parser.parse_args(argv))
