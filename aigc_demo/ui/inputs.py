"""A clear message when gradio itself cannot read a value an API client sent.

Before a handler runs, gradio validates each input against its component's data model and
preprocesses it (a Slider checks its bounds, a Chatbot parses messages, an ImageEditor opens
files). A wrong type there (None or a list for a slider, a string for a chat history) raises
inside gradio and reaches the visitor as the generic "Error". `check_inputs(demo)` wraps that
step: the visitor learns which input was wrong and why, and the log gets one line.
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from aigc_demo.services.validate import shown
from aigc_demo.ui.errors import user_error
from aigc_demo.ui.i18n import resolve
from aigc_demo.ui.strings import MARK, current_lang


def _label(block: Any, index: int) -> str:
    """The input's label as the visitor reads it: a label built with t() holds a gr.I18n marker
    (ui/strings.py), resolved here into the visitor's language; no label: its position and kind."""
    label = getattr(block, "label", None)
    text = resolve(str(label), current_lang()) if label is not None else ""
    if text and MARK not in text:
        return f"“{text}”"
    return f"input {index + 1} ({block.get_block_name()})"


def _reason(err: BaseException) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):  # pydantic ValidationError: the first problem, in words
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "root")
            return f"{first.get('msg', 'invalid value')}" + (f" (at {where})" if where else "")
        except (IndexError, TypeError, KeyError):
            pass
    text = str(err)
    original = text.rsplit("Original error: ", 1)[-1]
    return " ".join(original.split())[:200]


def _failing_input(block_fn: Any, inputs: list[Any], err: BaseException) -> int | None:
    found = re.search(r"component at index (\d+)", str(err))
    if found:
        return int(found.group(1))
    for index, block in enumerate(getattr(block_fn, "inputs", [])):  # a data-model error: find it
        model = getattr(block, "data_model", None)
        if model is None or index >= len(inputs) or inputs[index] is None:
            continue
        try:
            model.model_validate(inputs[index], context={"validate_meta": True})
        except Exception:  # noqa: BLE001 - this is the one
            return index
    return None


def check_inputs(demo: gr.Blocks) -> gr.Blocks:
    """Make gradio's reading of inputs answer wrong values with a clear message."""
    original = demo.preprocess_data

    async def preprocess_data(block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False) -> Any:
        try:
            return await original(block_fn, inputs, state, explicit_call)
        except gr.Error as err:  # gradio's own (a slider out of bounds): one log line, no traceback
            if getattr(err, "print_exception", False):
                raise user_error(str(getattr(err, "message", err)), getattr(block_fn, "name", "") or "inputs") from None
            raise
        except Exception as err:  # noqa: BLE001 - turned into a message for the visitor
            index = _failing_input(block_fn, inputs, err)
            blocks = getattr(block_fn, "inputs", [])
            if index is not None and index < len(blocks):
                value = inputs[index] if index < len(inputs) else None
                message = (f"{_label(blocks[index], index)} cannot take {shown(value)}: {_reason(err)}.")
            else:
                message = f"A value sent to this endpoint cannot be read: {_reason(err)}."
            raise user_error(message, getattr(block_fn, "name", "") or "inputs") from None

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]
    return demo
