"""A look inside a loaded model: the next-token probabilities at one position and one head's
attention, from one forward pass. Attention maps need eager attention, so the model used is an
eager twin that shares every weight with the fast (SDPA) model other visitors stream from.
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import torch

from aigc_demo.device import gpu_task
from aigc_demo.errors import UserError
from aigc_demo.generation.prompt import last_tokens
from aigc_demo.generation.results import InsideView
from aigc_demo.models.gpt import context_window

TOP_K_INSIDE = 10

_twins: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_twins_lock = threading.Lock()


def eager_twin(model: Any) -> Any:
    """The same model with eager attention (attention maps need it), sharing every weight
    tensor with `model`: no second copy in memory, and the SDPA model other visitors stream from
    is never switched under them. Dropped with `model` when the registry unloads it."""
    with _twins_lock:
        twin = _twins.get(model)
        if twin is None:
            shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
            twin = copy.deepcopy(model, memo=shared)
            twin.set_attn_implementation("eager")
            _twins[model] = twin
        return twin


@dataclass
class Glimpse:
    """What one forward pass gives a look inside, in plain values (it crosses from a model
    server's process to the web process)."""

    top_ids: list[int]  # the top-10 next-token ids after `position`, most likely first
    top_probs: list[float]
    attention: Any  # numpy (T, T): one layer's, one head's attention


def inside_checks(tokenizer: Any, config: Any, text: str, position: int, layer: int,
                  head: int) -> tuple[list[int], int, str]:
    """(ids, position in 0..T-1, notice) for a look inside, every value checked before any model
    runs: the web process checks them against the config of a model it does not hold."""
    if not text:
        raise UserError("There is no text to look inside yet: generate or type some first.")
    ids, notice = last_tokens(tokenizer, text, context_window(config))
    n = len(ids)
    if not -n <= position < n:
        raise UserError(f"Position must be between 0 and {n - 1} (the text has {n} tokens); got {position}.")
    n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
    if not 0 <= layer < n_layers:
        raise UserError(f"Layer must be between 0 and {n_layers - 1}; got {layer}.")
    if not 0 <= head < n_heads:
        raise UserError(f"Head must be between 0 and {n_heads - 1}; got {head}.")
    return ids, position % n, notice


def glimpse(model: Any, ids: list[int], position: int, layer: int, head: int) -> Glimpse:
    """One forward pass with attentions (checked values, `inside_checks`); `model` must use eager
    attention (`eager_twin`)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], device=device), output_attentions=True)
    if not out.attentions or out.attentions[layer] is None:
        raise UserError("This model did not return attention weights (it needs eager attention).")
    probs = out.logits[0, position].float().softmax(-1)  # (V,)
    top = torch.topk(probs, min(TOP_K_INSIDE, probs.numel()))
    attention = out.attentions[layer][0, head].float().cpu().numpy()  # (T, T)
    return Glimpse(top.indices.tolist(), top.values.tolist(), attention)


def inside_view(tokenizer: Any, config: Any, ids: list[int], position: int, layer: int, head: int,
                seen: Glimpse, notice: str) -> InsideView:
    """The view a visitor sees: token ids made text."""
    def text(i: int) -> str:
        return tokenizer.decode([int(i)], clean_up_tokenization_spaces=False)

    top = [(text(i), float(p)) for i, p in zip(seen.top_ids, seen.top_probs)]
    return InsideView([text(i) for i in ids], position, top, seen.attention, layer, head,
                      config.num_hidden_layers, config.num_attention_heads, notice)


@gpu_task(duration=30)  # ZeroGPU: the GPU is held for one call
def look_inside_with(model: Any, tokenizer: Any, text: str, position: int = -1, layer: int = 0,
                     head: int = 0) -> InsideView:
    """Run one forward pass with attentions; `model` must use eager attention (`eager_twin`)."""
    ids, position, notice = inside_checks(tokenizer, model.config, text, position, layer, head)
    return inside_view(tokenizer, model.config, ids, position, layer, head,
                       glimpse(model, ids, position, layer, head), notice)
