"""ui/errors.py: only a UserError reaches the page as it is; anything else is logged with its
traceback and shown as one short generic message (never its own text)."""

from __future__ import annotations

import logging

import gradio as gr
import pytest

from aigc_demo.errors import UserError
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.strings import in_lang, table

SECRET = "tensor a (3) must match tensor b (4) at /srv/private/model.py"


def _message(err: gr.Error) -> str:
    return str(getattr(err, "message", err))


@pytest.mark.parametrize("internal", [ValueError(SECRET), KeyError(SECRET), RuntimeError(SECRET)])
def test_an_internal_error_shows_the_generic_message_and_is_logged(internal: Exception, caplog) -> None:
    @user_errors
    def handler() -> None:
        raise internal

    with caplog.at_level(logging.ERROR, logger="aigc_demo.user_errors"), pytest.raises(gr.Error) as raised:
        handler()
    assert _message(raised.value) == table("en")["error.internal"]
    assert "/srv/private" not in _message(raised.value)
    records = [r for r in caplog.records if r.name == "aigc_demo.user_errors" and r.levelno == logging.ERROR]
    assert len(records) == 1 and records[0].exc_info is not None and records[0].exc_info[1] is internal
    assert "in handler" in records[0].getMessage()


def test_a_generator_handler_gets_the_same_treatment(caplog) -> None:
    @user_errors
    def stream():
        yield 1
        raise ValueError(SECRET)  # e.g. numpy refusing a shape, deep in a service

    with caplog.at_level(logging.ERROR, logger="aigc_demo.user_errors"), pytest.raises(gr.Error) as raised:
        list(stream())
    assert _message(raised.value) == table("en")["error.internal"]
    assert any(r.exc_info for r in caplog.records if r.name == "aigc_demo.user_errors")


def test_a_user_error_is_shown_verbatim_without_a_traceback(caplog) -> None:
    @user_errors
    def handler() -> None:
        raise UserError("Seed must be 0 or more (got -1)")

    with caplog.at_level(logging.WARNING, logger="aigc_demo.user_errors"), pytest.raises(gr.Error) as raised:
        handler()
    assert _message(raised.value) == "Seed must be 0 or more (got -1)"
    assert not any(r.exc_info for r in caplog.records)


def test_a_user_error_is_localized_and_the_generic_message_too() -> None:
    @user_errors
    def user() -> None:
        raise UserError("Seed must be 0 or more (got -1)")

    @user_errors
    def internal() -> None:
        raise ValueError(SECRET)

    with in_lang("zh"):
        with pytest.raises(gr.Error) as shown:
            user()
        with pytest.raises(gr.Error) as generic:
            internal()
    assert _message(shown.value) == "随机种子不能小于 0（当前为 -1）"
    assert _message(generic.value) == table("zh")["error.internal"]


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")])
def test_out_of_memory_gets_its_own_advice(error: Exception) -> None:
    @user_errors
    def handler() -> None:
        raise error

    with pytest.raises(gr.Error) as raised:
        handler()
    assert _message(raised.value) == table("en")["msg.oom"]


def test_a_gr_error_of_the_handler_passes_unchanged() -> None:
    mine = gr.Error("exactly this")

    @user_errors
    def handler() -> None:
        raise mine

    with pytest.raises(gr.Error) as raised:
        handler()
    assert raised.value is mine


def test_the_projects_visitor_errors_are_user_errors() -> None:
    from aigc_demo.data.idx import IdxFormatError
    from aigc_demo.data.text import CorpusError
    from aigc_demo.engines.client import EngineError
    from aigc_demo.hub import HubModelMissing
    from aigc_demo.modelcard import ModelCardError

    for cls in (EngineError, HubModelMissing, ModelCardError, IdxFormatError, CorpusError):
        assert issubclass(cls, UserError), cls


def test_a_label_built_with_t_is_named_in_the_visitors_language() -> None:
    """gradio's own input check names the input by its label, never by a gr.I18n marker."""
    from aigc_demo.ui.inputs import _label
    from aigc_demo.ui.strings import t

    with gr.Blocks():
        slider = gr.Slider(1, 10, label=t("gen.max_new_tokens"))
        unknown = gr.Slider(1, 10, label=gr.I18n()("no_such_key"))
        bare = gr.Slider(1, 10)
    assert "__i18n__" in str(slider.label)  # what gradio holds while the page is built
    assert _label(slider, 0) == f"“{table('en')['gen.max_new_tokens']}”"
    with in_lang("zh"):
        assert _label(slider, 0) == f"“{table('zh')['gen.max_new_tokens']}”"
    assert _label(unknown, 1) == "input 2 (slider)"
    assert _label(bare, 2) == "input 3 (slider)"
