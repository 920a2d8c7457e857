"""Step-level batching: concurrent requests on one model share every forward pass.

Why: a model answering one visitor at a time leaves most of each matrix multiply idle, and
several `generate` calls in threads fight for the same cores (8 streams were 0.59x one). Here
one decoding thread per loaded model owns a batch of rows:

- requests that arrived since the last step are prefilled together (their prompts left-padded
  in one forward pass), their first tokens drawn, and their KV cache merged into the batch
  between two decoding steps; rows are left-padded to the longest one and the padding is
  masked, with each row's own position ids;
- each step feeds every row's last token in one forward pass, then draws each row's next token
  from its own logits with its own settings and `torch.Generator` (`sampling.Sampler`), so a
  seed gives the same text alone or batched; one host sync per step for the whole batch;
- a row leaves when it reaches its token budget, draws an end-of-text token, or its request
  says stop (the visitor's Stop, a stop sequence seen by the consumer, or a consumer gone);
  padding columns no row needs any more are cut off;
- a row about to pass the context window is cut to its last 3/4 and prefilled again, so a
  256-token model can write 1000 tokens (nanoGPT's crop, with a KV cache in between);
- caches that cannot be merged (sliding-window or other non-dynamic layers) run one row at a
  time through the same code, so every causal LM works;
- a mergeable cache's layers get spare columns (`kv_cache.GrowingLayer`), so a step writes its
  keys and values in place instead of copying the whole cache.

transformers 5's continuous-batching manager was considered: it draws with one seed for all
requests, so a visitor's seed would not give the same text alone and batched.

The thread ends after `IDLE_S` seconds without work and holds the model only while it runs.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicLayer

from aigc_demo.generation.kv_cache import make_growing
from aigc_demo.generation.sampling import Sampler
from aigc_demo.generation.settings import GenerationSettings
from aigc_demo.models.gpt import context_window

MAX_ROWS = 16  # rows decoded together; more requests wait for a free row
IDLE_S = 2.0


@dataclass
class Finished:
    """The last item a request's queue receives (besides an exception): why it ended."""

    reason: str  # max_new_tokens | eos | stopped


@dataclass
class DecodeRequest:
    """One request, in plain values. `out` receives lists of new token ids, then a `Finished`,
    or an exception. `should_stop` is read between steps. `settings` are checked (a seed drawn)."""

    prompt_ids: list[int]
    max_new_tokens: int
    settings: GenerationSettings
    eos_ids: frozenset[int] = frozenset()
    should_stop: Callable[[], bool] = lambda: False
    out: queue.Queue = field(default_factory=queue.Queue)


@dataclass
class _Row:
    request: DecodeRequest
    window: list[int]  # token ids the cache holds, plus the last drawn token (not yet fed)
    sampler: Sampler
    made: int = 0
    done: str | None = None


def _mergeable(cache: Any) -> bool:
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _pad_left(cache: Any, columns: int) -> None:
    for layer in cache.layers:
        layer.keys = F.pad(layer.keys, (0, 0, columns, 0))
        layer.values = F.pad(layer.values, (0, 0, columns, 0))


class Batcher:
    """The decoding thread of one model; `submit` a request and read its queue."""

    def __init__(self, model: Any, max_rows: int = MAX_ROWS, idle_s: float = IDLE_S) -> None:
        self._model_ref = weakref.ref(model)
        self.device = next(model.parameters()).device
        self.ctx = context_window(model.config)
        self.keep = self.ctx - max(self.ctx // 4, 1)  # tokens kept when a row is cut to fit
        self.max_rows, self.idle_s = max_rows, idle_s
        self._inbox: queue.Queue[DecodeRequest] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._rows: list[_Row] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None  # (rows, cached columns): 1 real, 0 padding
        self._mergeable: bool | None = None  # known after the first prefill
        self.steps = 0  # batched decoding steps run, and rows summed over them (mean batch size)
        self.row_steps = 0

    # ---- the consumer's side

    def submit(self, request: DecodeRequest) -> DecodeRequest:
        self._inbox.put(request)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="decode-batcher", daemon=True)
                self._thread.start()
        return request

    def load(self) -> int:
        """Requests decoding or waiting now (read without a lock: a hint, not a count to rely on)."""
        return len(self._rows) + self._inbox.qsize()

    def mean_batch(self) -> float:
        return self.row_steps / self.steps if self.steps else 0.0

    # ---- the decoding thread

    def _run(self) -> None:
        model = self._model_ref()
        try:
            with torch.inference_mode():
                while True:
                    if model is None:
                        raise RuntimeError("The model was unloaded; try again.")
                    waiting: list[DecodeRequest] = []
                    if not self._rows:
                        try:
                            waiting.append(self._inbox.get(timeout=self.idle_s))
                        except queue.Empty:
                            with self._lock:
                                if self._inbox.empty():
                                    self._thread = None
                                    return
                            continue
                    self._admit(model, waiting + self._waiting(len(waiting)))
                    # Requests that came in during that prefill join now, before the next step:
                    # visitors arriving together wait one prefill less (bounded by the free rows).
                    while not self._inbox.empty() and len(self._rows) < self._room():
                        self._admit(model, self._waiting(0))
                    self._drop_done()
                    self._refit(model)
                    if self._rows:
                        self._step(model)
        except BaseException as err:  # noqa: BLE001 - every waiting request hears of it
            self._fail_all(err)
            with self._lock:
                self._thread = None
                if not self._inbox.empty():  # a request that came in meanwhile gets a fresh thread
                    self._thread = threading.Thread(target=self._run, name="decode-batcher", daemon=True)
                    self._thread.start()

    def _waiting(self, taken: int) -> list[DecodeRequest]:
        """The requests in the inbox that fit in the free rows (`taken` already reserved)."""
        waiting: list[DecodeRequest] = []
        while len(self._rows) + taken + len(waiting) < self._room():
            try:
                waiting.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return waiting

    def _fail_all(self, err: BaseException) -> None:
        for row in self._rows:
            row.request.out.put(err)
        self._rows, self._cache, self._mask = [], None, None
        while True:
            try:
                self._inbox.get_nowait().out.put(err)
            except queue.Empty:
                return

    def _room(self) -> int:
        """Rows the batch may hold: one until the model's cache is known to merge."""
        return self.max_rows if self._mergeable else 1

    def _admit(self, model: Any, requests: list[DecodeRequest]) -> None:
        rows = []
        for request in requests:
            if request.should_stop():
                request.out.put(Finished("stopped"))
            else:
                rows.append(_Row(request, list(request.prompt_ids), Sampler(request.settings, self.device)))
        self._prefill_safely(model, rows)

    def _prefill_safely(self, model: Any, rows: list[_Row]) -> None:
        """Prefill together; if that fails, one by one, so only a request that fails alone hears of it."""
        if not rows:
            return
        try:
            self._prefill(model, rows)
        except Exception as err:  # noqa: BLE001 - bad ids, out of memory
            if len(rows) == 1:
                rows[0].request.out.put(err)
                return
            for row in rows:
                self._prefill_safely(model, [row])

    def _prefill(self, model: Any, rows: list[_Row]) -> None:
        """Run the new rows' windows in one forward pass (left-padded), draw each row's next
        token and merge their cache into the batch."""
        length = max(len(row.window) for row in rows)
        ids = torch.tensor([[0] * (length - len(row.window)) + row.window for row in rows], device=self.device)
        mask = torch.tensor([[0] * (length - len(row.window)) + [1] * len(row.window) for row in rows],
                            device=self.device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache = out.cache
        if self._mergeable is None:
            self._mergeable = _mergeable(cache)
        logits = out.logits[:, -1]
        tokens = torch.stack([self._draw(row, logits[i]) for i, row in enumerate(rows)]).tolist()
        keep = []
        for i, (row, token) in enumerate(zip(rows, tokens)):
            self._take(row, int(token))
            if row.done:
                row.request.out.put(Finished(row.done))
            else:
                keep.append(i)
        if not keep:
            return
        if len(keep) < len(rows):
            cache.batch_select_indices(torch.tensor(keep, device=self.device))
            mask, rows = mask[keep], [rows[i] for i in keep]
        if self._cache is None:
            if self._mergeable:
                make_growing(cache)  # decoding steps then write in place (generation/kv_cache.py)
            self._cache, self._mask, self._rows = cache, mask, rows
            self._trim()
            return
        width, length = self._mask.shape[1], mask.shape[1]
        if length < width:
            _pad_left(cache, width - length)
            mask = F.pad(mask, (width - length, 0))
        elif length > width:
            _pad_left(self._cache, length - width)
            self._mask = F.pad(self._mask, (length - width, 0))
        for mine, theirs in zip(self._cache.layers, cache.layers):
            mine.keys = torch.cat([mine.keys, theirs.keys])
            mine.values = torch.cat([mine.values, theirs.values])
        self._mask = torch.cat([self._mask, mask])
        self._rows += rows
        self._trim()

    def _draw(self, row: _Row, logits: torch.Tensor) -> torch.Tensor:
        return row.sampler.draw(logits, row.window)

    def _take(self, row: _Row, token: int) -> None:
        """Record a drawn token: hand it to the consumer or end the row."""
        request = row.request
        if token in request.eos_ids:
            row.done = "eos"
            return
        row.window.append(token)
        row.made += 1
        request.out.put([token])
        if row.made >= request.max_new_tokens:
            row.done = "max_new_tokens"

    def _keep_rows(self, keep: list[int]) -> None:
        """Keep only these rows, then cut padding columns no remaining row needs."""
        if not keep:
            self._rows, self._cache, self._mask = [], None, None
            return
        if len(keep) == len(self._rows):
            return
        index = torch.tensor(keep, device=self.device)
        self._rows = [self._rows[i] for i in keep]
        self._cache.batch_select_indices(index)
        self._mask = self._mask[index]
        self._trim()

    def _trim(self) -> None:
        """Cut the padding columns on the left that no row needs."""
        first = int(self._mask.any(0).int().argmax())
        if first:
            self._mask = self._mask[:, first:]
            for layer in self._cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]

    def _drop_done(self) -> None:
        keep = []
        for i, row in enumerate(self._rows):
            if row.done is None and row.request.should_stop():
                row.done = "stopped"
            if row.done is None:
                keep.append(i)
            else:
                row.request.out.put(Finished(row.done))
        self._keep_rows(keep)

    def _refit(self, model: Any) -> None:
        """Rows whose next token would fall outside the context are cut and prefilled again."""
        full = [i for i, row in enumerate(self._rows) if len(row.window) > self.ctx]
        if not full:
            return
        rows = [self._rows[i] for i in full]
        self._keep_rows([i for i in range(len(self._rows)) if i not in full])
        for row in rows:
            row.window = row.window[-self.keep:]
        self._prefill_safely(model, rows)

    def _step(self, model: Any) -> None:
        rows = self._rows
        ids = torch.tensor([[row.window[-1]] for row in rows], device=self.device)
        positions = torch.tensor([[len(row.window) - 1] for row in rows], device=self.device)
        mask = torch.cat([self._mask, torch.ones_like(ids)], dim=1)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                    cache=self._cache, use_cache=True)
        self._cache, self._mask = out.cache, mask
        logits = out.logits[:, -1]
        tokens = torch.stack([self._draw(row, logits[i]) for i, row in enumerate(rows)]).tolist()
        self.steps += 1
        self.row_steps += len(rows)
        for row, token in zip(rows, tokens):
            self._take(row, int(token))


_batchers: "weakref.WeakKeyDictionary[Any, Batcher]" = weakref.WeakKeyDictionary()
_batchers_lock = threading.Lock()


def batcher_for(model: Any) -> Batcher:
    """The one batcher of this loaded model (made on first use, gone with the model)."""
    with _batchers_lock:
        batcher = _batchers.get(model)
        if batcher is None:
            batcher = _batchers[model] = Batcher(model)
        return batcher


def wait_idle(model: Any, timeout: float = 10.0) -> bool:
    """Whether the model's decoding thread has ended within `timeout` (tests, benchmarks)."""
    batcher = _batchers.get(model)
    deadline = time.monotonic() + timeout
    while batcher is not None and batcher._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    return batcher is None or batcher._thread is None
