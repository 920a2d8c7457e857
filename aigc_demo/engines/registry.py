"""The remote servers this app fronts: their models (GET /v1/models), cached a few seconds, and
whether each server answers, re-probed so a server that comes back is used again.

Why a cache: the gallery and the pickers list models on every page load; asking each server
every time would put a network round trip (or a connect timeout) in front of every render.
A reachable server is re-listed after `ttl_s`; an unreachable one after `retry_s`, so a server
that comes back shows up within seconds. A failed request marks its server unreachable at once.

Model references the app hands out have the form `remote:<host:port>/<model id>`: the server's
host and port (unique per configured server), then the model id exactly as the server lists it.
Only ids the server lists resolve; anything else is refused with a clear message.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aigc_demo.engines import connection
from aigc_demo.engines.config import EngineConfig
from aigc_demo.errors import UserError

PREFIX = "remote:"
CHAT_WORDS = ("instruct", "chat")  # servers do not say which models have a chat template
CODE_WORDS = ("code", "coder")


@dataclass
class RemoteModel:
    """One model one server lists, as plain values."""

    ref: str  # remote:<host:port>/<model id>
    server: str  # host:port
    base_url: str
    model_id: str
    reachable: bool
    chat: bool  # chat completions (True) or plain completions (False)
    task: str  # text-generation | code-generation
    owned_by: str = ""
    error: str | None = None  # set on the placeholder entry of a server never reached


@dataclass
class ServerState:
    base_url: str
    host: str
    models: list[str] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    reachable: bool | None = None  # None: not asked yet
    error: str = ""
    checked_at: float = 0.0
    refused: set[str] = field(default_factory=set)  # sampling styles it refused (client.sampling_styles)


def host_of(base_url: str) -> str:
    return urlsplit(base_url).netloc


def is_remote_ref(ref: Any) -> bool:
    return isinstance(ref, str) and ref.startswith(PREFIX)


def make_ref(host: str, model_id: str) -> str:
    return f"{PREFIX}{host}/{model_id}"


def split_ref(ref: str) -> tuple[str, str]:
    """`remote:<host>/<model id>` -> (host, model id); ValueError if it is not of that form."""
    body = ref[len(PREFIX):] if is_remote_ref(ref) else ""
    host, _, model_id = body.partition("/")
    if not host or not model_id:
        raise UserError(f"{ref!r} is not a remote model reference (remote:<host:port>/<model id>).")
    return host, model_id


def guess_chat(model_id: str) -> bool:
    name = model_id.lower()
    return any(word in name for word in CHAT_WORDS)


def guess_task(model_id: str) -> str:
    """Code models are named so (CodeLlama, Qwen2.5-Coder, StarCoder): the name, not the owner."""
    name = model_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return "code-generation" if any(word in name for word in CODE_WORDS) else "text-generation"


class Registry:
    """Thread-safe state of the configured servers; `configure` replaces it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.config = EngineConfig()
        self._servers: dict[str, ServerState] = {}

    def configure(self, config: EngineConfig) -> None:
        with self._lock:
            self.config = config
            self._servers = {host_of(url): ServerState(url, host_of(url)) for url in config.servers}
        connection.reset_clients()

    def hosts(self) -> list[str]:
        return list(self._servers)

    def server(self, host: str) -> ServerState | None:
        return self._servers.get(host)

    def _due(self, state: ServerState, now: float) -> bool:
        if state.reachable is None:
            return True
        wait = self.config.ttl_s if state.reachable else self.config.retry_s
        return now - state.checked_at >= wait

    def refresh(self, force: bool = False) -> None:
        """Ask the servers whose listing is stale (all of them with `force`), in parallel, so one
        slow server costs one connect timeout, not one per server."""
        now = time.monotonic()
        due = [s for s in self._servers.values() if force or self._due(s, now)]
        if not due:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(due))) as pool:
            results = list(pool.map(lambda s: (s, connection.list_models(s.base_url, self.config)), due))
        with self._lock:
            for state, (models, error) in results:
                state.checked_at = time.monotonic()
                if error is None:
                    state.models = [m for m, _ in models]
                    state.owners = dict(models)
                    state.reachable, state.error = True, ""
                else:
                    state.reachable, state.error = False, error

    def mark_unreachable(self, host: str, error: str) -> None:
        """A request failed to connect: show it at once and re-probe soon."""
        with self._lock:
            state = self._servers.get(host)
            if state is not None:
                state.reachable, state.error, state.checked_at = False, error, time.monotonic()

    def mark_reachable(self, host: str) -> None:
        """A request went through: the server is back (its listing is refreshed when due)."""
        with self._lock:
            state = self._servers.get(host)
            if state is not None and state.reachable is False:
                state.reachable, state.error = True, ""

    def models(self, refresh: bool = True) -> list[RemoteModel]:
        """Every listed model of every server (the last listing of an unreachable one, marked so),
        and one placeholder with the error for a server that never answered."""
        if refresh:
            self.refresh()
        out: list[RemoteModel] = []
        with self._lock:
            for host, state in self._servers.items():
                reachable = bool(state.reachable)
                if not state.models:
                    if not reachable:
                        out.append(RemoteModel(ref=make_ref(host, "?"), server=host, base_url=state.base_url,
                                               model_id="?", reachable=False, chat=False,
                                               task="text-generation",
                                               error=state.error or "not asked yet"))
                    continue
                for model_id in state.models:
                    out.append(RemoteModel(ref=make_ref(host, model_id), server=host, base_url=state.base_url,
                                           model_id=model_id, reachable=reachable, chat=guess_chat(model_id),
                                           task=guess_task(model_id), owned_by=state.owners.get(model_id, "")))
        return out

    def resolve(self, ref: str) -> RemoteModel:
        """The listed model `ref` names; UserError for a server or model not listed."""
        host, model_id = split_ref(ref)
        state = self._servers.get(host)
        if state is None:
            raise UserError(f"{host} is not one of this app's inference servers: pick a model from the list.")
        if model_id not in state.models:
            self.refresh(force=True)
        for model in self.models(refresh=False):
            if model.server == host and model.model_id == model_id and model.error is None:
                return model
        if not state.reachable:
            raise UserError(f"The inference server {host} cannot be reached ({state.error}); "
                             "try again when it is back, or pick another model.")
        raise UserError(f"The inference server {host} does not serve {model_id!r}: pick a model from the list.")


registry = Registry()
