"""Streaming a completion from a loaded model: the path of the app, training previews and benches.

- Batching: every request goes to its model's decoding thread (`generation.batcher`), which
  decodes all requests on that model together, one forward pass per step for all of them; a
  request alone is a batch of one, through the same code. `model` is a loaded model (its
  batcher runs in this process: training previews, benches) or a `ServedModel` (the app: the
  same batcher in the model's own process, `generation.model_server`), read the same way.
- Streaming: the consumer (a Gradio worker, a training loop) reads its request's token queue,
  decodes the text and checks stop rules; each update carries the whole text so far (a stop
  sequence may trim text that was already shown) plus token counts and timings.
- Stop: every request has its own `threading.Event`, read by the batcher between steps, so Stop
  ends only that stream (and a stop sequence or a closed stream ends only its row).
- Determinism by seed, also with several users at once: each row's token is drawn from its own
  logits with the request's own `torch.Generator` (`generation.sampling`).
- Longer than the context window: a row about to pass the context is cut to its last 3/4 and
  prefilled again, like nanoGPT's crop, so a 256-token model can write 1000 tokens.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Iterator

from aigc_demo.device import gpu_task
from aigc_demo.generation.batcher import DecodeRequest, Finished, batcher_for
from aigc_demo.generation.model_server import ServedModel, ServerFailure
from aigc_demo.generation.prompt import prepare_prompt
from aigc_demo.generation.results import GenerationUpdate
from aigc_demo.generation.settings import UPDATE_INTERVAL_S, GenerationSettings
from aigc_demo.generation.stopping import cut_at, find_stop
from aigc_demo.models.gpt import context_window
from aigc_demo.models.tokenizers import is_char_level

STREAMS_PER_INTERVAL = 4  # updates come every UPDATE_INTERVAL_S while this many streams run; less often with more
STOP_POLL_S = 0.05  # while waiting for a token, Stop is checked this often


class Session:
    """One request's state, shared by the worker thread (writer) and the consumer (reader)."""

    def __init__(self, tokenizer: Any, prompt: str, settings: GenerationSettings, stop: threading.Event) -> None:
        self.tokenizer, self.prompt, self.settings, self.user_stop = tokenizer, prompt, settings, stop
        self.halt = threading.Event()  # stop sequence found / consumer gone
        self.ids: list[int] = []
        self.text = ""
        self.stop_reason: str | None = None
        self.first_token_at: float | None = None
        self.lock = threading.Lock()
        # Hide special tokens of hub tokenizers (<|endoftext|>); ours decode exactly.
        self.skip_special = not is_char_level(tokenizer)

    def should_stop(self) -> bool:
        return self.halt.is_set() or self.user_stop.is_set()

    def _decode(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=self.skip_special, clean_up_tokenization_spaces=False)
        return text.rstrip("\ufffd")  # the rest of a multi-byte character comes with the next token

    def add(self, new_ids: list[int]) -> str:
        """Append tokens; returns the visible text (incomplete UTF-8 held back, stop cut applied)."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        before = len(self.ids)
        self.ids.extend(new_ids)
        text = self._decode(self.ids)
        cut = find_stop(self.prompt, text, self.settings)
        if cut is not None and len(new_ids) > 1:
            # Several tokens came at once: keep only those up to the stop, so the token count
            # (and tokens/s) is the same however the tokens were grouped into updates.
            for end in range(before + 1, len(self.ids) + 1):
                shorter = self._decode(self.ids[:end])
                if find_stop(self.prompt, shorter, self.settings) is not None:
                    del self.ids[end:]
                    text = shorter
                    cut = find_stop(self.prompt, text, self.settings)
                    break
        if cut is not None:
            text = cut_at(text, cut)
            self.stop_reason = cut[1]
            self.halt.set()
        with self.lock:
            self.text = text
        return text


def eos_ids(model: Any) -> frozenset[int]:
    """The token ids that end a text for this model (its generation config's EOS)."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        return frozenset()
    return frozenset(int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos]))


def _receive(items: list[Any], session: Session, stop: threading.Event) -> tuple[list[int], str | None]:
    """New token ids from a batch of queue items, and the batcher's reason if it finished."""
    new_ids: list[int] = []
    reason = None
    for item in items:
        if isinstance(item, Finished):
            reason = item.reason
        elif isinstance(item, BaseException):
            if isinstance(item, ValueError):
                raise item
            if isinstance(item, ServerFailure):  # already worded by the model's process
                raise RuntimeError(str(item)) from item
            raise RuntimeError(f"Generation failed: {item.__class__.__name__}: {item}") from item
        elif session.stop_reason is None and not stop.is_set():
            new_ids += item  # after Stop the text stays as the visitor last saw it
    return new_ids, reason


@gpu_task(duration=120)  # ZeroGPU: the GPU is held for one call
def stream_with(model: Any, tokenizer: Any, prompt: str, settings: GenerationSettings | None = None,
                stop: threading.Event | None = None,
                update_interval_s: float = UPDATE_INTERVAL_S) -> Iterator[GenerationUpdate]:
    """Stream a completion of `prompt` from a loaded model (see the module notes); updates come at
    most every `update_interval_s` seconds (0: one per token)."""
    settings, notices = (settings or GenerationSettings()).checked()
    stop = stop or threading.Event()
    ctx = context_window(model.config)
    quarter = max(ctx // 4, 1)
    prompt_ids, prompt_notices, from_start = prepare_prompt(
        tokenizer, prompt, ctx, min(settings.max_new_tokens, quarter))
    notices += prompt_notices
    session = Session(tokenizer, "" if from_start else prompt, settings, stop)
    started = time.perf_counter()
    batcher = model if isinstance(model, ServedModel) else batcher_for(model)
    request = batcher.submit(DecodeRequest(
        list(prompt_ids), settings.max_new_tokens, settings, eos_ids(model), session.should_stop))
    reason_box: list[str] = []

    def update(done: bool) -> GenerationUpdate:
        now = time.perf_counter()
        elapsed = now - started
        with session.lock:
            text = session.text
        n_new = len(session.ids)
        ttft = session.first_token_at - started if session.first_token_at is not None else None
        reason = None
        if done:
            reason = session.stop_reason or ("stopped" if stop.is_set() else None) or \
                (reason_box[0] if reason_box else "max_new_tokens")
        return GenerationUpdate(text=text, new_tokens=n_new, tokens_per_s=n_new / elapsed if elapsed > 0 else 0.0,
                                time_to_first_token_s=ttft, elapsed_s=elapsed, seed=int(settings.seed),
                                prompt_tokens=len(prompt_ids), done=done, stop_reason=reason,
                                notices=list(notices))

    try:
        finished, last_update = False, 0.0
        while not finished:
            # Gather the tokens that come within the update interval, then send one update: a
            # browser at the end of a websocket is never flooded (a slow machine's page stays
            # responsive), never lags behind the model, and Stop is seen at once: on a busy CPU a
            # token can take a second, so the wait for the next one checks Stop every 50 ms.
            try:
                items = [request.out.get(timeout=STOP_POLL_S)]
            except queue.Empty:
                if stop.is_set():
                    break
                continue
            # At most ~20 updates a second by default; fewer per stream when many stream at
            # once, so the server's total update rate (and its share of the CPU) stays bounded.
            deadline = last_update + update_interval_s * max(1.0, batcher.load() / STREAMS_PER_INTERVAL)
            # One wake-up per update, not one per token (8 streams of a fast model are thousands of
            # thread switches a second in the web process); Stop still ends the wait at once.
            wait = deadline - time.perf_counter()
            if wait > 0 and not isinstance(items[-1], (Finished, BaseException)):
                stop.wait(wait)
            while not isinstance(items[-1], (Finished, BaseException)):
                try:
                    items.append(request.out.get_nowait())
                except queue.Empty:
                    break
            new_ids, reason = _receive(items, session, stop)
            if reason is not None:
                finished = True
                reason_box.append(reason)
            if new_ids:
                session.add(new_ids)
            if stop.is_set():
                break
            if session.stop_reason is not None:
                break  # the batcher drops the row at its next step
            if not finished:
                yield update(False)
                last_update = time.perf_counter()
        session.halt.set()
        yield update(True)
    finally:
        session.halt.set()  # the consumer went away (or finished): the batcher drops the row


def generate_with(model: Any, tokenizer: Any, prompt: str, settings: GenerationSettings | None = None,
                  stop: threading.Event | None = None) -> GenerationUpdate:
    """The final update of `stream_with` (the same code path, for CLI, cards and tests)."""
    last: GenerationUpdate | None = None
    for last in stream_with(model, tokenizer, prompt, settings, stop):
        pass
    assert last is not None
    return last
