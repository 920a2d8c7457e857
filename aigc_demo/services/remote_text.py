"""Text and code generation by a remote OpenAI-compatible engine, with the same settings, Stop,
stop rules, streaming updates and figures as local models (see services/textgen.py).

How it plugs in: `textgen.load_causal_lm` returns a `RemoteLM` handle and a `RemoteTokenizer`
for a `remote:` reference, and `textgen.stream_with` hands such a handle to `stream_remote`, so the
Text and Code tabs run remote models through the very calls they use for local ones. A chat
prompt built with the tokenizer's "template" is a `ChatPrompt`: it keeps the messages, which go
to chat completions; a plain prompt goes to completions.

Stop closes the HTTP response (from a small watcher thread, so it works even while the server is
silent); servers cancel the generation when their client goes away.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

from aigc_demo.engines import client, registry
from aigc_demo.engines.registry import RemoteModel
from aigc_demo.services.textgen import (UPDATE_INTERVAL_S, GenerationSettings, GenerationUpdate, InsideView,
                                        find_stop)

STOP_POLL_S = 0.05
FINISH_REASONS = {"length": "max_new_tokens", "stop": "eos"}


class ChatPrompt(str):
    """A chat rendered as text (for display) that keeps its messages for chat completions."""

    messages: list[dict[str, str]]

    def __new__(cls, messages: list[dict[str, str]]) -> "ChatPrompt":
        text = "".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>"
        made = super().__new__(cls, text)
        made.messages = [dict(m) for m in messages]
        return made


@dataclass
class RemoteLM:
    """Stands where a loaded model would: which server and model to ask."""

    ref: str
    model_id: str
    server: str
    chat: bool
    is_remote: bool = True


@dataclass
class RemoteTokenizer:
    """Stands where a tokenizer would: says whether the model chats, and 'renders' a chat as a
    ChatPrompt (the server applies the model's real template)."""

    chat_template: str | None

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = True, **_: Any) -> ChatPrompt:
        return ChatPrompt(messages)


def remote_handles(ref: str) -> tuple[RemoteLM, RemoteTokenizer]:
    """(RemoteLM, RemoteTokenizer) for a listed remote model; ValueError with the reason otherwise."""
    model = registry.resolve(ref)
    return (RemoteLM(ref=model.ref, model_id=model.model_id, server=model.server, chat=model.chat),
            RemoteTokenizer("server-side" if model.chat else None))


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


def stream_remote(handle: RemoteLM, prompt: str, settings: GenerationSettings | None = None,
                  stop: threading.Event | None = None,
                  update_interval_s: float = UPDATE_INTERVAL_S) -> Iterator[GenerationUpdate]:
    """Stream a completion from the handle's server as GenerationUpdates (whole text so far)."""
    if not isinstance(prompt, str):
        raise ValueError("The prompt must be text.")
    settings, notices = (settings or GenerationSettings()).checked()
    stop = stop or threading.Event()
    model: RemoteModel = registry.resolve(handle.ref)
    config = registry.config
    chat = isinstance(prompt, ChatPrompt)
    text_prompt = str(prompt)
    if not chat and text_prompt == "":
        text_prompt = "\n"
        notices.append("Empty prompt: generating from a newline.")
    request = client.Request(prompt=None if chat else text_prompt,
                             messages=prompt.messages if isinstance(prompt, ChatPrompt) else None,
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
                    index, reason = cut
                    text = text[:index].rstrip("\n") + "\n" if reason == "function_end" else text[:index]
                    state["text"], state["reason"] = text, reason
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
        raise ValueError("There is no text to look inside yet: generate or type some first.")
    model = registry.resolve(ref)
    top = client.top_next_tokens(model, text, registry.config)
    notice = (f"Remote model on {model.server}: the server's top {len(top)} next tokens after the whole "
              "text, from its log-probabilities. Attention maps and other positions need the weights "
              "on this machine.")
    if position not in (-1, None):
        notice += f" (Position {position} was ignored.)"
    return InsideView(tokens=[text], position=0, top=top, attention=None, layer=0, head=0, n_layers=0,
                      n_heads=0, notice=notice)
