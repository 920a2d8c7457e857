"""Remote engine ids reach only the servers the operator configured (issue 25, item 4).

A `remote:HOST:PORT/model` id a visitor types must never make the app connect anywhere else:
two listening sockets on 127.0.0.1 record every connection: the configured one (asked for its
model list, as it should be) and another one, which must see none, whatever the id looks like
and whichever service or endpoint gets it.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Iterator

import pytest

from aigc_demo.engines import registry as engines  # the Registry object
from aigc_demo.engines.registry import EngineConfig
from aigc_demo.errors import UserError
from aigc_demo.generation.settings import GenerationSettings
from aigc_demo.services import availability, compare_text, textgen
from aigc_demo.services.model_ids import ModelScope, resolve_model_id


class Recorder:
    """A listening socket that counts connections (and closes each at once: no HTTP spoken)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def sockets() -> Iterator[tuple[Recorder, Recorder]]:
    configured, other = Recorder(), Recorder()
    previous = engines.config
    engines.configure(EngineConfig(servers=(f"http://127.0.0.1:{configured.port}/v1",),
                                                    connect_timeout_s=1.0, read_timeout_s=1.0,
                                                    retry_s=0.0))
    yield configured, other
    engines.configure(previous)
    configured.close()
    other.close()


def hostile_ids(good: int, bad: int) -> list[str]:
    return [
        f"remote:127.0.0.1:{bad}/m",
        f"remote:localhost:{bad}/m",
        f"remote:127.0.0.1:{good}@127.0.0.1:{bad}/m",  # userinfo trick
        f"remote:127.0.0.1:{bad}#127.0.0.1:{good}/m",
        f"remote:[::ffff:127.0.0.1]:{bad}/m",
        f"remote:2130706433:{bad}/m",  # 127.0.0.1 as a number
        f"remote:http://127.0.0.1:{bad}/m",
        f" remote:127.0.0.1:{bad}/m",
        f"REMOTE:127.0.0.1:{bad}/m",
        f"remote:127.0.0.1:{good}/../../127.0.0.1:{bad}/v1/m",  # the configured host, a path in the id
        f"remote:127.0.0.1:{good}/http://127.0.0.1:{bad}/v1",
    ]


def _attempts(ref: str) -> list[tuple[str, Any]]:
    scope = ModelScope(weights_dir="/nonexistent")
    settings = GenerationSettings(max_new_tokens=2)
    return [
        ("resolve", lambda: resolve_model_id(ref, scope)),
        ("stream_text", lambda: list(textgen.stream_text(ref, "hi", settings))),
        ("stream_chat", lambda: list(textgen.stream_chat(ref, [{"role": "user", "content": "hi"}], settings))),
        ("stream_code", lambda: list(textgen.stream_code(ref, "def f():", settings, instruction=False))),
        ("look_inside", lambda: textgen.look_inside(ref, "hi")),
        ("is_chat", lambda: textgen.is_chat_model(ref)),
        ("availability", lambda: availability.check(ref)),
        ("compare", lambda: list(compare_text.stream_columns([ref, ref + "x"], "hi", settings,
                                                             update_interval_s=0.0))),
    ]


def test_no_service_connects_to_a_server_the_operator_did_not_configure(sockets) -> None:
    configured, other = sockets
    refused = 0
    for ref in hostile_ids(configured.port, other.port):
        for name, attempt in _attempts(ref):
            try:
                result = attempt()
            except (UserError, ValueError):
                refused += 1
                continue
            if name == "resolve" and ref.startswith(f"remote:127.0.0.1:{configured.port}/"):
                continue  # the configured server: its listing is checked when the id is used
            if name in ("availability", "is_chat"):
                continue  # these only say what an id is (is_chat: False for an unknown one)
            if name == "compare":  # each column says its own failure
                assert result and all(column.error for column in result[-1]), (ref, result[-1])
                refused += 1
                continue
            pytest.fail(f"{name} accepted {ref!r}: {result!r}")
    assert other.connections == 0, f"{other.connections} connection(s) to an unconfigured server"
    assert refused >= 40
    assert configured.connections > 0  # the recorder works: the configured server was asked


def test_no_endpoint_connects_to_a_server_the_operator_did_not_configure(client) -> None:
    """The launched app (no servers configured): the text, code and compare endpoints refuse."""
    from gradio_client.exceptions import AppError

    other = Recorder()
    try:
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        for ref in hostile_ids(other.port, other.port):
            for endpoint, field in (("/text_generate", "model_id"), ("/code_complete", "model_id")):
                params = api[endpoint]["parameters"]
                names = [p["parameter_name"] for p in params]
                model_field = next(n for n in names if "model" in n)
                values = [ref if n == model_field else p.get("parameter_default")
                          for n, p in zip(names, params)]
                with pytest.raises(AppError):
                    client.predict(*values, api_name=endpoint)
            with pytest.raises(AppError, match="not one this app offers you"):
                client.predict("hi", "tiny-gpt", ref, "", True, 4, 0.8, 40, 1.0, 1.0, 7, False,
                               api_name="/compare_text")
    finally:
        other.close()
    assert other.connections == 0
