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


# ---- operator settings of a public server (read once, validated) -----------------------------

HUB_ALLOW_CHOICES = ("any", "catalog")


def _float_env(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number (got {raw!r})") from None
    if not low <= value <= high:
        raise SystemExit(f"{name} must be between {low:g} and {high:g} (got {raw})")
    return value


def _int_env(name: str, default: int, low: int, high: int) -> int:
    value = _float_env(name, float(default), low, high)
    if value != int(value):
        raise SystemExit(f"{name} must be a whole number (got {value:g})")
    return int(value)


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator of a public server decides (environment variables in brackets).

    Read once (`operator_settings()`); tests and embedding code may `configure()` another."""

    admin_token: str = ""  # [AIGC_ADMIN_TOKEN] admin actions (unload) need it; empty: they are off
    trust_proxy: bool = False  # [AIGC_TRUST_PROXY] take the client address from X-Forwarded-For
    hub_allow: str = "any"  # [AIGC_HUB_ALLOW] any | catalog: which hub ids may be loaded/downloaded
    hub_max_download_gb: float = 20.0  # [AIGC_HUB_MAX_DOWNLOAD_GB] per model; 0: no limit
    hub_additions_per_visitor: int = 10  # [AIGC_HUB_MAX_ADDED] hub ids one visitor may add
    jobs_per_client: int = 2  # [AIGC_FT_MAX_PER_CLIENT] active fine-tune jobs per client address
    memory_budget_gb: float = 8.0  # [AIGC_MEMORY_BUDGET_GB] what cached models and maps may hold
    max_text_chars: int = 200_000  # [AIGC_MAX_TEXT_CHARS] longest text a visitor may send
    max_image_pixels: int = 16_000_000  # [AIGC_MAX_IMAGE_PIXELS] largest image opened (w x h)

    def __post_init__(self) -> None:
        if self.hub_allow not in HUB_ALLOW_CHOICES:
            raise SystemExit(f"AIGC_HUB_ALLOW must be one of {', '.join(HUB_ALLOW_CHOICES)} (got {self.hub_allow!r})")

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_token)

    @classmethod
    def from_env(cls) -> "OperatorSettings":
        return cls(
            admin_token=os.environ.get("AIGC_ADMIN_TOKEN", "").strip(),
            trust_proxy=_truthy(os.environ.get("AIGC_TRUST_PROXY", "")),
            hub_allow=os.environ.get("AIGC_HUB_ALLOW", cls.hub_allow).strip().lower() or cls.hub_allow,
            hub_max_download_gb=_float_env("AIGC_HUB_MAX_DOWNLOAD_GB", cls.hub_max_download_gb, 0, 10_000),
            hub_additions_per_visitor=_int_env("AIGC_HUB_MAX_ADDED", cls.hub_additions_per_visitor, 0, 1000),
            jobs_per_client=_int_env("AIGC_FT_MAX_PER_CLIENT", cls.jobs_per_client, 1, 1000),
            memory_budget_gb=_float_env("AIGC_MEMORY_BUDGET_GB", cls.memory_budget_gb, 0.01, 100_000),
            max_text_chars=_int_env("AIGC_MAX_TEXT_CHARS", cls.max_text_chars, 1000, 100_000_000),
            max_image_pixels=_int_env("AIGC_MAX_IMAGE_PIXELS", cls.max_image_pixels, 10_000, 2_000_000_000),
        )


_operator: OperatorSettings | None = None


def operator_settings() -> OperatorSettings:
    """The operator settings, read from the environment on first use."""
    global _operator
    if _operator is None:
        _operator = OperatorSettings.from_env()
    return _operator


def configure(settings: OperatorSettings | None) -> OperatorSettings | None:
    """Replace the operator settings (None: read the environment again); returns the old ones."""
    global _operator
    old, _operator = _operator, settings
    return old
