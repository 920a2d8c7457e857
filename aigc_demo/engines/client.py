"""Talking to OpenAI-compatible servers through the standard `openai` client: model lists,
streamed completions (plain or chat), next-token log-probabilities, and failures turned into
one clear sentence each.

Why these choices:
- Timeouts are short and explicit (connect ~3 s, read = the longest silence allowed between two
  streamed chunks), and the client never retries: a dead or stuck server is reported within
  seconds, and the app's worker is free again.
- The API key goes only into the client's Authorization header. Every message that leaves this
  module passes through `redact`, so the key cannot reach a page, a log line or an API answer.
- `top_k` and `repetition_penalty` are not OpenAI fields; vLLM, SGLang and TGI take them as extra
  body fields, `transformers serve` refuses them (HTTP 422). A server that refuses them once is
  remembered and asked without them, with a notice.
The connection (one `openai` client per server, listing models, wording failures) is in
connection.py, which the registry uses too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from aigc_demo.engines.connection import describe, error_detail, get_client, redact
from aigc_demo.engines.registry import EngineConfig, RemoteModel, registry
from aigc_demo.errors import UserError

EXTRA_FIELDS = ("top_k", "repetition_penalty")
TOP_LOGPROBS = 10



class EngineError(UserError):
    """A failure talking to a server, worded for the visitor (a UserError: shown in the page)."""


@dataclass
class Delta:
    """One streamed chunk: new text, and the server's token counts when it sends them (last chunk)."""

    text: str
    finish_reason: str | None = None
    completion_tokens: int | None = None
    prompt_tokens: int | None = None


@dataclass
class Request:
    """What to ask for: a plain prompt (completions) or chat messages (chat completions)."""

    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_tokens: int = 200
    temperature: float = 0.8
    top_p: float = 1.0
    seed: int | None = None
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)


def engine_error(err: BaseException, model: RemoteModel, config: EngineConfig) -> EngineError:
    """The visitor's message for `err` (key redacted); marks the server unreachable if needed."""
    message, unreachable = describe(err, model.server, config)
    message = redact(message, config)
    if unreachable:
        registry.mark_unreachable(model.server, message)
    return EngineError(message)


def _refused(err: BaseException, names: tuple[str, ...]) -> bool:
    import openai

    return (isinstance(err, openai.APIStatusError) and err.status_code in (400, 422)
            and any(name in error_detail(err) for name in names))


def sampling_styles(request: Request) -> list[tuple[str, dict[str, Any]]]:
    """Ways to pass the sampling settings the OpenAI API lacks, most common first:
    - "fields": top_k / repetition_penalty as extra body fields (vLLM, SGLang, TGI, llama.cpp);
    - "generation_config": a transformers GenerationConfig as JSON (`transformers serve`, which
      refuses unknown fields and samples only when told `do_sample`);
    - "plain": the OpenAI fields only."""
    fields: dict[str, Any] = {}
    if request.top_k:
        fields["top_k"] = request.top_k
    if request.repetition_penalty != 1.0:
        fields["repetition_penalty"] = request.repetition_penalty
    config = {"do_sample": request.temperature > 0, "max_new_tokens": request.max_tokens,
              "top_p": request.top_p, "repetition_penalty": request.repetition_penalty,
              "top_k": request.top_k or None}
    if request.temperature > 0:
        config["temperature"] = request.temperature
    styles = [("fields", fields)] if fields else []
    return styles + [("generation_config", {"generation_config": json.dumps(config)}), ("plain", {})]


def open_stream(model: RemoteModel, request: Request, config: EngineConfig) -> tuple[Any, list[str]]:
    """Start a streamed completion; returns (the openai Stream, notices). Raises EngineError."""
    client = get_client(model.base_url, config)
    params: dict[str, Any] = dict(model=model.model_id, max_tokens=request.max_tokens, stream=True,
                                  temperature=request.temperature, top_p=request.top_p)
    if request.seed is not None:
        params["seed"] = request.seed
    if request.stop:
        params["stop"] = request.stop[:4]  # the OpenAI limit
    state = registry.server(model.server)
    styles = sampling_styles(request)
    if state is not None and state.refused:  # skip what this server refused before
        styles = [s for s in styles if s[0] not in state.refused] or styles[-1:]

    def create(body: dict[str, Any]) -> Any:
        if request.messages is not None:
            return client.chat.completions.create(messages=request.messages, extra_body=body or None, **params)
        return client.completions.create(prompt=request.prompt or "", extra_body=body or None, **params)

    try:
        for index, (style, body) in enumerate(styles):
            try:
                stream = create(body)
            except Exception as err:
                if index + 1 < len(styles) and _refused(err, tuple(body)):
                    if state is not None:
                        state.refused.add(style)
                    continue
                raise
            registry.mark_reachable(model.server)
            notices = []
            wanted = [n for n in EXTRA_FIELDS if getattr(request, n) not in (0, 1.0)]
            if style == "plain" and wanted:
                notices.append(_extras_notice(model.server, wanted))
            return stream, notices
        raise AssertionError("unreachable")
    except Exception as err:
        raise engine_error(err, model, config) from err


def _extras_notice(host: str, names: list[str]) -> str:
    said = " and ".join(name.replace("_", " ") for name in names)
    return f"The server {host} does not take {said}: not applied (temperature, top-p and seed are)."


def iter_deltas(stream: Any, model: RemoteModel, config: EngineConfig, chat: bool,
                stopped: Callable[[], bool] = lambda: False) -> Iterator[Delta]:
    """The stream's chunks as Deltas; failures become EngineError; the response is closed at the end
    (also when the consumer stops early: that is what ends the server's generation). A failure
    after `stopped()` turned true is the visitor's Stop closing the stream: the iteration just ends."""
    try:
        for chunk in stream:
            usage = getattr(chunk, "usage", None)
            text, finish = "", None
            if chunk.choices:
                choice = chunk.choices[0]
                text = (choice.delta.content or "") if chat else (choice.text or "")
                finish = choice.finish_reason
            elif usage is None:
                raise TypeError("a chunk without choices or usage")
            yield Delta(text=text, finish_reason=finish,
                        completion_tokens=getattr(usage, "completion_tokens", None) if usage else None,
                        prompt_tokens=getattr(usage, "prompt_tokens", None) if usage else None)
    except GeneratorExit:
        raise
    except EngineError:
        raise
    except Exception as err:
        if stopped():
            return
        raise engine_error(err, model, config) from err
    finally:
        stream.close()


def top_next_tokens(model: RemoteModel, text: str, config: EngineConfig) -> list[tuple[str, float]]:
    """The server's top next tokens after `text` with probabilities, via `logprobs`; EngineError
    saying so when the server does not return them."""
    import math

    client = get_client(model.base_url, config)
    try:
        answer = client.completions.create(model=model.model_id, prompt=text, max_tokens=1, temperature=0,
                                           logprobs=TOP_LOGPROBS)
    except Exception as err:
        raise engine_error(err, model, config) from err
    try:
        top = answer.choices[0].logprobs.top_logprobs[0]
    except (AttributeError, IndexError, TypeError):
        top = None
    if not top:
        raise EngineError(f"The inference server {model.server} does not return log-probabilities "
                          "(`logprobs`), so this model's next-token chances cannot be shown. vLLM, SGLang "
                          "and TGI return them; `transformers serve` does not.")
    pairs = sorted(((str(tok), math.exp(float(lp))) for tok, lp in dict(top).items()), key=lambda p: -p[1])
    return pairs[:TOP_LOGPROBS]
