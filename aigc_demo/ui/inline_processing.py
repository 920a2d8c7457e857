"""Gradio reads and writes simple values in place, not in a worker thread each.

Why: before a handler runs, gradio preprocesses each input in its own worker thread
(`anyio.to_thread.run_sync(block.preprocess, ...)`), and it postprocesses each output of every
streamed update the same way. /text_generate has 9 inputs and 4 outputs, so one request made 9
thread hops before the model saw it, and 4 more per update. While 8 visitors arrive at once,
each hop waits for the interpreter lock behind the event loop's HTTP work. Measured through the
app's API (`bench concurrency`, 2-core EPYC, 5 rounds): the median first token of 8 streams
came 117-123 ms after submit with the hops and 81-89 ms without; one stream alone was 57-61 ms
either way.

What runs in place: `preprocess` / `postprocess` of the components whose methods only convert a
small value (a textbox's string, a slider's number, a dropdown's choice checked against its
list), and only for a scalar value, a string of at most `INLINE_TEXT_CHARS` characters. The same
methods run on the same values, so results and error messages are gradio's own. Everything else
(files, images, chat histories, lists, long text) still goes to a worker thread, so nothing a
visitor sends can hold the event loop for long.

How: `install()` gives `gradio.blocks` a view of `anyio` whose `to_thread.run_sync` makes that
one choice and hands everything else to anyio. A gradio that no longer calls it there just keeps
its threads (a test fails, so the figure above is measured again).
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

INLINE_TEXT_CHARS = 20_000  # longer strings (Markdown's cleandoc is linear in them) keep their thread
LIGHT_COMPONENTS = (gr.Textbox, gr.Slider, gr.Number, gr.Checkbox, gr.Dropdown, gr.Radio, gr.State, gr.Markdown)
_METHODS = ("preprocess", "postprocess")


def runs_inline(func: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    """Whether `func(*args)` is a light component's conversion of one small value."""
    component = getattr(func, "__self__", None)
    if getattr(func, "__name__", "") not in _METHODS or type(component) not in LIGHT_COMPONENTS or len(args) != 1:
        return False
    value = args[0]
    if isinstance(value, str):
        return len(value) <= INLINE_TEXT_CHARS
    return value is None or isinstance(value, (bool, int, float))


class _ToThread:
    """anyio's `to_thread`, except that light conversions run in the caller's thread."""

    def __init__(self, real: Any) -> None:
        self._real = real

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if runs_inline(func, args):
            return func(*args)
        return await self._real.run_sync(func, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _AnyioForBlocks:
    """The `anyio` module as `gradio.blocks` sees it after `install()`."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.to_thread = _ToThread(real.to_thread)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install() -> bool:
    """Make gradio convert light values in place (see the module notes); once per process.
    Returns whether it was installed now (False: already, or gradio has no `anyio` there)."""
    from gradio import blocks

    real = getattr(blocks, "anyio", None)
    if real is None or isinstance(real, _AnyioForBlocks):
        return False
    blocks.anyio = _AnyioForBlocks(real)  # type: ignore[assignment]
    return True


def installed() -> bool:
    from gradio import blocks

    return isinstance(getattr(blocks, "anyio", None), _AnyioForBlocks)
