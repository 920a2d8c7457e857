"""The string tables: every key in both languages with the same placeholders; service messages
re-worded in the visitor's language; the visitor's language read from the link or the browser."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from aigc_demo.ui.locales.en import STRINGS as EN
from aigc_demo.ui.locales.zh import STRINGS as ZH
from aigc_demo.ui.messages import localize, match
from aigc_demo.ui.strings import in_lang, lang_from_accept, placeholders, request_lang, t

ROOT = Path(__file__).resolve().parent.parent
# Where visitor-facing messages come from (ValueErrors and notices in plain English).
# every module below the UI: a UserError raised anywhere there reaches a visitor
SERVICE_FILES = sorted(p for p in (ROOT / "aigc_demo").rglob("*.py") if "ui" not in p.relative_to(ROOT / "aigc_demo").parts)


def test_every_key_in_both_languages_with_the_same_placeholders() -> None:
    assert sorted(set(EN) - set(ZH)) == [], "keys missing in zh.py"
    assert sorted(set(ZH) - set(EN)) == [], "keys in zh.py that en.py does not have"
    different = {k: (placeholders(EN[k]), placeholders(ZH[k])) for k in EN
                 if placeholders(EN[k]) != placeholders(ZH[k])}
    assert different == {}


def test_chinese_is_chinese() -> None:
    """A copied English string is a missed translation (codes, names and units may stay)."""
    same = [k for k in EN if EN[k] == ZH[k] and re.search(r"[a-z]{4,}", re.sub(r"\{[^}]*\}", "", EN[k]))
            and k not in ("system.hub", "gallery.source.hub", "code.editor", "finetune.error_line")]
    assert same == []
    for key, text in ZH.items():
        assert text.format(**{n: 1 for n in placeholders(text)}) if "{" in text else text  # formats


def _template(node: ast.AST) -> str | None:
    """An f-string or string literal with its holes as {} (the shape to compare)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        return left + right if left is not None and right is not None else None
    return None


def _service_messages() -> list[tuple[str, str]]:
    found = []
    for path in SERVICE_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            arg = None
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args \
                    and getattr(node.exc.func, "id", "") == "UserError":  # only these reach a visitor
                arg = node.exc.args[0]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                    and node.func.attr == "append" and "notice" in ast.unparse(node.func.value):
                arg = node.args[0]
            shape = _template(arg) if arg is not None else None
            if shape:
                found.append((f"{path.name}:{node.lineno}", shape))
    return found


def _shape(template: str) -> str:
    return "".join(text + ("{}" if name is not None else "") for text, name, _, _ in string.Formatter().parse(template))


def test_every_service_message_has_a_template() -> None:
    """A new message in a service needs a msg.* entry in en.py and zh.py, or Chinese visitors get English."""
    shapes = {_shape(v) for k, v in EN.items() if k.startswith("msg.")}
    missing = [f"{where}: {shape!r}" for where, shape in _service_messages() if shape not in shapes]
    assert missing == []
    assert len(_service_messages()) > 80  # the scan still finds the messages


@pytest.mark.parametrize(("english", "chinese"), [
    ("Seed must be at most 4294967295 (got 5000000000)", "随机种子最大为 4294967295（当前为 5000000000）"),
    ("Type a prompt: a few words that describe the image.", "请输入提示词：用几个词描述你想要的画面。"),
    ("The prompt is 5000 characters; keep it under 2000.", "提示词有 5000 个字符；请控制在 2000 个以内。"),
    ("Width 33 became 32 (multiples of 8 from 32 to 2048).", "宽度 33 已调整为 32（须为 8 的倍数，范围 32 到 2048）。"),
])
def test_service_messages_in_chinese(english: str, chinese: str) -> None:
    assert localize(english, "zh") == chinese
    assert localize(english, "en") == english


def test_a_message_without_template_is_left_alone() -> None:
    assert match("something the services never say") is None
    assert localize("something the services never say", "zh") == "something the services never say"


def test_real_service_errors_are_translated() -> None:
    from aigc_demo.services import digits, imagegen

    with pytest.raises(ValueError) as err:
        digits.check_seed(-3)
    assert localize(str(err.value), "zh") == "随机种子不能小于 0（当前为 -3）"
    with pytest.raises(ValueError) as err:
        imagegen.ImageSettings(prompt="").checked()
    assert "提示词" in localize(str(err.value), "zh")


def test_language_of_a_request() -> None:
    class Request:
        def __init__(self, query: dict, accept: str | None) -> None:
            self.query_params = query
            self.headers = {"Accept-Language": accept} if accept else {}

    assert request_lang(Request({}, "zh-CN,zh;q=0.9,en;q=0.8")) == "zh"
    assert request_lang(Request({}, "en-US,en;q=0.9,zh;q=0.8")) == "en"
    assert request_lang(Request({"lang": "en"}, "zh-CN")) == "en"  # the link wins
    assert request_lang(Request({"lang": "zh"}, "en-US")) == "zh"
    assert request_lang(Request({"lang": "xx"}, "fr-FR,zh-TW;q=0.5")) == "zh"
    assert request_lang(Request({}, "fr-FR")) == "en"
    assert lang_from_accept("de;q=0.9, zh-HK;q=0.95") == "zh"
    assert lang_from_accept("x" * 5000) is None


def test_t_outside_a_page_is_plain_text() -> None:
    assert t("gallery.count", count=3) == "3 model(s)"
    with in_lang("zh"):
        assert t("gallery.count", count=3) == "共 3 个模型"


def test_page_labels_become_one_marker_each() -> None:
    """While building, t() leaves gr.I18n markers; composite strings are folded into one."""
    import gradio as gr

    from aigc_demo.ui import i18n
    from aigc_demo.ui.strings import MARKER

    with gr.Blocks() as demo:
        title = gr.Markdown(f"# {t('app.title')}\n{t('app.tagline')}")
        count = gr.Slider(1, 9, label=t("digits.count"), info=t("digits.count_info", max=9))
        radio = gr.Radio([(t("gallery.all"), "all"), ("x", "x")], value="all")
    translations = i18n.finish(demo).translations
    for value in (title.value, count.label, count.info, radio.choices[0][0]):
        key = MARKER.fullmatch(value).group(1)
        assert translations["en"][key] and translations["zh-CN"][key]
    key = MARKER.fullmatch(title.value).group(1)
    assert translations["en"][key] == f"# AIGC Gallery\n{EN['app.tagline']}"
    assert translations["zh-CN"][key].startswith("# AIGC 生成模型画廊\n")
    assert translations["zh-CN"][MARKER.fullmatch(count.info).group(1)] == "1 到 9 个"
