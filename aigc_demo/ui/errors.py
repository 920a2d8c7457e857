"""Turn the services' ValueErrors into messages in the page (gr.Error, in the visitor's language),
never a traceback."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

import gradio as gr

from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

F = TypeVar("F", bound=Callable[..., Any])


def _translate(err: BaseException) -> gr.Error:
    if isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        return gr.Error(t("msg.oom"))
    return gr.Error(localize(str(err)))  # in the visitor's language (ui/messages.py)


def user_errors(fn: F) -> F:
    """Wrap a handler (plain or generator) so bad input shows as a clear message."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, MemoryError) as err:
                raise _translate(err) from err
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, MemoryError) as err:
            raise _translate(err) from err
    return wrapper  # type: ignore[return-value]
