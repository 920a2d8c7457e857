"""Simple values are converted in place, not in a worker thread each (ui/inline_processing.py):
which calls stay in the caller's thread, that results and errors are gradio's own, and that an
app built by shell.build_app installs it."""

from __future__ import annotations

import asyncio
import threading

import gradio as gr
import pytest

from aigc_demo.ui import inline_processing
from aigc_demo.ui.inline_processing import INLINE_TEXT_CHARS, runs_inline


def thread_of(func, *args):
    """(the thread `gradio.blocks`' anyio ran func in, its result), after install()."""
    from gradio import blocks

    inline_processing.install()
    seen = {}

    def record(*a):
        seen["thread"] = threading.get_ident()
        return func(*a)

    record.__name__ = func.__name__
    record.__self__ = func.__self__  # type: ignore[attr-defined]  # what runs_inline reads of a bound method

    async def main():
        seen["caller"] = threading.get_ident()
        return await blocks.anyio.to_thread.run_sync(record, *args)

    box = {}

    def run() -> None:  # a thread of its own: an earlier test may have left a loop running in this one
        try:
            box["result"] = asyncio.run(main())
        except BaseException as err:  # noqa: BLE001 - raised below, in the test's thread
            box["error"] = err

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(30)
    if "error" in box:
        raise box["error"]
    return ("caller" if seen["thread"] == seen["caller"] else "worker"), box["result"]


@pytest.mark.parametrize(("component", "method", "value", "expected"), [
    (gr.Textbox(), "preprocess", "hello", "hello"),
    (gr.Slider(0, 10), "preprocess", 3, 3),
    (gr.Number(precision=0), "preprocess", 2.6, 3),
    (gr.Checkbox(), "preprocess", True, True),
    (gr.Dropdown(["a", "b"]), "preprocess", "b", "b"),
    (gr.Markdown(), "postprocess", "  **stats**", "**stats**"),
    (gr.Textbox(), "postprocess", None, None),
])
def test_light_conversions_of_small_values_stay_in_the_callers_thread(component, method, value, expected) -> None:
    assert thread_of(getattr(component, method), value) == ("caller", expected)


@pytest.mark.parametrize(("func", "value"), [
    (gr.Textbox().preprocess, "x" * (INLINE_TEXT_CHARS + 1)),  # long text
    (gr.Dropdown(["a", "b"], multiselect=True).preprocess, ["a", "b"]),  # a list a visitor sized
    (gr.Chatbot().postprocess, [{"role": "user", "content": "hi"}]),  # not a light component
    (gr.Image().postprocess, None),
], ids=["long-text", "list", "chatbot", "image"])
def test_everything_else_keeps_its_worker_thread(func, value) -> None:
    assert not runs_inline(func, (value,))
    assert thread_of(func, value)[0] == "worker"


def test_plain_functions_and_other_methods_are_never_inlined() -> None:
    def preprocess(value):  # a handler that happens to share the name, not a component's method
        return value

    assert not runs_inline(preprocess, ("x",))
    assert not runs_inline(gr.Textbox().api_info, ())
    assert not runs_inline(gr.Textbox().preprocess, ("a", "b"))


def test_errors_are_gradios_own_in_place() -> None:
    with pytest.raises(gr.Error, match="is not in the list of choices"):
        thread_of(gr.Dropdown(["a", "b"]).preprocess, "c")
    with pytest.raises(gr.Error, match="greater than maximum value"):
        thread_of(gr.Slider(0, 10).preprocess, 11)


def test_install_is_once_and_leaves_the_rest_of_anyio_as_it_is() -> None:
    inline_processing.install()
    assert inline_processing.install() is False
    assert inline_processing.installed()
    from gradio import blocks

    assert blocks.anyio.to_thread.current_default_thread_limiter is not None  # the rest is anyio's own
    assert blocks.anyio.CapacityLimiter is not None


def test_gradio_still_converts_through_the_call_this_replaces() -> None:
    """If gradio stops calling `anyio.to_thread.run_sync(block.preprocess / postprocess, ...)` in
    gradio.blocks, the in-place path is dead code: measure again and adapt."""
    import inspect

    from gradio import blocks

    pre = inspect.getsource(blocks.Blocks.preprocess_data)
    post = inspect.getsource(blocks.Blocks.postprocess_data)
    assert "anyio.to_thread.run_sync(" in pre and "block.preprocess" in pre
    assert "anyio.to_thread.run_sync(" in post and "block.postprocess" in post


def test_building_the_app_installs_it(monkeypatch, weights_dir) -> None:
    import anyio
    from gradio import blocks

    from aigc_demo.settings import ServeSettings
    from aigc_demo.ui import model_refs, shell

    monkeypatch.setattr(blocks, "anyio", anyio)  # as gradio has it before the app is built
    assert not inline_processing.installed()
    previous = model_refs._settings
    try:
        shell.build_app(ServeSettings(device="cpu", weights_dir=str(weights_dir)))
    finally:
        model_refs.install(previous)
    assert inline_processing.installed()
