"""Turn the services' ValueErrors into messages in the page (gr.Error), never a traceback.

An expected user error (bad input, a full queue, a missing model) is logged as one line, not as
a traceback: gradio prints the traceback of every gr.Error unless `print_exception=False`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, TypeVar

import gradio as gr

from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("aigc_demo.user_errors")


def user_error(message: str, where: str = "") -> gr.Error:
    """A gr.Error for the page, logged as one line (no traceback)."""
    log.warning("user error%s: %s", f" in {where}" if where else "", " ".join(message.split())[:300])
    return gr.Error(message, print_exception=False)


def _translate(err: BaseException, where: str) -> gr.Error:
    if isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        return user_error(t("msg.oom"), where)
    return user_error(localize(str(err)), where)  # in the visitor's language (ui/messages.py)


def user_errors(fn: F) -> F:
    """Wrap a handler (plain or generator) so bad input shows as a clear message."""
    where = getattr(fn, "__name__", "")
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, MemoryError) as err:
                raise _translate(err, where) from None
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, MemoryError) as err:
            raise _translate(err, where) from None
    return wrapper  # type: ignore[return-value]
