"""One request's next-token choice from one row of logits, with the request's own generator.

Why per row: each visitor has their own temperature, top-k, top-p, repetition penalty and seed.
Running the same small function on one row whether the request is alone or in a batch is what
makes a seed give the same text alone and batched (the global torch RNG is never used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class SamplingParams:
    """Plain sampling settings of one request. temperature 0 = greedy; top_k 0 / top_p 1 = off."""

    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0


def make_generator(seed: int, device: Any) -> torch.Generator:
    """The request's own random stream, on the model's device."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def penalize(scores: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """transformers' repetition penalty on one row: tokens already in the window are made less
    likely (negative logits multiplied, positive ones divided by `penalty`)."""
    if penalty == 1.0 or seen.numel() == 0:
        return scores
    picked = scores.gather(0, seen)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return scores.scatter(0, seen, picked)


def choose(scores: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> torch.Tensor:
    """The next token (a 0-d tensor, left on the device so a batch needs one host sync) from the
    (V,) logits of one row: temperature, top-k, top-p, then a draw from `generator`."""
    if params.temperature == 0:
        return scores.argmax()
    logits = scores.float() / params.temperature
    if params.top_k and params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > params.top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[0]
