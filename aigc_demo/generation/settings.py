"""What a visitor (or a training preview) asks of decoding: one settings dataclass, checked.

Why one: the sampler, the batcher, the stop rules and remote engines all read the same fields
(temperature, top-k, top-p, repetition penalty, seed, stop sequences), so they are declared once.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace

from aigc_demo.errors import UserError

MAX_NEW_TOKENS_LIMIT = 1024
MAX_TEMPERATURE = 10.0
UPDATE_INTERVAL_S = 0.05  # streaming updates (local or remote) are sent at most this often by default


@dataclass(frozen=True)
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
        """Refuse impossible values (UserError) and clamp absurd ones (with a notice); a random
        seed is drawn here when none was given, so the settings returned always have one."""
        notices: list[str] = []
        for name in ("temperature", "top_p", "repetition_penalty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserError(f"{name.replace('_', ' ').capitalize()} must be a number (got {value!r}).")
        if self.temperature < 0:
            raise UserError(f"Temperature cannot be negative (got {self.temperature}). Use 0 for greedy "
                            "decoding (always the most likely token) or a positive value to sample.")
        if self.top_k < 0:
            raise UserError(f"Top-k cannot be negative (got {self.top_k}); 0 turns it off.")
        if not 0 < self.top_p <= 1:
            raise UserError(f"Top-p must be in (0, 1] (got {self.top_p}); 1 turns it off.")
        if self.repetition_penalty <= 0:
            raise UserError(f"Repetition penalty must be positive (got {self.repetition_penalty}); "
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
