"""The Compare tab's text: one prompt streamed by several text models at once, one column each.

Each column runs the Text tab's own path (`textgen.stream_text`, or `stream_chat` with the prompt
as the user's message for a model with a chat template) in its own thread, so the columns stream
concurrently: local models through their decoding threads (`generation.batcher`; two columns on
one model share its forward passes), remote ones through their engines. One Stop flag ends every
column. A column whose model cannot run says why; the others go on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator

from aigc_demo.engines.registry import is_remote_ref
from aigc_demo.errors import UserError
from aigc_demo.services import availability, textgen, validate

MIN_COLUMNS, MAX_COLUMNS = 2, 3
POLL_S = 0.05
JOIN_S = 5.0  # how long the end of a comparison waits for its column threads
log = logging.getLogger(__name__)
_DONE = object()


@dataclass
class ColumnState:
    """One column as the page shows it: the latest update, or why it has none."""

    model_id: str
    update: textgen.GenerationUpdate | None = None
    error: str | None = None
    done: bool = False


def check_columns(model_ids: Any) -> list[str]:
    """2 to 3 picked model ids (as given; the caller resolves them); empty slots dropped."""
    if not isinstance(model_ids, (list, tuple)):
        raise UserError(f"Pick {MIN_COLUMNS} or {MAX_COLUMNS} models to compare")
    picked = [m for m in model_ids if m is not None and not (isinstance(m, str) and not m.strip())]
    if not MIN_COLUMNS <= len(picked) <= MAX_COLUMNS:
        raise UserError(f"Pick {MIN_COLUMNS} or {MAX_COLUMNS} models to compare")
    return picked


def _ready(ref: str) -> None:
    """A hub model must be downloaded already: a comparison never starts a download."""
    state = availability.check(ref)
    if state is not None and state.hub and not state.downloaded:
        raise UserError(f"{ref} is not downloaded yet: download it in the Text tab first")


def _load(ref: str) -> None:
    """Load a local model before its column's thread starts: the columns' models load one after
    another (two transformers loads at once in two threads can collide on the meta device), and
    the tokens/s a column shows is decoding only."""
    _ready(ref)
    if not is_remote_ref(ref):
        textgen.serve_causal_lm(ref)


def _updates(ref: str, prompt: str, settings: textgen.GenerationSettings, stop: threading.Event,
             update_interval_s: float) -> Iterator[textgen.GenerationUpdate]:
    if textgen.is_chat_model(ref):
        yield from textgen.stream_chat(ref, [{"role": "user", "content": prompt}], settings, stop,
                                       update_interval_s=update_interval_s)
    else:
        yield from textgen.stream_text(ref, prompt, settings, stop, update_interval_s=update_interval_s)


def _failure(ref: str, err: Exception) -> UserError:
    """What a column shows when its model fails: a visitor's message as it is, else a short one."""
    if isinstance(err, UserError):
        return err
    log.exception("compare: %s failed", ref, exc_info=err)
    return UserError(f"This model could not run here ({type(err).__name__})")


def _run_column(index: int, ref: str, prompt: str, settings: textgen.GenerationSettings,
                stop: threading.Event, out: queue.Queue, update_interval_s: float) -> None:
    try:
        for update in _updates(ref, prompt, settings, stop, update_interval_s):
            out.put((index, update))
    except Exception as err:  # noqa: BLE001 - one failing model must not end the other columns
        out.put((index, _failure(ref, err)))
    finally:
        out.put((index, _DONE))


def stream_columns(refs: list[str], prompt: str, settings: textgen.GenerationSettings | None = None,
                   stop: threading.Event | None = None, *,
                   update_interval_s: float = 0.25) -> Iterator[list[ColumnState]]:
    """Stream `prompt` from every model in `refs` (resolved ids) at once; yields every column's
    state at most every `update_interval_s`, and once more when all are done. Each column gets
    the same settings (the same seed)."""
    if not MIN_COLUMNS <= len(refs) <= MAX_COLUMNS:
        raise UserError(f"Pick {MIN_COLUMNS} or {MAX_COLUMNS} models to compare")
    prompt = validate.text(prompt, "The prompt")
    settings, _ = (settings or textgen.GenerationSettings()).checked()  # one seed for every column
    stop = stop or threading.Event()
    out: queue.Queue = queue.Queue()
    columns = [ColumnState(ref) for ref in refs]
    for column in columns:
        try:
            _load(column.model_id)
        except Exception as err:  # noqa: BLE001 - the column says why; the others still run
            column.error, column.done = str(_failure(column.model_id, err)), True
    threads = [threading.Thread(target=_run_column, args=(i, c.model_id, prompt, settings, stop, out, update_interval_s),
                                name=f"compare-{i}", daemon=True) for i, c in enumerate(columns) if not c.done]
    for thread in threads:
        thread.start()
    try:
        last = 0.0
        while not all(c.done for c in columns):
            try:
                index, item = out.get(timeout=POLL_S)
            except queue.Empty:
                continue
            column = columns[index]
            if item is _DONE:
                column.done = True
            elif isinstance(item, UserError):
                column.error = str(item)
            else:
                column.update = item
            now = time.monotonic()
            if now - last >= update_interval_s and not all(c.done for c in columns):
                last = now
                yield [replace(c) for c in columns]
        yield [replace(c) for c in columns]
    finally:
        stop.set()  # the page went away or all ended: no column keeps decoding
        for thread in threads:
            thread.join(timeout=JOIN_S)
