"""What decoding hands back, as plain values: streaming updates and a look inside a model.

Light on purpose (no torch): remote engines and the UI build and read these without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
