"""Our small GPTs are plain `transformers.GPT2LMHeadModel`s: one code path with hub models for
generation, streaming, attention views and LoRA. This module only sizes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class GPTModelConfig:
    """The knobs that matter at this size (nanoGPT's names); everything else is GPT-2's default."""

    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    block_size: int = 256  # context window in tokens (n_positions)
    dropout: float = 0.2
    vocab_size: int = 65

    def check(self) -> None:
        if min(self.n_layer, self.n_head, self.n_embd, self.block_size, self.vocab_size) < 1:
            raise ValueError(f"every model size must be positive (got {self})")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout})")


def make_gpt2_config(cfg: GPTModelConfig, bos_token_id: int | None, eos_token_id: int | None,
                     attn_implementation: str = "sdpa") -> Any:
    """A GPT2Config with our sizes and our tokenizer's special ids (GPT-2's 50256 would be wrong)."""
    from transformers import GPT2Config

    cfg.check()
    config = GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd,
        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        pad_token_id=eos_token_id, tie_word_embeddings=True,
    )
    config._attn_implementation = attn_implementation
    return config


def build_gpt(cfg: GPTModelConfig, bos_token_id: int | None, eos_token_id: int | None,
              attn_implementation: str = "sdpa") -> Any:
    """A freshly initialised GPT2LMHeadModel (GPT-2 init: N(0, 0.02), scaled residual projections)."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel(make_gpt2_config(cfg, bos_token_id, eos_token_id, attn_implementation))
    # No end-of-text for the char model: a newline must not end generation.
    model.generation_config.bos_token_id = bos_token_id
    model.generation_config.eos_token_id = eos_token_id
    model.generation_config.pad_token_id = eos_token_id
    return model


def use_fused_gelu(model: Any) -> int:
    """Swap GPT-2's `gelu_new` (seven elementwise ops, each kept for backward) for PyTorch's one
    fused kernel of the same tanh formula (`gelu_pytorch_tanh`): the same function within float
    rounding, a fifth faster to train on CPU. The config is left as it is, so a saved model still
    loads as it was. Returns how many activations were swapped."""
    from transformers.activations import ACT2FN, NewGELUActivation

    swapped = 0
    for module in model.modules():
        for name, child in module.named_children():
            if type(child) is NewGELUActivation:
                setattr(module, name, ACT2FN["gelu_pytorch_tanh"])
                swapped += 1
    return swapped


def context_window(config: Any) -> int:
    """Tokens the model can attend to, for any causal LM config."""
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def count_parameters(model: Any) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
