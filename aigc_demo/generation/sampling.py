"""One request's next-token choice from one row of logits, with the request's own generator.

The filtering is transformers' own logits processors (repetition penalty, then temperature,
top-k, top-p: the order `generate` applies them); the draw is `torch.multinomial` with the
request's `torch.Generator`. Why per row: each visitor has their own settings and seed, and running
the same code on one row whether the request is alone or in a batch is what makes a seed give the
same text alone and batched (the global torch RNG is never used).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                          TopKLogitsWarper, TopPLogitsWarper)

from aigc_demo.generation.settings import GenerationSettings


def make_generator(seed: int, device: Any) -> torch.Generator:
    """The request's own random stream, on the model's device."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def processors(settings: GenerationSettings) -> LogitsProcessorList:
    """transformers' processors for these settings; settings that are off add none. Greedy
    (temperature 0) keeps only the repetition penalty: the most likely token is taken."""
    chain: list[Any] = []
    if settings.repetition_penalty != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(float(settings.repetition_penalty)))
    if settings.temperature != 0:
        if settings.temperature != 1.0:  # 1 changes nothing (generate leaves it out too)
            chain.append(TemperatureLogitsWarper(float(settings.temperature)))
        if settings.top_k:
            chain.append(TopKLogitsWarper(int(settings.top_k)))
        if settings.top_p < 1.0:
            chain.append(TopPLogitsWarper(float(settings.top_p)))
    return LogitsProcessorList(chain)


class Sampler:
    """A request's sampling state: its processors and its generator (made once per request)."""

    def __init__(self, settings: GenerationSettings, device: Any) -> None:
        if settings.seed is None:
            raise ValueError("The settings must be checked (a seed drawn) before sampling.")
        self.greedy = settings.temperature == 0
        self.uses_window = settings.repetition_penalty != 1.0
        self.processors = processors(settings)
        self.generator = make_generator(settings.seed, device)
        self._no_ids = torch.empty((1, 0), dtype=torch.long, device=device)

    def filtered(self, scores: torch.Tensor, window: list[int]) -> torch.Tensor:
        """The (V,) float logits after the processors; `window` = the token ids seen so far
        (read by the repetition penalty only)."""
        row = scores.float()[None]
        ids = torch.tensor([window], device=row.device) if self.uses_window else self._no_ids
        for processor in self.processors:  # the list's own __call__ inspects signatures on every call
            row = processor(ids, row)
        return row[0]

    def draw(self, scores: torch.Tensor, window: list[int]) -> torch.Tensor:
        """The next token (a 0-d tensor, left on the device so a batch needs one host sync)."""
        logits = self.filtered(scores, window)
        if self.greedy:
            return logits.argmax()
        return torch.multinomial(logits.softmax(-1), 1, generator=self.generator)[0]
