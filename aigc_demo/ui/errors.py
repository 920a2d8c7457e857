"""Turn what a handler raises into a message in the page (gr.Error), never a traceback.

Only a `UserError` (aigc_demo/errors.py) carries a message meant for the visitor: it is shown as
it is, in the visitor's language (ui/messages.py), and logged as one line. Running out of memory
gets its own advice. Anything else (a ValueError from torch or numpy, a KeyError, a bug) is
logged with its traceback and shown as one short generic message, so no internal text reaches
the page. A gr.Error raised by the handler itself passes through unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, TypeVar

import gradio as gr

from aigc_demo.errors import UserError
from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("aigc_demo.user_errors")


def user_error(message: str, where: str = "") -> gr.Error:
    """A gr.Error for the page, logged as one line (no traceback)."""
    log.warning("user error%s: %s", f" in {where}" if where else "", " ".join(message.split())[:300])
    return gr.Error(message, print_exception=False)


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def _translate(err: Exception, where: str) -> gr.Error:
    if _out_of_memory(err):
        return user_error(t("msg.oom"), where)
    if isinstance(err, UserError):
        return user_error(localize(str(err)), where)  # in the visitor's language (ui/messages.py)
    log.error("internal error%s", f" in {where}" if where else "", exc_info=(type(err), err, err.__traceback__))
    return gr.Error(t("error.internal"), print_exception=False)


def user_errors(fn: F) -> F:
    """Wrap a handler (plain or generator) so what it raises shows as a clear message."""
    where = getattr(fn, "__name__", "")
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
                raise _translate(err, where) from None
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
            raise _translate(err, where) from None
    return wrapper  # type: ignore[return-value]
