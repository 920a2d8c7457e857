"""Text and code generation for any transformers causal LM folder or hub id: streaming, Stop,
sampling settings, stop sequences, and a look inside (next-token probabilities, attention).

Design notes (why it looks like this):
- Batching: every request goes to its model's decoding thread (`aigc_demo.generation.batcher`),
  which decodes all requests on that model together, one forward pass per step for all of
  them; a request alone is a batch of one, through the same code.
- Streaming: the consumer (a Gradio worker) reads its request's token queue, decodes the text
  and checks stop sequences; each update carries the whole text so far (a stop sequence may
  trim text that was already shown) plus token counts and timings.
- Stop: every request has its own `threading.Event`, read by the batcher between steps, so
  Stop ends only that user's stream (and a stop sequence or a closed stream ends only its row).
- Determinism by seed, also with several users at once: each row's token is drawn from its own
  logits with the request's own `torch.Generator` (temperature, top-k, top-p, repetition
  penalty; `aigc_demo.generation.sampling`). The global torch RNG is never used.
- Longer than the context window: a row about to pass the context is cut to its last 3/4 and
  prefilled again, like nanoGPT's crop, so a 256-token model can write 1000 tokens.
- torch/transformers are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import ast
import math
import queue
import re
import secrets
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from aigc_demo.engines.registry import is_remote_ref
from aigc_demo.device import gpu_task

MAX_NEW_TOKENS_LIMIT = 1024
MAX_TEMPERATURE = 10.0
PROMPT_CHARS_PER_TOKEN_BOUND = 64  # a huge prompt is cut to ctx*64 chars before tokenising
TOP_K_INSIDE = 10
UPDATE_INTERVAL_S = 0.05  # streaming updates are sent at most this often...
STREAMS_PER_INTERVAL = 4  # ...while this many streams run; with more, each stream updates less often
STOP_POLL_S = 0.05  # while waiting for a token, Stop is checked this often
CONCURRENT_STREAMS = 16  # streams the app runs at once: the batcher decodes this many rows together


@dataclass
class GenerationSettings:
    """What the user sets. temperature 0 = greedy; top_k 0 = off; top_p 1 = off; seed None = random."""

    max_new_tokens: int = 200
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop_sequences: tuple[str, ...] = ()
    stop_at_function_end: bool = False

    def checked(self) -> tuple["GenerationSettings", list[str]]:
        """Refuse impossible values (ValueError, user-facing) and clamp absurd ones (with a notice)."""
        notices: list[str] = []
        for name in ("temperature", "top_p", "repetition_penalty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name.replace('_', ' ').capitalize()} must be a number (got {value!r}).")
        if self.temperature < 0:
            raise ValueError(f"Temperature cannot be negative (got {self.temperature}). Use 0 for greedy "
                             "decoding (always the most likely token) or a positive value to sample.")
        if self.top_k < 0:
            raise ValueError(f"Top-k cannot be negative (got {self.top_k}); 0 turns it off.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Top-p must be in (0, 1] (got {self.top_p}); 1 turns it off.")
        if self.repetition_penalty <= 0:
            raise ValueError(f"Repetition penalty must be positive (got {self.repetition_penalty}); "
                             "1 turns it off.")
        fixed = self
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            clamped = min(max(int(self.max_new_tokens), 1), MAX_NEW_TOKENS_LIMIT)
            notices.append(f"Max new tokens {self.max_new_tokens} was clamped to {clamped} "
                           f"(allowed: 1 to {MAX_NEW_TOKENS_LIMIT}).")
            fixed = replace(fixed, max_new_tokens=clamped)
        if self.temperature > MAX_TEMPERATURE:
            notices.append(f"Temperature {self.temperature} was clamped to {MAX_TEMPERATURE}.")
            fixed = replace(fixed, temperature=MAX_TEMPERATURE)
        if fixed.seed is None:
            fixed = replace(fixed, seed=secrets.randbelow(2**31))
        fixed = replace(fixed, stop_sequences=tuple(s for s in fixed.stop_sequences if s))
        return fixed, notices


@dataclass
class GenerationUpdate:
    """One streaming update: the generated text so far (prompt excluded) and live figures."""

    text: str
    new_tokens: int
    tokens_per_s: float
    time_to_first_token_s: float | None
    elapsed_s: float
    seed: int
    prompt_tokens: int
    done: bool = False
    stop_reason: str | None = None  # max_new_tokens | eos | stop_sequence | function_end | stopped
    notices: list[str] = field(default_factory=list)


# ---- stop sequences ---------------------------------------------------------------------------

_DEF_START = re.compile(r"(async\s+def|def|class)\b|@")
_CLOSERS = (")", "]", "}")


def function_end(prompt: str, generated: str) -> int | None:
    """Where in `generated` the current top-level def/class ends: at the first new top-level line
    (column 0, not a closing bracket) after the body has started. None while still inside."""
    full, offset = prompt + generated, len(prompt)
    in_def = body_seen = False
    pos = 0
    for line in full.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        if not line.strip():
            continue
        if line[0].isspace():
            body_seen = body_seen or in_def
            continue
        if line.startswith(_CLOSERS):
            continue
        if body_seen and start >= offset:
            return start - offset
        in_def = bool(_DEF_START.match(line))
        body_seen = False
    return None


def find_stop(prompt: str, generated: str, settings: GenerationSettings) -> tuple[int, str] | None:
    """The earliest cut point in `generated` and why, or None."""
    best: tuple[int, str] | None = None
    for seq in settings.stop_sequences:
        idx = generated.find(seq)
        if idx >= 0 and (best is None or idx < best[0]):
            best = (idx, "stop_sequence")
    if settings.stop_at_function_end:
        idx = function_end(prompt, generated)
        if idx is not None and (best is None or idx < best[0]):
            best = (idx, "function_end")
    return best


def code_parses(code: str) -> tuple[bool, str]:
    """Whether `code` is valid Python, by `ast.parse` only: the code is never executed."""
    try:
        ast.parse(code)
    except SyntaxError as err:
        return False, f"Does not parse: line {err.lineno}: {err.msg}"
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        return False, f"Does not parse: {type(err).__name__}: {err}"
    return True, "Parses as Python" if code.strip() else "Parses (empty)"


# ---- loading ----------------------------------------------------------------------------------

def load_causal_lm(ref: str, device: str | None = None, eager: bool = False,
                   on_progress: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) for a weights folder or hub id, cached in the shared registry.

    Loading goes through `aigc_demo.hub` (safetensors only, no remote code, a clear message at
    once when a hub model is not downloaded and the Hub is offline). `eager=True` loads a second
    copy with eager attention (needed for attention maps) so the fast SDPA copy other users are
    streaming from is never switched under them.
    """
    if is_remote_ref(ref):  # served by a remote engine: a handle, nothing loaded here
        from aigc_demo.services.remote_text import remote_handles

        return remote_handles(ref)
    from aigc_demo import hub
    from aigc_demo.catalog import hub_entry
    from aigc_demo.device import pick_device
    from aigc_demo.loading import registry

    from aigc_demo.services.validate import identifier

    ref = identifier(ref, "The model")
    choice = pick_device(device)
    key = f"causal-lm:{model_key(ref)}:{choice.name}"

    def loader() -> tuple[Any, Any]:
        source = hub.resolve(ref, kind=hub.CAUSAL_LM, on_progress=on_progress)
        entry = hub_entry(source.repo_id) if source.repo_id else None
        return hub.load_causal_lm(source, dtype=choice.dtype, device=choice.name,
                                  device_map_auto=bool(entry and entry.device_map_auto))

    model, tokenizer = registry.get(key, loader, choice.name)
    return (eager_twin(model), tokenizer) if eager else (model, tokenizer)


def model_key(ref: str) -> str:
    """One cache key per model: a folder by its resolved path (`./w/x`, `w/x/` and `/abs/w/x` are
    one model), a hub id as typed."""
    from aigc_demo import hub

    if hub.is_local_ref(ref):
        try:
            return str(Path(ref).expanduser().resolve())
        except (OSError, RuntimeError):
            return ref
    return ref


_twins: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_twins_lock = threading.Lock()


def eager_twin(model: Any) -> Any:
    """The same model with eager attention (attention maps need it), sharing every weight
    tensor with `model`: no second copy in memory, and the SDPA model other visitors stream from
    is never switched under them. Dropped with `model` when the registry unloads it."""
    import copy

    with _twins_lock:
        twin = _twins.get(model)
        if twin is None:
            shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
            twin = copy.deepcopy(model, memo=shared)
            twin.set_attn_implementation("eager")
            _twins[model] = twin
        return twin


def has_chat_template(tokenizer: Any) -> bool:
    """Instruct models ship a chat template; base models (ours, GPT-2) complete text."""
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer: Any, history: list[dict[str, str]], system: str = "") -> str:
    """The conversation rendered with the model's own chat template, ready for the assistant."""
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + [
        {"role": m["role"], "content": m["content"]} for m in history if m.get("content")]
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("Type a message first.")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


# ---- generation core --------------------------------------------------------------------------

def _start_ids(tokenizer: Any) -> tuple[list[int], str]:
    """Where an empty prompt starts: BOS (or EOS, GPT-2's document separator), else a newline."""
    for name in ("bos_token", "eos_token"):
        tid = getattr(tokenizer, f"{name}_id", None)
        if tid is not None:
            return [tid], getattr(tokenizer, name)
    newline = tokenizer.get_vocab().get("\n")
    if newline is None:
        ids = tokenizer("\n", add_special_tokens=False)["input_ids"]
        newline = ids[0] if ids else None
    if newline is None:
        raise ValueError("The prompt is empty and this model has no start token: type a few words first.")
    return [newline], "\n"


class _Session:
    """One request's state, shared by the worker thread (writer) and the consumer (reader)."""

    def __init__(self, tokenizer: Any, prompt: str, settings: GenerationSettings, stop: threading.Event) -> None:
        from aigc_demo.models.tokenizers import is_char_level

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
            index, reason = cut
            text = text[:index]
            if reason == "function_end":
                text = text.rstrip("\n") + "\n"
            self.stop_reason = reason
            self.halt.set()
        with self.lock:
            self.text = text
        return text


def _prepare_prompt(tokenizer: Any, prompt: str, ctx: int, want: int) -> tuple[list[int], list[str], bool]:
    """Prompt ids within the context (cut from the left), plus notices for the user."""
    from aigc_demo.models.tokenizers import char_fallback, encode, unseen_characters

    notices: list[str] = []
    if prompt == "":
        ids, shown = _start_ids(tokenizer)
        notices.append(f"Empty prompt: generating from the start token {shown!r}.")
        return ids, notices, True
    text = prompt
    char_cap = ctx * PROMPT_CHARS_PER_TOKEN_BOUND
    if len(text) > char_cap:  # no need to tokenise a megabyte to keep its last few hundred tokens
        text = text[-char_cap:]
    unseen = unseen_characters(tokenizer, text)
    if unseen:
        shown = ", ".join(repr(c) for c in unseen[:10]) + (" ..." if len(unseen) > 10 else "")
        notices.append(f"{len(unseen)} character(s) this model never saw ({shown}) were read as "
                       f"{char_fallback(tokenizer)!r}.")
    ids = encode(tokenizer, text)
    keep = max(ctx - want, 1)
    if len(ids) > keep or len(text) < len(prompt):
        ids = ids[-keep:]
        used = len(tokenizer.decode(ids, clean_up_tokenization_spaces=False))
        notices.append(f"The prompt is {len(prompt):,} characters; this model reads at most {ctx} tokens, "
                       f"so it was cut from the left: only the last {len(ids)} tokens (~{used:,} characters) "
                       "were used.")
    return ids, notices, False


def _eos_ids(model: Any) -> frozenset[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        return frozenset()
    return frozenset(int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos]))


@gpu_task(duration=120)  # ZeroGPU: the GPU is held for one call
def stream_with(model: Any, tokenizer: Any, prompt: str, settings: GenerationSettings | None = None,
                stop: threading.Event | None = None,
                update_interval_s: float = UPDATE_INTERVAL_S) -> Iterator[GenerationUpdate]:
    """Stream a completion of `prompt` from a loaded model (see the module notes); updates come at
    most every `update_interval_s` seconds (0: one per token)."""
    from aigc_demo.generation.batcher import DecodeRequest, Finished, batcher_for
    from aigc_demo.generation.sampling import SamplingParams
    from aigc_demo.models.gpt import context_window

    from aigc_demo.services import validate

    prompt = validate.text(prompt, "The prompt")

    if getattr(model, "is_remote", False):  # a remote engine's handle (services/remote_text.py)
        from aigc_demo.services.remote_text import stream_remote

        yield from stream_remote(model, prompt, settings, stop, update_interval_s)
        return
    settings, notices = (settings or GenerationSettings()).checked()
    stop = stop or threading.Event()
    ctx = context_window(model.config)
    quarter = max(ctx // 4, 1)
    prompt_ids, prompt_notices, from_start = _prepare_prompt(
        tokenizer, prompt, ctx, min(settings.max_new_tokens, quarter))
    notices += prompt_notices
    session = _Session(tokenizer, "" if from_start else prompt, settings, stop)
    params = SamplingParams(settings.temperature, settings.top_k, settings.top_p,
                            settings.repetition_penalty, int(settings.seed))
    started = time.perf_counter()
    batcher = batcher_for(model)
    request = batcher.submit(DecodeRequest(
        list(prompt_ids), settings.max_new_tokens, params, _eos_ids(model), session.should_stop))
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
            while not isinstance(items[-1], (Finished, BaseException)):
                wait = deadline - time.perf_counter()
                try:
                    items.append(request.out.get(timeout=wait) if wait > 0 else request.out.get_nowait())
                except queue.Empty:
                    break
            new_ids: list[int] = []
            for item in items:
                if isinstance(item, Finished):
                    finished = True
                    reason_box.append(item.reason)
                elif isinstance(item, BaseException):
                    if isinstance(item, ValueError):
                        raise item
                    raise RuntimeError(f"Generation failed: {item.__class__.__name__}: {item}") from item
                elif session.stop_reason is None and not stop.is_set():
                    new_ids += item  # after Stop the text stays as the visitor last saw it
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


def stream_text(model_ref: str, prompt: str, settings: GenerationSettings | None = None,
                stop: threading.Event | None = None, device: str | None = None) -> Iterator[GenerationUpdate]:
    """What the Text and Code tabs call: load (once, shared) and stream."""
    model, tokenizer = load_causal_lm(model_ref, device)
    yield from stream_with(model, tokenizer, prompt, settings, stop)


def generate_text(model_ref: str, prompt: str, settings: GenerationSettings | None = None,
                  device: str | None = None) -> GenerationUpdate:
    model, tokenizer = load_causal_lm(model_ref, device)
    return generate_with(model, tokenizer, prompt, settings)


# ---- look inside ------------------------------------------------------------------------------

@dataclass
class InsideView:
    """Next-token probabilities at one position and one head's attention, as plain values."""

    tokens: list[str]  # the text's tokens as strings (after any cut to the context)
    position: int
    top: list[tuple[str, float]]  # top-10 next tokens after `position`, most likely first
    attention: Any  # numpy (T, T): row i = how token i spreads its attention over tokens 0..i
    layer: int
    head: int
    n_layers: int
    n_heads: int
    notice: str = ""


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def look_inside_with(model: Any, tokenizer: Any, text: str, position: int = -1, layer: int = 0,
                     head: int = 0) -> InsideView:
    """Run one forward pass with attentions; `model` must use eager attention."""
    import torch

    from aigc_demo.models.gpt import context_window
    from aigc_demo.models.tokenizers import encode

    from aigc_demo.services import validate

    text = validate.text(text, "The text")
    position = validate.integer(position, "Position", default=-1)
    layer = validate.integer(layer, "Layer", default=0)
    head = validate.integer(head, "Head", default=0)
    if not text:
        raise ValueError("There is no text to look inside yet: generate or type some first.")
    ctx = context_window(model.config)
    if len(text) > ctx * PROMPT_CHARS_PER_TOKEN_BOUND:  # only the last ctx tokens are shown anyway
        text = text[-ctx * PROMPT_CHARS_PER_TOKEN_BOUND:]
    ids = encode(tokenizer, text)
    notice = ""
    if len(ids) > ctx:
        notice = f"The text has {len(ids)} tokens; only the last {ctx} (the context window) are shown."
        ids = ids[-ctx:]
    n = len(ids)
    if not -n <= position < n:
        raise ValueError(f"Position must be between 0 and {n - 1} (the text has {n} tokens); got {position}.")
    position %= n
    n_layers = model.config.num_hidden_layers
    n_heads = model.config.num_attention_heads
    if not 0 <= layer < n_layers:
        raise ValueError(f"Layer must be between 0 and {n_layers - 1}; got {layer}.")
    if not 0 <= head < n_heads:
        raise ValueError(f"Head must be between 0 and {n_heads - 1}; got {head}.")
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], device=device), output_attentions=True)
    if not out.attentions or out.attentions[layer] is None:
        raise ValueError("This model did not return attention weights (it needs eager attention).")
    probs = out.logits[0, position].float().softmax(-1)  # (V,)
    top = torch.topk(probs, min(TOP_K_INSIDE, probs.numel()))
    top_list = [(tokenizer.decode([int(i)], clean_up_tokenization_spaces=False), float(p))
                for p, i in zip(top.values.tolist(), top.indices.tolist())]
    attention = out.attentions[layer][0, head].float().cpu().numpy()  # (T, T)
    tokens = [tokenizer.decode([i], clean_up_tokenization_spaces=False) for i in ids]
    return InsideView(tokens, position, top_list, attention, layer, head, n_layers, n_heads, notice)


def look_inside(model_folder: str, text: str, position: int = -1, layer: int = 0, head: int = 0,
                device: str | None = None) -> InsideView:
    """Top-10 next tokens at `position` and layer/head attention, for any GPT-2-style model."""
    if is_remote_ref(model_folder):
        from aigc_demo.services.remote_text import look_inside_remote

        return look_inside_remote(model_folder, text, position)
    model, tokenizer = load_causal_lm(model_folder, device, eager=True)
    return look_inside_with(model, tokenizer, text, position, layer, head)


def is_chat_model(ref: str) -> bool:
    """Whether `ref` ships a chat template, read from its files without loading it (a hub model
    that is not downloaded yet is judged by its name)."""
    import json

    from aigc_demo import hub

    if is_remote_ref(ref):
        from aigc_demo.services.remote_text import is_remote_chat

        return is_remote_chat(ref)
    folder: Path | None = Path(ref) if hub.is_local_ref(ref) else hub.cached_snapshot(ref)
    if folder is None or not folder.is_dir():
        return any(word in ref.lower() for word in ("instruct", "chat"))
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, ValueError):
        return False
