"""Text and code generation by a remote OpenAI-compatible engine, with the same settings, Stop,
stop rules, streaming updates and figures as local models (see services/textgen.py).

How it plugs in: `services/textgen.py` sends a `remote:` id here instead of loading a model; a
chat goes to chat completions as its messages (the server applies the model's real template), a
plain prompt goes to completions.

Stop closes the HTTP response (from a small watcher thread, so it works even while the server is
silent); servers cancel the generation when their client goes away.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

from aigc_demo.engines import client, registry
from aigc_demo.engines.registry import RemoteModel
from aigc_demo.errors import UserError
from aigc_demo.generation.results import GenerationUpdate, InsideView
from aigc_demo.generation.settings import UPDATE_INTERVAL_S, GenerationSettings
from aigc_demo.generation.stopping import cut_at, find_stop

STOP_POLL_S = 0.05
FINISH_REASONS = {"length": "max_new_tokens", "stop": "eos"}


def remote_model(ref: str) -> RemoteModel:
    """The listed remote model behind `ref`; a ValueError with the reason otherwise."""
    return registry.resolve(ref)


def is_remote_chat(ref: str) -> bool:
    try:
        return registry.resolve(ref).chat
    except ValueError:
        return False


def _close_on_stop(stream: Any, stop: threading.Event, done: threading.Event) -> None:
    while not done.wait(STOP_POLL_S):
        if stop.is_set():
            stream.close()
            return


def stream_remote(ref: str, prompt: str, settings: GenerationSettings | None = None,
                  stop: threading.Event | None = None, update_interval_s: float = UPDATE_INTERVAL_S,
                  messages: list[dict[str, str]] | None = None) -> Iterator[GenerationUpdate]:
    """Stream a completion of `prompt` (or, given `messages`, a chat reply) from the server of
    `ref` as GenerationUpdates (whole text so far)."""
    if not isinstance(prompt, str):
        raise UserError("The prompt must be text.")
    settings, notices = (settings or GenerationSettings()).checked()
    stop = stop or threading.Event()
    model = remote_model(ref)
    config = registry.config
    chat = messages is not None
    text_prompt = prompt
    if not chat and text_prompt == "":
        text_prompt = "\n"
        notices.append("Empty prompt: generating from a newline.")
    request = client.Request(prompt=None if chat else text_prompt,
                             messages=[dict(m) for m in messages] if chat else None,
                             max_tokens=settings.max_new_tokens, temperature=settings.temperature,
                             top_p=settings.top_p, seed=int(settings.seed), top_k=settings.top_k,
                             repetition_penalty=settings.repetition_penalty,
                             stop=list(settings.stop_sequences))
    started = time.perf_counter()
    stream, extra_notices = client.open_stream(model, request, config)
    notices += extra_notices
    done = threading.Event()
    threading.Thread(target=_close_on_stop, args=(stream, stop, done), name="remote-stop", daemon=True).start()
    state: dict[str, Any] = dict(text="", chunks=0, tokens=None, prompt_tokens=0, first=None, reason=None)

    def update(finished: bool) -> GenerationUpdate:
        elapsed = time.perf_counter() - started
        count = state["tokens"] if finished and state["tokens"] is not None else state["chunks"]
        first = state["first"]
        return GenerationUpdate(text=state["text"], new_tokens=count,
                                tokens_per_s=count / elapsed if elapsed > 0 else 0.0,
                                time_to_first_token_s=first - started if first is not None else None,
                                elapsed_s=elapsed, seed=int(settings.seed), prompt_tokens=state["prompt_tokens"],
                                done=finished, stop_reason=(state["reason"] or "max_new_tokens") if finished else None,
                                notices=list(notices))

    deltas = client.iter_deltas(stream, model, config, chat, stopped=stop.is_set)
    last = 0.0
    try:
        for delta in deltas:
            if stop.is_set():
                break
            if delta.completion_tokens is not None:
                state["tokens"] = delta.completion_tokens
            if delta.prompt_tokens is not None:
                state["prompt_tokens"] = delta.prompt_tokens
            if delta.finish_reason:
                state["reason"] = FINISH_REASONS.get(delta.finish_reason, delta.finish_reason)
            if delta.text:
                if state["first"] is None:
                    state["first"] = time.perf_counter()
                state["chunks"] += 1
                text = state["text"] + delta.text
                cut = find_stop("" if chat else text_prompt, text, settings)
                if cut is not None:
                    state["text"], state["reason"] = cut_at(text, cut), cut[1]
                    break
                state["text"] = text
            now = time.perf_counter()
            if now - last >= update_interval_s:
                last = now
                yield update(False)
    finally:
        done.set()
        deltas.close()  # closes the HTTP response: the server stops generating
    if stop.is_set():
        state["reason"] = "stopped"
        state["tokens"] = None
    yield update(True)


def look_inside_remote(ref: str, text: str, position: int = -1) -> InsideView:
    """The server's top next tokens after the whole `text` (no attention: servers do not share it)."""
    if not text:
        raise UserError("There is no text to look inside yet: generate or type some first.")
    model = remote_model(ref)
    top = client.top_next_tokens(model, text, registry.config)
    notice = (f"Remote model on {model.server}: the server's top {len(top)} next tokens after the whole "
              "text, from its log-probabilities. Attention maps and other positions need the weights "
              "on this machine.")
    if position not in (-1, None):
        notice += f" (Position {position} was ignored.)"
    return InsideView(tokens=[text], position=0, top=top, attention=None, layer=0, head=0, n_layers=0,
                      n_heads=0, notice=notice)
