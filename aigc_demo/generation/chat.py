"""Chat prompts: a conversation rendered with the model's own chat template.

Instruct models ship a chat template; base models (ours, GPT-2) complete text instead.
"""

from __future__ import annotations

from typing import Any

from aigc_demo.errors import UserError

NO_TEMPLATE = "This model has no chat template: pick it in completion mode."


class NoChatTemplate(UserError):
    """A chat was asked of a model that only completes text (the tab shows its own wording)."""

    def __init__(self) -> None:
        super().__init__(NO_TEMPLATE)


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer carries a chat template (instruct models do)."""
    return bool(getattr(tokenizer, "chat_template", None))


def chat_messages(history: list[dict[str, str]], system: str = "") -> list[dict[str, str]]:
    """The messages to send: the system prompt (if any), then every non-empty turn; the last one
    must be the user's."""
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + [
        {"role": m["role"], "content": m["content"]} for m in history if m.get("content")]
    if not messages or messages[-1]["role"] != "user":
        raise UserError("Type a message first.")
    return messages


def chat_prompt(tokenizer: Any, history: list[dict[str, str]], system: str = "") -> str:
    """The conversation rendered with the model's own chat template, ready for the assistant."""
    if not has_chat_template(tokenizer):
        raise NoChatTemplate()
    return tokenizer.apply_chat_template(chat_messages(history, system), tokenize=False,
                                         add_generation_prompt=True)
