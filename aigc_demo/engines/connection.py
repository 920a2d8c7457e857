"""The connection to one OpenAI-compatible server: one `openai` client per server and timeout
(never retrying), its model list, and every failure worded as one sentence with the key redacted.

Why apart from client.py: the registry lists models through it, and client.py streams through it
and marks servers in the registry. It imports only `config.py` below it (client -> registry ->
connection -> config), never the registry: no circle.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlsplit

from aigc_demo.engines.config import EngineConfig

LIST_READ_TIMEOUT_S = 5.0

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def redact(text: str, config: EngineConfig) -> str:
    key = config.api_key
    return text.replace(key, "***") if key else text


def reset_clients() -> None:
    with _clients_lock:
        for client in _clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing an idle pool must not stop a reconfigure
                pass
        _clients.clear()


def get_client(base_url: str, config: EngineConfig, read_timeout_s: float | None = None) -> Any:
    """One `openai.OpenAI` per server and timeout (thread-safe; its connection pool is shared)."""
    import openai

    read = read_timeout_s or config.read_timeout_s
    key = f"{base_url}|{read}"
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            timeout = openai.Timeout(connect=config.connect_timeout_s, read=read, write=read,
                                     pool=config.connect_timeout_s)
            # Servers without auth ignore the header; the client insists on some value.
            client = openai.OpenAI(base_url=base_url, api_key=config.api_key or "no-key",
                                   timeout=timeout, max_retries=0)
            _clients[key] = client
    return client


def describe(err: BaseException, host: str, config: EngineConfig) -> tuple[str, bool]:
    """(message for the visitor, whether the server should be marked unreachable)."""
    import openai

    if isinstance(err, openai.APITimeoutError):
        return (f"The inference server {host} sent nothing for {config.read_timeout_s:g} s (or did not "
                f"accept the connection within {config.connect_timeout_s:g} s): it is too slow, stuck or "
                "overloaded. Try again, or pick another model."), False
    if isinstance(err, openai.APIConnectionError):
        cause = err.__cause__ or err.__context__
        reason = f"{type(cause).__name__}: {cause}" if cause else str(err)
        return (f"The inference server {host} cannot be reached or dropped the connection ({reason}). "
                "It is marked unreachable; try again when it is back, or pick another model."), True
    if isinstance(err, openai.APIStatusError):
        detail = error_detail(err)
        return f"The inference server {host} answered HTTP {err.status_code}: {detail}", False
    if isinstance(err, openai.APIError):
        body = err.body if isinstance(err.body, str) else None
        message = f"The inference server {host} reported an error mid-stream: {body or err.message}"
        if "out of range" in message:  # what a GPT says past its last position
            message += (" (the prompt plus Max new tokens is probably longer than the model's context: "
                        "lower Max new tokens or shorten the prompt)")
        return message, False
    if isinstance(err, (json.JSONDecodeError, KeyError, TypeError, AttributeError, IndexError)):
        return (f"The inference server {host} sent a malformed stream ({type(err).__name__}: {err}); "
                "is it an OpenAI-compatible server?"), False
    return f"The inference server {host} failed: {type(err).__name__}: {err}", False


def error_detail(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body.get("detail", body))
        if isinstance(inner, dict):
            inner = inner.get("message", inner)
        text = str(inner)
    else:
        text = getattr(err, "message", "") or str(err)
    return " ".join(text.split())[:400]


def list_models(base_url: str, config: EngineConfig) -> tuple[list[tuple[str, str]], str | None]:
    """([(model id, owner)], None) or ([], error message): GET /v1/models."""
    try:
        page = get_client(base_url, config, min(config.read_timeout_s, LIST_READ_TIMEOUT_S)).models.list()
        return [(str(m.id), str(getattr(m, "owned_by", "") or "")) for m in page.data], None
    except Exception as err:  # noqa: BLE001 - any failure means "not usable now", with the reason
        message, _ = describe(err, urlsplit(base_url).netloc, config)
        return [], redact(message, config)
