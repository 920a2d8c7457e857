"""Share-link parameters: parsed and range-checked like any input; links round-trip."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl, urlsplit

import pytest

from aigc_demo import settings as app_settings
from aigc_demo.ui.urlstate import (MAX_QUERY_PARAMS, PARAMS, build_link, build_query, model_key,
                                   parse_query, public_base)


def on_space(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    """Run as on a Space whose public host is `host` ("": not on a Space), for this test only."""
    monkeypatch.setattr(app_settings, "_current", dataclasses.replace(app_settings.current(), space_host=host))


MODELS = {"text": {"model": {"gpt-shakespeare", "openai-community/gpt2"}},
          "image": {"model": {"tiny-sd"}}, "digits": {"model": {"dcgan-mnist"}, "vae": {"vae-mnist-32d"}}}


def models(tab: str, param: str) -> set[str]:
    return MODELS.get(tab, {}).get(param, set())


def reasons(state) -> dict[str, str]:
    return {n.name: n.reason for n in state.notices}


def test_a_text_link_is_read() -> None:
    state = parse_query({"tab": "text", "model": "gpt-shakespeare", "prompt": "ROMEO:\n", "seed": "42",
                         "temperature": "0.7", "top_k": "20", "run": "1", "lang": "zh"}, models)
    assert (state.tab, state.run, state.lang) == ("text", True, "zh")
    assert state.values == {"model": "gpt-shakespeare", "prompt": "ROMEO:\n", "seed": 42, "temperature": 0.7,
                            "top_k": 20}
    assert state.notices == []


@pytest.mark.parametrize(("name", "raw", "reason"), [
    ("seed", "-1", "out_of_range"),
    ("seed", "99999999999", "out_of_range"),
    ("seed", "1e3", "not_int"),
    ("temperature", "nan", "not_number"),
    ("temperature", "inf", "not_number"),
    ("temperature", "2.5", "out_of_range"),
    ("top_p", "0", "out_of_range"),
    ("max_new_tokens", "100000", "out_of_range"),
    ("model", "../../etc/passwd", "unknown_model"),
    ("model", "someone/not-listed", "unknown_model"),
    ("prompt", "x" * 5000, "too_long"),
    ("prompt", "a\x00b", "bad_text"),
    ("steps_please", "3", "unknown"),
])
def test_bad_values_are_dropped_with_a_reason(name: str, raw: str, reason: str) -> None:
    state = parse_query({"tab": "text", name: raw, "seed": "7"} if name != "seed" else {"tab": "text", name: raw},
                        models)
    assert name not in state.values
    assert reasons(state)[name] == reason
    if name != "seed":
        assert state.values["seed"] == 7  # the good values of the same link still apply


def test_globals_are_checked_too() -> None:
    state = parse_query({"tab": "admin", "run": "maybe", "lang": "klingon", "seed": "1"}, models)
    assert state.tab is None and state.run is False and state.lang is None
    assert reasons(state) == {"tab": "not_choice", "run": "not_bool", "lang": "not_choice", "seed": "unknown"}


def test_run_needs_a_tab_and_gradio_parameters_are_ignored() -> None:
    state = parse_query({"run": "1", "__theme": "dark", "view": "api"}, models)
    assert state.run is False and state.notices == []


def test_too_many_parameters() -> None:
    query = {f"p{i}": "1" for i in range(MAX_QUERY_PARAMS + 50)}
    state = parse_query(query, models)
    assert reasons(state)["…"] == "too_many"
    assert len(state.notices) == MAX_QUERY_PARAMS + 1


def test_image_sizes_and_digits() -> None:
    state = parse_query({"tab": "image", "width": "33", "height": "64", "model": "tiny-sd"}, models)
    assert state.values == {"height": 64, "model": "tiny-sd"} and reasons(state) == {"width": "not_multiple"}
    state = parse_query({"tab": "digits", "part": "grid", "digits": "7, 3,3", "count": "12"}, models)
    assert state.values == {"part": "grid", "digits": ["3", "7"], "count": 12}
    state = parse_query({"tab": "digits", "digits": "1,x", "part": "draw"}, models)
    assert reasons(state) == {"digits": "not_digits", "part": "not_choice"}


@pytest.mark.parametrize("tab", [tab for tab, params in PARAMS.items() if params])
def test_every_parameter_round_trips(tab: str) -> None:
    """What a Share button writes, a link reads back unchanged (same names, types and limits)."""
    values = {}
    for param in PARAMS[tab]:
        if param.kind in ("int", "float"):
            values[param.name] = type(param.low)(param.high) if param.kind == "float" else int(param.high)
            if param.multiple_of:
                values[param.name] = int(param.high) // param.multiple_of * param.multiple_of
        elif param.kind == "bool":
            values[param.name] = False
        elif param.kind == "choice":
            values[param.name] = param.choices[-1]
        elif param.kind == "digits":
            values[param.name] = ["0", "9"]
        elif param.kind == "model":
            values[param.name] = sorted(models(tab, param.name) or {"x"})[0]
        else:
            values[param.name] = "ROMEO:\n  «多语言» & ?=#"[: param.max_len]
    query = dict(parse_qsl(build_query(tab, values, lang="zh"), keep_blank_values=True))
    state = parse_query(query, lambda t, p: {values[p]})
    assert state.notices == []
    assert state.values == values and (state.tab, state.run, state.lang) == (tab, True, "zh")


def test_link_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    on_space(monkeypatch, "")
    assert public_base({"Referer": "http://10.0.0.5:7860/?tab=text&x=1"}) == "http://10.0.0.5:7860/"
    assert public_base({"host": "example.org", "x-forwarded-proto": "https"}) == "https://example.org/"
    on_space(monkeypatch, "someone-aigc.hf.space")  # what a Space sets (SPACE_HOST)
    assert public_base({"Referer": "http://10.0.0.5:7860/"}) == "https://someone-aigc.hf.space/"
    link = build_link(public_base({}), "text", {"seed": 5, "prompt": "hi there"})
    parts = urlsplit(link)
    assert parts.netloc == "someone-aigc.hf.space"
    assert dict(parse_qsl(parts.query)) == {"tab": "text", "prompt": "hi there", "seed": "5", "run": "1"}


def test_model_keys_hide_server_paths() -> None:
    assert model_key("/srv/app/weights/gpt-shakespeare") == "gpt-shakespeare"
    assert model_key("openai-community/gpt2") == "openai-community/gpt2"
