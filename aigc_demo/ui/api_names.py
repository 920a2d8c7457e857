"""Readable names in the API description (`view_api`, /gradio_api/info, the MCP schema).

The page's labels are gr.I18n markers (the browser translates them), and Gradio's
`Blocks.get_api_info` copies a component's label as it is: a client would read
`__i18n__{"__type__": "translation_metadata", ...}`, or `value_315` for a component without a
label. `readable_api(demo)` makes every parameter and return label the English text of its label,
else a name from the component's elem_id ("image-info" -> "image info"), else its kind and place.
The page itself is untouched: only the description of the API changes.
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from aigc_demo.ui.i18n import resolve
from aigc_demo.ui.strings import MARK

_FALLBACK = re.compile(r"^(?:parameter|value)_\d+$")
_MARKUP = re.compile(r"[*`#]+")


def readable_label(label: Any, block: Any, kind: str, index: int) -> str:
    """The English text of a label, or a name made from the component when it has none."""
    if isinstance(label, str) and MARK in label:
        label = resolve(label, "en")
    text = " ".join(_MARKUP.sub("", label).split()) if isinstance(label, str) else ""
    if text and not _FALLBACK.match(text) and MARK not in text:
        return text[:80]
    elem_id = getattr(block, "elem_id", None)
    if isinstance(elem_id, str) and elem_id:
        return elem_id.replace("-", " ").replace("_", " ")
    return f"{kind} {index + 1}"


def _rename(entries: list[dict[str, Any]], blocks: list[Any]) -> None:
    for index, (entry, block) in enumerate(zip(entries, blocks)):
        kind = str(entry.get("component") or type(block).__name__).lower()
        entry["label"] = readable_label(entry.get("label"), block, kind, index)


def readable_api(demo: gr.Blocks) -> gr.Blocks:
    """Make `demo.get_api_info` (what routes and the MCP server read) give readable labels."""
    original = demo.get_api_info

    def get_api_info(all_endpoints: bool = False, page: str | None = None) -> Any:
        info = original(all_endpoints=all_endpoints, page=page)
        by_name = {f"/{fn.api_name}": fn for fn in demo.fns.values() if fn.api_name}
        for name, endpoint in info.get("named_endpoints", {}).items():
            fn = by_name.get(name)
            if fn is None:
                continue
            shown_in = [b for b in fn.inputs if not getattr(b, "skip_api", False)]
            shown_out = [b for b in fn.outputs if not getattr(b, "skip_api", False)]
            _rename(endpoint.get("parameters", []), shown_in)
            _rename(endpoint.get("returns", []), shown_out)
        return info

    demo.get_api_info = get_api_info  # type: ignore[method-assign]
    return demo
