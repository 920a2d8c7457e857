"""The API description a client reads (view_api, and so the MCP schema) names every parameter and
return value in words, never by a translation key (issue 24 item 4)."""

from __future__ import annotations

import json

from aigc_demo.ui.api_names import readable_label


def labels(endpoint: dict) -> tuple[list[str], list[str]]:
    return [p["label"] for p in endpoint["parameters"]], [r["label"] for r in endpoint["returns"]]


def test_no_endpoint_is_described_by_translation_keys(client) -> None:
    api = client.view_api(return_format="dict", print_info=False)
    named = api["named_endpoints"]
    assert len(named) > 20
    bad = {name: labels(ep) for name, ep in named.items()
           if any("i18n" in str(label) or "translation_metadata" in str(label)
                  or str(label).startswith(("value_", "parameter_")) for label in sum(labels(ep), []))}
    assert bad == {}, json.dumps(bad, ensure_ascii=False)[:2000]


def test_key_endpoints_have_their_words(client) -> None:
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert labels(named["/generate_image"]) == (
        ["Model", "Prompt", "Negative prompt", "Steps", "Guidance", "Width", "Height", "Seed", "Random seed",
         "Number of images"], ["Images", "image info"])
    assert labels(named["/digits_grid"]) == (["Digits", "How many", "Seed", "Truncation", "GAN (generator)"],
                                             ["Generated digits"])
    params, returns = labels(named["/text_generate"])
    assert params[:3] == ["Model", "Prompt", "Max new tokens"] and returns[0] == "Continuation"
    # the parameter names a client passes by keyword stay the handler's own
    assert [p["parameter_name"] for p in named["/generate_image"]["parameters"]][:2] == ["model_ref", "prompt_text"]


def test_readable_label_falls_back_to_the_element_id() -> None:
    class Block:
        elem_id = "image-info"

    assert readable_label("value_315", Block(), "markdown", 1) == "image info"
    assert readable_label(None, object(), "json", 6) == "json 7"
    assert readable_label("**Seed**", object(), "number", 0) == "Seed"
