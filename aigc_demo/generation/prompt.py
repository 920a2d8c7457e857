"""A prompt made ready for a model: tokenised, cut to the context from the left, with notices.

Why notices: the visitor should know when their prompt was shortened, when characters the model
never saw were replaced, or when an empty prompt started from the model's start token.
"""

from __future__ import annotations

from typing import Any

from aigc_demo.errors import UserError
from aigc_demo.models.tokenizers import char_fallback, encode, unseen_characters

PROMPT_CHARS_PER_TOKEN_BOUND = 64  # a huge prompt is cut to ctx*64 chars before tokenising


def start_ids(tokenizer: Any) -> tuple[list[int], str]:
    """Where an empty prompt starts: BOS (or EOS, GPT-2's document separator), else a newline."""
    for name in ("bos_token", "eos_token"):
        tid = getattr(tokenizer, f"{name}_id", None)
        if tid is not None:
            return [tid], getattr(tokenizer, name)
    newline = tokenizer.get_vocab().get("\n")
    if newline is None:
        ids = tokenizer("\n", add_special_tokens=False)["input_ids"]
        newline = ids[0] if ids else None
    if newline is None:
        raise UserError("The prompt is empty and this model has no start token: type a few words first.")
    return [newline], "\n"


def prepare_prompt(tokenizer: Any, prompt: str, ctx: int, want: int) -> tuple[list[int], list[str], bool]:
    """(prompt ids within the context, cut from the left; notices for the user; whether the
    prompt was empty and generation starts from the start token)."""
    notices: list[str] = []
    if prompt == "":
        ids, shown = start_ids(tokenizer)
        notices.append(f"Empty prompt: generating from the start token {shown!r}.")
        return ids, notices, True
    text = prompt
    char_cap = ctx * PROMPT_CHARS_PER_TOKEN_BOUND
    if len(text) > char_cap:  # no need to tokenise a megabyte to keep its last few hundred tokens
        text = text[-char_cap:]
    unseen = unseen_characters(tokenizer, text)
    if unseen:
        shown = ", ".join(repr(c) for c in unseen[:10]) + (" ..." if len(unseen) > 10 else "")
        notices.append(f"{len(unseen)} character(s) this model never saw ({shown}) were read as "
                       f"{char_fallback(tokenizer)!r}.")
    ids = encode(tokenizer, text)
    keep = max(ctx - want, 1)
    if len(ids) > keep or len(text) < len(prompt):
        ids = ids[-keep:]
        used = len(tokenizer.decode(ids, clean_up_tokenization_spaces=False))
        notices.append(f"The prompt is {len(prompt):,} characters; this model reads at most {ctx} tokens, "
                       f"so it was cut from the left: only the last {len(ids)} tokens (~{used:,} characters) "
                       "were used.")
    return ids, notices, False


def last_tokens(tokenizer: Any, text: str, ctx: int) -> tuple[list[int], str]:
    """The ids of `text`'s last `ctx` tokens (what a look inside shows), with a notice if cut."""
    if len(text) > ctx * PROMPT_CHARS_PER_TOKEN_BOUND:  # only the last ctx tokens are shown anyway
        text = text[-ctx * PROMPT_CHARS_PER_TOKEN_BOUND:]
    ids = encode(tokenizer, text)
    if len(ids) > ctx:
        return ids[-ctx:], f"The text has {len(ids)} tokens; only the last {ctx} (the context window) are shown."
    return ids, ""
