"""A KV cache layer with room to grow, for the batcher's decoding steps.

transformers' `DynamicLayer` appends a step's keys and values with `torch.cat`, which copies the
whole cache of every layer at every step: with 8 rows of ~100 tokens that was a quarter of a
batched step's time on the CPU (torch profiler). `GrowingLayer` keeps keys and values in buffers
with spare columns and writes each step's column in place; it reallocates only when the spare is
used up, or when the batcher replaces the tensors (rows joining or leaving, padding cut), which it
does through the same `keys` / `values` attributes as with a `DynamicLayer`. Attention reads a view
of the filled columns, so the numbers are the same as with `DynamicLayer` (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

SPARE_COLUMNS = 64  # columns added per reallocation: one copy every 64 decoding steps instead of every step


def _with_room(tensor: torch.Tensor, spare: int) -> tuple[torch.Tensor, int]:
    """A (batch, heads, length + spare, dim) buffer holding `tensor` in its first columns; and length."""
    batch, heads, length, dim = tensor.shape
    buffer = tensor.new_empty((batch, heads, length + spare, dim))
    buffer[:, :, :length] = tensor
    return buffer, length


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose `update` writes in place into spare columns (see the module notes)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, spare: int = SPARE_COLUMNS) -> None:
        self.spare = spare
        super().__init__()  # sets keys and values to None through the properties below
        self.device, self.dtype, self.is_initialized = keys.device, keys.dtype, True
        self.keys, self.values = keys, values

    @classmethod
    def from_layer(cls, layer: DynamicLayer) -> "GrowingLayer":
        return cls(layer.keys, layer.values)

    @property  # type: ignore[override]
    def keys(self) -> torch.Tensor | None:
        return None if self._keys is None else self._keys[:, :, :self._key_length]

    @keys.setter
    def keys(self, tensor: torch.Tensor | None) -> None:
        self._keys, self._key_length = (None, 0) if tensor is None else _with_room(tensor, self.spare)

    @property  # type: ignore[override]
    def values(self) -> torch.Tensor | None:
        return None if self._values is None else self._values[:, :, :self._value_length]

    @values.setter
    def values(self, tensor: torch.Tensor | None) -> None:
        self._values, self._value_length = (None, 0) if tensor is None else _with_room(tensor, self.spare)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        if self._keys is None:  # a layer that was reset: start from these states
            self.keys, self.values = key_states, value_states
            return self.keys, self.values
        if self._key_length + new > self._keys.shape[2]:
            self._keys, _ = _with_room(self.keys, max(self.spare, new))
            self._values, _ = _with_room(self.values, max(self.spare, new))
        self._keys[:, :, self._key_length:self._key_length + new] = key_states
        self._values[:, :, self._value_length:self._value_length + new] = value_states
        self._key_length += new
        self._value_length += new
        return self.keys, self.values


def make_growing(cache: Any) -> None:
    """Turn a cache's `DynamicLayer`s into `GrowingLayer`s, in place (other layer types stay)."""
    cache.layers = [GrowingLayer.from_layer(layer) if type(layer) is DynamicLayer and layer.keys is not None
                    else layer for layer in cache.layers]
