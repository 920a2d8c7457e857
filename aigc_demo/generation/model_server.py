"""A loaded text model decoding in a process of its own; the web process only relays tokens.

Why: a model decoding in the web process shares one interpreter lock with Gradio's event loop,
so every update a visitor receives is time the model does not compute (8 streams made 2.5-3.2x
the tokens/s of one, and waited ~4x longer for their first token). Here the child process runs
the same step-level batcher (`generation.batcher`) for every visitor's request on its model,
and talks to the web process over one `multiprocessing` connection (a local socket pair):

- parent -> child: `("submit", id, prompt ids, max new tokens, settings, eos ids)`,
  `("stop", id)` (Stop, a stop sequence, a consumer gone), `("inside", id, ids, position, layer,
  head)` (a look inside: one forward pass with attentions, answered by one `Reply`), `("close",)`
  (unloaded: finish what runs, then exit);
- child -> parent: first `("ready", info)` or `("failed", error)`, then lists of `(id, item)`,
  an item being what a `DecodeRequest.out` queue receives (token ids, `Finished`, an error):
  everything the batcher made since the last send goes in one message, so 8 rows cost one
  message per step, not eight.

A look inside runs here too (on an eager twin that shares the weights), so the web process
never holds a second copy of a model it serves.

`ServedModel` (the web side) has the batcher's interface (`submit`, `load`), so
`generation.stream` reads a served request's queue exactly as a local one. A child that dies
fails its requests with a clear message and is started again on the next request; a child whose
parent is gone (its end of the connection closed, however the app ended) exits at once.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from aigc_demo.errors import UserError
from aigc_demo.generation.batcher import Batcher, DecodeRequest, Finished
from aigc_demo.generation.inside import Glimpse, eager_twin, glimpse

INSIDE_TIMEOUT_S = 120.0  # one forward pass of a look inside, on a loaded CPU
POLL_S = 0.02  # the relay checks its streams' Stop flags this often while no tokens come
IDLE_POLL_S = 1.0  # ... and this often while it has none (an idle app stays idle)
READY_POLL_S = 0.2


class ServerFailure(RuntimeError):
    """An error the model server reported for a request (its text is the whole message)."""


def _portable(err: BaseException) -> BaseException:
    """An exception that survives pickling: a visitor's message stays a `UserError`."""
    if isinstance(err, UserError):
        return UserError(str(err))
    if isinstance(err, ValueError):
        return ValueError(str(err))
    return ServerFailure(f"Generation failed: {type(err).__name__}: {err}")


@dataclass
class Reply:
    """The one answer to a request that is not a stream (a look inside)."""

    value: Any


# ---- the child's side ----------------------------------------------------------------------------

@dataclass
class _Outbox:
    """A request's `out` in the child: what the batcher puts goes to the sender thread, tagged."""

    rid: int
    sink: queue.Queue

    def put(self, item: Any) -> None:
        self.sink.put((self.rid, _portable(item) if isinstance(item, BaseException) else item))


@dataclass
class _ChildState:
    open: set[int] = field(default_factory=set)
    stopped: set[int] = field(default_factory=set)
    closing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finished(self, rid: int) -> bool:
        """Forget a request that ended; whether the server may now exit (closing, nothing open)."""
        with self.lock:
            self.open.discard(rid)
            self.stopped.discard(rid)
            return self.closing and not self.open


def _send_loop(conn: Any, sink: queue.Queue, state: _ChildState) -> None:
    while True:
        batch = [sink.get()]
        while True:
            try:
                batch.append(sink.get_nowait())
            except queue.Empty:
                break
        try:
            conn.send(batch)
        except (OSError, ValueError):  # the app is gone
            os._exit(0)
        done = [rid for rid, item in batch if isinstance(item, (Finished, Reply, BaseException))]
        if any([state.finished(rid) for rid in done]):
            os._exit(0)


def _own_rss() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def model_info(model: Any) -> dict[str, Any]:
    """What the web process needs to know of the model it no longer holds. `nbytes` (what the
    memory budget counts) is the larger of its weights and this whole process's RAM once loaded
    (the interpreter and libraries a process of its own costs: ~0.3-0.5 GB with torch)."""
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return {"config": model.config, "generation_config": model.generation_config,
            "nbytes": max(weights, _own_rss())}


def serve(conn: Any, model: Any) -> None:
    """The child's main loop: decode every submitted request with one batcher until the parent
    is gone, or until it asked to close and nothing is left to finish."""
    batcher = Batcher(model)
    sink: queue.Queue = queue.Queue()
    looks: queue.Queue = queue.Queue()
    state = _ChildState()
    conn.send(("ready", model_info(model)))
    threading.Thread(target=_send_loop, args=(conn, sink, state), name="model-server-send", daemon=True).start()
    threading.Thread(target=_inside_loop, args=(model, looks, sink), name="model-server-inside", daemon=True).start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the app ended (however): so does its model server
            os._exit(0)
        kind = message[0]
        if kind == "submit":
            _, rid, prompt_ids, max_new_tokens, settings, eos = message
            with state.lock:
                state.open.add(rid)
            batcher.submit(DecodeRequest(prompt_ids, max_new_tokens, settings, eos,
                                         should_stop=lambda rid=rid: rid in state.stopped,
                                         out=_Outbox(rid, sink)))  # type: ignore[arg-type]
        elif kind == "inside":
            with state.lock:
                state.open.add(message[1])
            looks.put(message[1:])
        elif kind == "stop":
            with state.lock:
                if message[1] in state.open:
                    state.stopped.add(message[1])
        elif kind == "close":
            with state.lock:
                state.closing = True
                if not state.open:
                    os._exit(0)


def _inside_loop(model: Any, looks: queue.Queue, sink: queue.Queue) -> None:
    """Answer looks inside one at a time, beside the decoding batcher (the twin shares weights)."""
    twin = None
    while True:
        rid, ids, position, layer, head = looks.get()
        try:
            twin = twin or eager_twin(model)
            sink.put((rid, Reply(glimpse(twin, ids, position, layer, head))))
        except Exception as err:  # noqa: BLE001 - reported to the visitor who asked
            sink.put((rid, _portable(err)))


# ---- the web process's side ----------------------------------------------------------------------

@dataclass
class _ReplySlot:
    """Where the relay puts the one answer to a request that is not a stream (a look inside)."""

    out: queue.Queue = field(default_factory=queue.Queue)

    def should_stop(self) -> bool:
        return False


Starter = Callable[[], tuple[Any, Any]]  # starts a child: (its process, the parent's connection)


class _Link:
    """One running child: its process, connection and the requests it serves."""

    def __init__(self, process: Any, conn: Any) -> None:
        self.process, self.conn = process, conn
        self.pending: dict[int, DecodeRequest | _ReplySlot] = {}
        self.stop_sent: set[int] = set()
        self.send_lock = threading.Lock()
        self.alive = True

    def send(self, message: tuple) -> None:
        with self.send_lock:
            self.conn.send(message)


def _handshake(process: Any, conn: Any, label: str) -> dict[str, Any]:
    """Wait for the child's `ready` (loading may take minutes: wait while it lives)."""
    while not conn.poll(READY_POLL_S):
        if not process.is_alive():
            raise UserError(f"{label}: the model's process ended while loading (exit code {process.exitcode}).")
    try:
        kind, payload = conn.recv()
    except (EOFError, OSError):
        process.join(5)
        raise UserError(f"{label}: the model's process ended while loading (exit code {process.exitcode}).") from None
    if kind == "failed":
        process.join(5)
        raise payload
    return payload


class ServedModel:
    """A text model served by a child process, with the batcher's interface (`submit`, `load`).

    `config` and `generation_config` are the child's model's (the context window and end-of-text
    ids are read from them); `nbytes` is what its weights hold, for the memory budget."""

    def __init__(self, start: Starter, label: str) -> None:
        self._start, self.label = start, label
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._link: _Link | None = None
        self._closed = False
        self.restarts = 0
        with self._lock:
            self._ensure()

    # ---- the batcher's interface

    def submit(self, request: DecodeRequest) -> DecodeRequest:
        self._send(request, "submit", list(request.prompt_ids), request.max_new_tokens, request.settings,
                   request.eos_ids)
        return request

    def inside(self, ids: list[int], position: int, layer: int, head: int) -> Glimpse:
        """A look inside (checked values: `generation.inside.inside_checks`), computed by the child."""
        slot = _ReplySlot()
        link, rid = self._send(slot, "inside", list(ids), position, layer, head)
        try:
            item = slot.out.get(timeout=INSIDE_TIMEOUT_S)
        except queue.Empty:
            link.pending.pop(rid, None)
            raise UserError(f"{self.label} took over {INSIDE_TIMEOUT_S:g} s to look inside; try a shorter text.") from None
        if isinstance(item, BaseException):
            raise item
        return item.value

    def _send(self, request: DecodeRequest | _ReplySlot, kind: str, *payload: Any) -> tuple[_Link, int]:
        """Register `request` with the running child (started if need be) and send it `(kind, id, *payload)`."""
        with self._lock:
            if self._closed:
                raise UserError(f"{self.label} was unloaded; try again.")
            link = self._ensure()
            rid = next(self._ids)
            link.pending[rid] = request
            try:
                link.send((kind, rid, *payload))
            except (OSError, ValueError):
                pass  # the child just died: its reader fails this request with the message
        return link, rid

    def load(self) -> int:
        """Requests open on this model (a hint for the update rate)."""
        link = self._link
        return len(link.pending) if link is not None else 0

    @property
    def pid(self) -> int | None:
        link = self._link
        return link.process.pid if link is not None and link.alive else None

    def close(self) -> None:
        """Unloaded: the child finishes the streams it runs, then exits; no new request is taken."""
        with self._lock:
            self._closed = True
            link = self._link
            if link is not None and link.alive:
                try:
                    link.send(("close",))
                except (OSError, ValueError):
                    pass

    on_unload = close  # what the model registry calls when it drops this model

    # ---- the relay

    def _ensure(self) -> _Link:
        """The running child, started (again) if there is none (called under `_lock`)."""
        link = self._link
        if link is not None and link.alive:
            return link
        process, conn = self._start()
        try:
            info = _handshake(process, conn, self.label)
        except BaseException:
            conn.close()
            if process.is_alive():
                process.kill()
            raise
        self.config, self.generation_config, self.nbytes = info["config"], info["generation_config"], info["nbytes"]
        if link is not None:
            self.restarts += 1
        self._link = link = _Link(process, conn)
        threading.Thread(target=self._relay, args=(link,), name="model-server-relay", daemon=True).start()
        return link

    def _relay(self, link: _Link) -> None:
        """Pass the child's tokens to each request's queue; pass Stop flags to the child."""
        try:
            while True:
                if link.conn.poll(POLL_S if link.pending else IDLE_POLL_S):
                    for rid, item in link.conn.recv():
                        request = link.pending.get(rid)
                        if request is None:
                            continue
                        request.out.put(item)
                        if isinstance(item, (Finished, Reply, BaseException)):
                            link.pending.pop(rid, None)
                            link.stop_sent.discard(rid)
                for rid, request in list(link.pending.items()):
                    if rid not in link.stop_sent and request.should_stop():
                        link.stop_sent.add(rid)
                        link.send(("stop", rid))
        except (EOFError, OSError, ValueError):
            pass
        self._lost(link)

    def _lost(self, link: _Link) -> None:
        with self._lock:
            link.alive = False
            link.process.join(2)
            code = link.process.exitcode
            error = UserError(f"The process serving {self.label} stopped unexpectedly (exit code {code}); "
                              "it starts again with your next request: try again.")
            for request in list(link.pending.values()):
                request.out.put(error)
            link.pending.clear()
            link.conn.close()
