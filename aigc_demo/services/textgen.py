"""Text and code generation by model id, with plain values in and out: what the Text and Code
tabs call. A tab passes a model id, settings, a Stop flag and a progress callback; it gets
`GenerationUpdate`s (or an `InsideView`) back and never sees a model or a tokenizer.

Every model family takes one path: a `remote:` id goes to its engine (`services/remote_text.py`);
anything else (a weights folder, a hub id) is loaded once into the shared registry, in a model
server process of its own (`serve_causal_lm`), and decoded by `aigc_demo.generation` (step-level
batching, per-request seeded sampling, stop rules, Stop); this process relays the tokens.
The decoding modules pull torch and transformers, so they are imported on first use: importing
this module is cheap.
"""

from __future__ import annotations

import ast
import json
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

from aigc_demo import hub
from aigc_demo.catalog import hub_entry
from aigc_demo.device import on_zero_gpu, pick_device
from aigc_demo.engines.registry import is_remote_ref
from aigc_demo.generation.chat import NoChatTemplate, chat_messages, chat_prompt, has_chat_template
from aigc_demo.generation.results import GenerationUpdate, InsideView
from aigc_demo.generation.settings import MAX_NEW_TOKENS_LIMIT, UPDATE_INTERVAL_S, GenerationSettings
from aigc_demo.loading import registry
from aigc_demo.services import remote_text, text_server, validate
from aigc_demo.services.validate import identifier
from aigc_demo.settings import current

# The service's public types and limits, so a tab needs no import below services.
__all__ = ["CONCURRENT_STREAMS", "MAX_NEW_TOKENS_LIMIT", "GenerationSettings", "GenerationUpdate", "InsideView",
           "NoChatTemplate", "UPDATE_INTERVAL_S", "code_parses", "generate_text", "is_chat_model",
           "load_causal_lm", "look_inside", "serve_causal_lm", "stream_chat", "stream_code", "stream_text"]

CONCURRENT_STREAMS = 16  # streams the app runs at once: the batcher decodes this many rows together
_FENCE = re.compile(r"```(?:python)?\n?")

Progress = Callable[[Any], None]  # called with each `hub.DownloadProgress` while a model downloads


# ---- loading ----------------------------------------------------------------------------------

def load_causal_lm(ref: str, device: str | None = None, eager: bool = False,
                   on_progress: Progress | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for a weights folder or hub id, cached in the shared registry.

    Loading goes through `aigc_demo.hub` (safetensors only, no remote code, a clear message at
    once when a hub model is not downloaded and the Hub is offline). `eager=True` gives the eager
    twin (needed for attention maps), so the fast SDPA model others stream from is never switched.
    """
    ref = identifier(ref, "The model")
    choice = pick_device(device)
    key = f"causal-lm:{model_key(ref)}:{choice.name}"

    def loader() -> tuple[Any, Any]:
        source = hub.resolve(ref, kind=hub.CAUSAL_LM, on_progress=on_progress)
        entry = hub_entry(source.repo_id) if source.repo_id else None
        model, tokenizer = hub.load_causal_lm(source, dtype=choice.dtype, device=choice.name,
                                              device_map_auto=bool(entry and entry.device_map_auto))
        from aigc_demo.generation.cpu_bf16 import fit_for_cpu_decoding

        fit_for_cpu_decoding(model, current().serve.cpu_bf16)  # as the model servers do (text_server)
        return model, tokenizer

    model, tokenizer = registry.get(key, loader, choice.name)
    if eager:
        from aigc_demo.generation.inside import eager_twin

        return eager_twin(model), tokenizer
    return model, tokenizer


def serve_causal_lm(ref: str, device: str | None = None, on_progress: Progress | None = None) -> tuple[Any, Any]:
    """(served model, tokenizer) for a weights folder or hub id: what the Text, Code, Chat and
    Compare tabs stream from. The model loads and decodes in a process of its own (one per loaded
    model, all visitors batched there: `generation.model_server`), so decoding never holds the web
    process's interpreter lock; this process keeps only the tokenizer. On ZeroGPU (the GPU is
    lent to this process's calls only) the model decodes here instead (`load_causal_lm`)."""
    if on_zero_gpu():
        return load_causal_lm(ref, device, on_progress=on_progress)
    ref = identifier(ref, "The model")
    choice = pick_device(device)

    def loader() -> tuple[Any, Any]:
        source = hub.resolve(ref, kind=hub.CAUSAL_LM, on_progress=on_progress)
        tokenizer = hub.load_tokenizer(source)
        entry = hub_entry(source.repo_id) if source.repo_id else None
        served = text_server.serve_model(source, choice.dtype_name, choice.name,
                                         device_map_auto=bool(entry and entry.device_map_auto),
                                         cpu_bf16=current().serve.cpu_bf16)
        return served, tokenizer

    return registry.get(f"causal-lm-served:{model_key(ref)}:{choice.name}", loader, choice.name)


def model_key(ref: str) -> str:
    """One cache key per model: a folder by its resolved path (`./w/x`, `w/x/` and `/abs/w/x` are
    one model), a hub id as typed."""
    if hub.is_local_ref(ref):
        try:
            return str(Path(ref).expanduser().resolve())
        except (OSError, RuntimeError):
            return ref
    return ref


def is_chat_model(ref: str) -> bool:
    """Whether `ref` ships a chat template, read from its files without loading it (a hub model
    that is not downloaded yet is judged by its name)."""
    if is_remote_ref(ref):
        return remote_text.is_remote_chat(ref)
    folder: Path | None = Path(ref) if hub.is_local_ref(ref) else hub.cached_snapshot(ref)
    if folder is None or not folder.is_dir():
        return any(word in ref.lower() for word in ("instruct", "chat"))
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, ValueError):
        return False


# ---- streaming --------------------------------------------------------------------------------

def _stream_local(model: Any, tokenizer: Any, prompt: str, settings: GenerationSettings | None,
                  stop: threading.Event | None, update_interval_s: float) -> Iterator[GenerationUpdate]:
    from aigc_demo.generation.stream import stream_with

    prompt = validate.text(prompt, "The prompt")
    yield from stream_with(model, tokenizer, prompt, settings, stop, update_interval_s)


def stream_text(model_id: str, prompt: str, settings: GenerationSettings | None = None,
                stop: threading.Event | None = None, *, progress: Progress | None = None,
                device: str | None = None,
                update_interval_s: float = UPDATE_INTERVAL_S) -> Iterator[GenerationUpdate]:
    """Stream a completion of `prompt`: load the model (once, shared; `progress` hears of each
    download step) and stream updates with the whole text so far, until done or `stop` is set."""
    if is_remote_ref(model_id):
        prompt = validate.text(prompt, "The prompt")
        yield from remote_text.stream_remote(model_id, prompt, settings, stop, update_interval_s)
        return
    model, tokenizer = serve_causal_lm(model_id, device, on_progress=progress)
    yield from _stream_local(model, tokenizer, prompt, settings, stop, update_interval_s)


def stream_chat(model_id: str, history: list[dict[str, str]], settings: GenerationSettings | None = None,
                stop: threading.Event | None = None, *, system: str = "", progress: Progress | None = None,
                device: str | None = None,
                update_interval_s: float = UPDATE_INTERVAL_S) -> Iterator[GenerationUpdate]:
    """Stream the assistant's reply to `history` (role/content turns, the user's last) rendered
    with the model's own chat template; `NoChatTemplate` for a model that only completes text."""
    if is_remote_ref(model_id):
        if not remote_text.remote_model(model_id).chat:
            raise NoChatTemplate()
        messages = chat_messages(history, system)
        validate.text("".join(m["content"] for m in messages), "The prompt")  # the whole chat's size
        yield from remote_text.stream_remote(model_id, "", settings, stop, update_interval_s, messages=messages)
        return
    model, tokenizer = serve_causal_lm(model_id, device, on_progress=progress)
    prompt = chat_prompt(tokenizer, history, system)
    yield from _stream_local(model, tokenizer, prompt, settings, stop, update_interval_s)


def stream_code(model_id: str, code: str, settings: GenerationSettings | None = None,
                stop: threading.Event | None = None, *, instruction: str, progress: Progress | None = None,
                device: str | None = None,
                update_interval_s: float = UPDATE_INTERVAL_S) -> Iterator[GenerationUpdate]:
    """Stream a completion of `code`; each update's text is what to append to it. Base coders
    continue the code; instruct coders get `instruction` (the request, with the code in it) as a
    chat and their reply is appended without its Markdown fences."""
    if is_remote_ref(model_id):
        instruct = remote_text.remote_model(model_id).chat
        prompt = validate.text(instruction if instruct else code, "The prompt")
        updates = remote_text.stream_remote(model_id, "" if instruct else prompt, settings, stop, update_interval_s,
                                            messages=[{"role": "user", "content": prompt}] if instruct else None)
    else:
        model, tokenizer = serve_causal_lm(model_id, device, on_progress=progress)
        instruct = has_chat_template(tokenizer)
        prompt = chat_prompt(tokenizer, [{"role": "user", "content": instruction}]) if instruct else code
        updates = _stream_local(model, tokenizer, prompt, settings, stop, update_interval_s)
    for update in updates:
        yield replace(update, text=_FENCE.sub("", update.text)) if instruct else update


def generate_text(model_id: str, prompt: str, settings: GenerationSettings | None = None,
                  device: str | None = None) -> GenerationUpdate:
    """The final update of `stream_text` (CLI, cards, tests)."""
    last: GenerationUpdate | None = None
    for last in stream_text(model_id, prompt, settings, device=device):
        pass
    assert last is not None
    return last


def code_parses(code: str) -> tuple[bool, str]:
    """Whether `code` is valid Python, by `ast.parse` only: the code is never executed."""
    try:
        ast.parse(code)
    except SyntaxError as err:
        return False, f"Does not parse: line {err.lineno}: {err.msg}"
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        return False, f"Does not parse: {type(err).__name__}: {err}"
    return True, "Parses as Python" if code.strip() else "Parses (empty)"


# ---- look inside ------------------------------------------------------------------------------

def look_inside(model_id: str, text: str, position: int = -1, layer: int = 0, head: int = 0,
                device: str | None = None) -> InsideView:
    """Top-10 next tokens at `position` and layer/head attention, for any GPT-2-style model. The
    forward pass runs where the model decodes (its model server), so the web process never holds
    a second copy of it; on ZeroGPU, here."""
    if is_remote_ref(model_id):
        return remote_text.look_inside_remote(model_id, text, position)
    from aigc_demo.generation import inside

    text = validate.text(text, "The text")
    position = validate.integer(position, "Position", default=-1)
    layer = validate.integer(layer, "Layer", default=0)
    head = validate.integer(head, "Head", default=0)
    if on_zero_gpu():
        model, tokenizer = load_causal_lm(model_id, device, eager=True)
        return inside.look_inside_with(model, tokenizer, text, position, layer, head)
    served, tokenizer = serve_causal_lm(model_id, device)
    ids, position, notice = inside.inside_checks(tokenizer, served.config, text, position, layer, head)
    seen = served.inside(ids, position, layer, head)
    return inside.inside_view(tokenizer, served.config, ids, position, layer, head, seen, notice)
