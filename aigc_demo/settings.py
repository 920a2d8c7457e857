"""Every setting of the app, read once from the environment, validated here, passed down as data.

Flags of `app.py` override environment variables, which override the defaults. `current()` is the
process's `Settings` (read from the environment on first use); `ui/launch.create` installs the
served one (`install_serve`), tests and embedding code `install()` another. No other module reads
os.environ for configuration (aigc_demo/environment.py only keeps process hygiene: telemetry off,
HF_HUB_OFFLINE, proxy headers, child processes' environment). A bad value stops start-up with one
line naming the variable.

| Variable | Default | Field | What it sets |
|---|---|---|---|
| AIGC_HOST (or GRADIO_SERVER_NAME) | 127.0.0.1 | serve.host | address to listen on (`--host`) |
| AIGC_PORT (or GRADIO_SERVER_PORT) | 7860 | serve.port | port (`--port`) |
| AIGC_SHARE | off | serve.share | also publish a temporary *.gradio.live link (`--share`) |
| AIGC_DEVICE | auto | serve.device | auto, cuda, mps or cpu (`--device`) |
| AIGC_CPU_BF16 | on | serve.cpu_bf16 | text models on a CPU with native bfloat16 multiply in it (generation/cpu_bf16.py) |
| AIGC_WEIGHTS_DIR | weights/ | serve.weights_dir | folder of shipped models (`--weights-dir`) |
| AIGC_MCP | on | serve.mcp | also serve the generators as MCP tools at /gradio_api/mcp/ (`--mcp`/`--no-mcp`) |
| AIGC_LLM_SERVERS | | serve.llm_servers | OpenAI-compatible base URLs ending in /v1 (`--llm-servers`) |
| AIGC_LLM_API_KEY | | serve.llm_api_key | bearer key for those servers (never shown) |
| AIGC_LLM_CONNECT_TIMEOUT | 3 | serve.llm_connect_timeout_s | seconds to connect to a server |
| AIGC_LLM_READ_TIMEOUT | 10 | serve.llm_read_timeout_s | longest silence between two streamed chunks |
| AIGC_ALLOW_LOCAL_PATHS | off | public.allow_local_paths | pickers also take server folder paths |
| AIGC_USER_TTL_HOURS | 24 | public.user_ttl_hours | what visitors create expires this long after last use |
| AIGC_USER_QUOTA_MB | 500 | public.user_quota_mb | disk one visitor may fill |
| AIGC_TOTAL_QUOTA_MB | 20000 | public.total_quota_mb | disk all visitors together may fill |
| AIGC_SWEEP_INTERVAL_S | 600 | public.sweep_interval_s | how often expired files are deleted |
| AIGC_ADMIN_TOKEN | | operator.admin_token | admin actions (unload) need it; empty: they are off |
| AIGC_TRUST_PROXY | off | operator.trust_proxy | client address from X-Forwarded-For |
| AIGC_HUB_ALLOW | any | operator.hub_allow | any, or catalog: only the catalog's hub models |
| AIGC_HUB_MAX_DOWNLOAD_GB | 20 | operator.hub_max_download_gb | largest hub download per model; 0: no limit |
| AIGC_HUB_MAX_ADDED | 10 | operator.hub_additions_per_visitor | hub ids one visitor may add |
| AIGC_FT_MAX_PER_CLIENT | 2 | operator.jobs_per_client | active fine-tune jobs per client address |
| AIGC_MEMORY_BUDGET_GB | 8 | operator.memory_budget_gb | what cached models and maps may hold |
| AIGC_MAX_TEXT_CHARS | 200000 | operator.max_text_chars | longest text a visitor may send |
| AIGC_MAX_IMAGE_PIXELS | 16000000 | operator.max_image_pixels | largest image opened (w x h) |
| AIGC_FT_MAX_STEPS | 5000 | jobs.max_steps | steps per fine-tune job |
| AIGC_FT_MAX_UPLOAD_MB | 20 | jobs.max_upload_mb | size of one uploaded file |
| AIGC_FT_MAX_JOBS | 1 | jobs.max_concurrent | jobs training at once; the others queue |
| AIGC_FT_MAX_QUEUE | 8 | jobs.max_queued | jobs waiting |
| AIGC_FT_THREADS | 0 | jobs.job_threads | torch threads per job (0: cores - 1, shared) |
| AIGC_FT_DOWNLOADS | on | jobs.allow_download | fetch MNIST / Fashion-MNIST when not local |
| AIGC_RUNS_DIR | runs/ | jobs.runs_dir | jobs, uploads and saved models live under it |
| AIGC_USER_MODELS_DIR | <runs>/user_models | jobs.user_models_dir | where visitors' saved models go |
| AIGC_PUBLISH_USER_MODELS | off | jobs.publish_user_models | everyone sees every saved model |
| AIGC_DATA_DIR | | data_dir | folder with the MNIST / Fashion-MNIST IDX files |
| AIGC_IMAGE_DIR | a temp folder | image_dir | where generated PNGs are written |
| AIGC_TORCH_COMPILE | off | torch_compile | torch.compile the diffusion UNet on a GPU |
| AIGC_LANG | en | lang | language of text outside a request (en, zh) |
| AIGC_SESSION_SECRET | | session_secret | keeps visitors' session ids valid across restarts |
| SPACE_HOST | | space_host | set by Hugging Face Spaces: the public host for links |

Switches (`off`/`on`) take 1/true/yes/on or 0/false/no/off.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
HUB_ALLOW_CHOICES = ("any", "catalog")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def switched_on(value: str) -> bool:
    """The one reading of a switch: 1/true/yes/on (any case) is on."""
    return value.strip().lower() in _TRUE


class Env:
    """Typed reads of one environment mapping; a bad value is a ValueError naming the variable."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env

    def text(self, *names: str, default: str = "") -> str:
        """The first of `names` that is set and not blank, stripped; else `default`."""
        for name in names:
            value = (self.env.get(name) or "").strip()
            if value:
                return value
        return default

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in _TRUE or raw in _FALSE:
            return switched_on(raw)
        raise ValueError(f"{name} must be one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)} (got {raw!r}).")

    def number(self, name: str, default: float, low: float = -math.inf, high: float = math.inf) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number (got {raw!r}).") from None
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low:g} and {high:g} (got {raw}).")
        return value

    def whole(self, name: str, default: int, low: int, high: int) -> int:
        value = self.number(name, float(default), low, high)
        if value != int(value):
            raise ValueError(f"{name} must be a whole number (got {value:g}).")
        return int(value)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default=default).lower()
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)} (got {value!r}).")
        return value


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


@dataclass(frozen=True)
class PublicSettings:
    """What strangers may do on a shared server and how long what they create is kept."""

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
        read = Env(env)
        return cls(
            allow_local_paths=read.flag("AIGC_ALLOW_LOCAL_PATHS"),
            user_ttl_hours=read.number("AIGC_USER_TTL_HOURS", cls.user_ttl_hours),
            user_quota_mb=read.number("AIGC_USER_QUOTA_MB", cls.user_quota_mb),
            total_quota_mb=read.number("AIGC_TOTAL_QUOTA_MB", cls.total_quota_mb),
            sweep_interval_s=read.number("AIGC_SWEEP_INTERVAL_S", cls.sweep_interval_s),
        )


def public_settings() -> PublicSettings:
    """The process's public-server settings (a default for dataclasses that carry them)."""
    return current().serve.public


@dataclass
class ServeSettings:
    """Where and how the web app listens. On a Space, GRADIO_SERVER_NAME/PORT are set for us."""

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    device: str = "auto"
    cpu_bf16: bool = True  # text models on a CPU with native bfloat16 multiply in it (generation/cpu_bf16.py)
    weights_dir: str = str(PROJECT_ROOT / "weights")
    mcp: bool = True  # the generators are also MCP tools (ui/mcp_tools.py)
    llm_servers: tuple[str, ...] = ()  # OpenAI-compatible base URLs ending in /v1
    llm_api_key: str | None = field(default=None, repr=False)  # never printed, logged or shown
    llm_connect_timeout_s: float = 3.0
    llm_read_timeout_s: float = 10.0  # longest silence between two streamed chunks
    public: PublicSettings = field(default_factory=public_settings)

    def __post_init__(self) -> None:
        self.llm_servers = parse_llm_servers(self.llm_servers)
        self.device = str(self.device).strip().lower() or "auto"
        for name in ("mcp", "cpu_bf16"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False (got {getattr(self, name)!r}).")
        if self.device not in DEVICE_CHOICES:
            raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)} (got {self.device!r}).")
        for name in ("llm_connect_timeout_s", "llm_read_timeout_s"):
            if not 0 < float(getattr(self, name)) <= 600:
                raise ValueError(f"{name} must be between 0 and 600 seconds (got {getattr(self, name)})")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServeSettings":
        read = Env(env)
        return cls(
            host=read.text("AIGC_HOST", "GRADIO_SERVER_NAME", default=cls.host),
            port=read.whole("AIGC_PORT", read.whole("GRADIO_SERVER_PORT", cls.port, 1, 65535), 1, 65535),
            share=read.flag("AIGC_SHARE"),
            device=read.choice("AIGC_DEVICE", cls.device, DEVICE_CHOICES),
            cpu_bf16=read.flag("AIGC_CPU_BF16", default=cls.cpu_bf16),
            weights_dir=read.text("AIGC_WEIGHTS_DIR", default=cls.weights_dir),
            mcp=read.flag("AIGC_MCP", default=cls.mcp),
            llm_servers=parse_llm_servers(read.text("AIGC_LLM_SERVERS")),
            llm_api_key=read.text("AIGC_LLM_API_KEY") or None,
            llm_connect_timeout_s=read.number("AIGC_LLM_CONNECT_TIMEOUT", cls.llm_connect_timeout_s),
            llm_read_timeout_s=read.number("AIGC_LLM_READ_TIMEOUT", cls.llm_read_timeout_s),
            public=PublicSettings.from_env(env),
        )


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator of a public server decides (environment variables in brackets)."""

    admin_token: str = field(default="", repr=False)  # [AIGC_ADMIN_TOKEN] empty: admin actions are off
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
            raise ValueError(f"AIGC_HUB_ALLOW must be one of {', '.join(HUB_ALLOW_CHOICES)} (got {self.hub_allow!r})")

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "OperatorSettings":
        read = Env(env)
        return cls(
            admin_token=read.text("AIGC_ADMIN_TOKEN"),
            trust_proxy=read.flag("AIGC_TRUST_PROXY"),
            hub_allow=read.choice("AIGC_HUB_ALLOW", cls.hub_allow, HUB_ALLOW_CHOICES),
            hub_max_download_gb=read.number("AIGC_HUB_MAX_DOWNLOAD_GB", cls.hub_max_download_gb, 0, 10_000),
            hub_additions_per_visitor=read.whole("AIGC_HUB_MAX_ADDED", cls.hub_additions_per_visitor, 0, 1000),
            jobs_per_client=read.whole("AIGC_FT_MAX_PER_CLIENT", cls.jobs_per_client, 1, 1000),
            memory_budget_gb=read.number("AIGC_MEMORY_BUDGET_GB", cls.memory_budget_gb, 0.01, 100_000),
            max_text_chars=read.whole("AIGC_MAX_TEXT_CHARS", cls.max_text_chars, 1000, 100_000_000),
            max_image_pixels=read.whole("AIGC_MAX_IMAGE_PIXELS", cls.max_image_pixels, 10_000, 2_000_000_000),
        )


@dataclass(frozen=True)
class JobSettings:
    """Limits and folders of the fine-tune jobs (environment variables in brackets)."""

    max_steps: int = 5000  # [AIGC_FT_MAX_STEPS] per job
    max_upload_mb: float = 20.0  # [AIGC_FT_MAX_UPLOAD_MB] per uploaded file
    max_concurrent: int = 1  # [AIGC_FT_MAX_JOBS] jobs training at once; others queue
    max_queued: int = 8  # [AIGC_FT_MAX_QUEUE] jobs waiting
    runs_dir: str = str(PROJECT_ROOT / "runs")  # [AIGC_RUNS_DIR] jobs (<runs>/finetune), saved models
    user_models_dir: str = str(PROJECT_ROOT / "runs" / "user_models")  # [AIGC_USER_MODELS_DIR]
    publish_user_models: bool = False  # [AIGC_PUBLISH_USER_MODELS] everyone sees every saved model
    job_threads: int = 0  # [AIGC_FT_THREADS] torch threads per job (0: cores - 1, shared by jobs)
    allow_download: bool = True  # [AIGC_FT_DOWNLOADS] fetch MNIST / Fashion-MNIST when not local

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "JobSettings":
        read = Env(env)
        runs = read.text("AIGC_RUNS_DIR", default=cls.runs_dir)
        return cls(
            max_steps=read.whole("AIGC_FT_MAX_STEPS", cls.max_steps, 1, 10_000_000),
            max_upload_mb=read.number("AIGC_FT_MAX_UPLOAD_MB", cls.max_upload_mb, 0.001, 1_000_000),
            max_concurrent=read.whole("AIGC_FT_MAX_JOBS", cls.max_concurrent, 1, 1000),
            max_queued=read.whole("AIGC_FT_MAX_QUEUE", cls.max_queued, 0, 100_000),
            runs_dir=runs,
            user_models_dir=read.text("AIGC_USER_MODELS_DIR", default=str(Path(runs) / "user_models")),
            publish_user_models=read.flag("AIGC_PUBLISH_USER_MODELS"),
            job_threads=read.whole("AIGC_FT_THREADS", cls.job_threads, 0, 4096),
            allow_download=read.flag("AIGC_FT_DOWNLOADS", default=True),
        )


@dataclass(frozen=True)
class Settings:
    """Everything configurable, in one object (the table in this module's docstring)."""

    serve: ServeSettings
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    data_dir: str | None = None  # [AIGC_DATA_DIR]
    image_dir: str | None = None  # [AIGC_IMAGE_DIR]
    torch_compile: bool = False  # [AIGC_TORCH_COMPILE]
    lang: str = "en"  # [AIGC_LANG]
    session_secret: str | None = field(default=None, repr=False)  # [AIGC_SESSION_SECRET]
    space_host: str = ""  # [SPACE_HOST]

    @property
    def public(self) -> PublicSettings:
        return self.serve.public

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        read = Env(env)
        return cls(
            serve=ServeSettings.from_env(env),
            operator=OperatorSettings.from_env(env),
            jobs=JobSettings.from_env(env),
            data_dir=read.text("AIGC_DATA_DIR") or None,
            image_dir=read.text("AIGC_IMAGE_DIR") or None,
            torch_compile=read.flag("AIGC_TORCH_COMPILE"),
            lang=read.text("AIGC_LANG", default="en"),
            session_secret=read.text("AIGC_SESSION_SECRET") or None,
            space_host=read.text("SPACE_HOST").split(",")[0].strip(),
        )


def read_settings(env: Mapping[str, str] | None = None) -> Settings:
    """`Settings.from_env`, with a bad value as one clear line and no traceback (start-up)."""
    try:
        return Settings.from_env(env)
    except ValueError as err:
        raise SystemExit(f"Environment setting: {err}") from None


_current: Settings | None = None


def current() -> Settings:
    """The process's settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = read_settings()
    return _current


def install(settings: Settings | None) -> Settings | None:
    """Make `settings` the process's (None: read the environment again on next use); returns the old."""
    global _current
    old, _current = _current, settings
    return old


def install_serve(serve: ServeSettings) -> Settings:
    """The app is served with `serve` (flags applied): every later read sees it (device included)."""
    settings = replace(current(), serve=serve)
    install(settings)
    return settings


def operator_settings() -> OperatorSettings:
    """The operator settings of the process."""
    return current().operator


def configure(operator: OperatorSettings | None) -> OperatorSettings | None:
    """Replace the operator settings (None: read them from the environment again); returns the old."""
    old = current().operator
    install(replace(current(), operator=operator if operator is not None else _operator_from_env()))
    return old


def _operator_from_env() -> OperatorSettings:
    try:
        return OperatorSettings.from_env()
    except ValueError as err:
        raise SystemExit(f"Environment setting: {err}") from None


# ---- command line of app.py ---------------------------------------------------------------------

def add_serve_args(parser: argparse.ArgumentParser) -> None:
    env = read_settings().serve
    parser.add_argument("--host", default=env.host,
                        help=f"address to listen on; 0.0.0.0 for a LAN (env AIGC_HOST, default {env.host})")
    parser.add_argument("--port", type=int, default=env.port, help=f"port (env AIGC_PORT, default {env.port})")
    parser.add_argument("--share", action=argparse.BooleanOptionalAction, default=env.share,
                        help="also publish a temporary public *.gradio.live link (needs internet; env AIGC_SHARE)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=env.device,
                        help="where models run: auto picks cuda, then mps, then cpu (env AIGC_DEVICE)")
    parser.add_argument("--weights-dir", default=env.weights_dir,
                        help="folder of shipped and saved models (env AIGC_WEIGHTS_DIR)")
    parser.add_argument("--mcp", action=argparse.BooleanOptionalAction, default=env.mcp,
                        help="also serve the generators as MCP tools at /gradio_api/mcp/ (env AIGC_MCP, "
                             "default on)")
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
    env = read_settings().serve
    return replace(env, host=args.host, port=args.port, share=args.share, device=args.device,
                   weights_dir=args.weights_dir, mcp=args.mcp, llm_servers=servers)


def parse_serve_args(argv: list[str] | None = None) -> ServeSettings:
    parser = argparse.ArgumentParser(prog="app.py", description="Start the AIGC Gallery web app.")
    add_serve_args(parser)
    return serve_settings_from_args(parser.parse_args(argv))
