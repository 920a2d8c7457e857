"""Every numeric parameter is refused at once when out of range (issue 25, item 6).

Steps, batch, tokens, image size, sample counts: each number an endpoint takes is a gr.Slider or
gr.Number with both bounds, so Gradio refuses a value outside them while reading the inputs,
before any handler (or model) runs; a seed is the one number without a top other than 2**63 - 1.
A component added without bounds fails here (KNOWN_UNBOUNDED is empty and stays so).
"""

from __future__ import annotations

import math

import gradio as gr
import pytest

SEED_MAX = 2**63 - 1
# Every number of every endpoint has both Gradio bounds; the services check the values again
# (validate.integer / number), and the hostile walk (tests/test_hostile_inputs.py) sends 1e12, -1e12, 2**70.
KNOWN_UNBOUNDED: set[tuple[str, str | None]] = set()


@pytest.fixture(scope="module")
def endpoints(weights_dir) -> dict[str, list]:
    from aigc_demo.settings import ServeSettings
    from aigc_demo.ui.launch import create

    demo = create(ServeSettings(host="127.0.0.1", port=1, device="cpu", weights_dir=str(weights_dir)))
    found: dict[str, list] = {}
    for fn in demo.fns.values():
        if fn.api_name and getattr(fn, "show_api", True) and fn.api_visibility != "private":
            found[fn.api_name] = [b for b in fn.inputs if isinstance(b, (gr.Slider, gr.Number))]
    return found


def test_every_numeric_input_has_both_bounds(endpoints) -> None:
    numeric = [(name, b) for name, blocks in endpoints.items() for b in blocks]
    assert len(numeric) >= 30, len(numeric)  # steps, tokens, sizes, counts, seeds across the tabs
    unbounded = {(name, b.elem_id) for name, b in numeric
                 if b.minimum is None or b.maximum is None or not math.isfinite(b.maximum)}
    assert unbounded <= KNOWN_UNBOUNDED, sorted(unbounded - KNOWN_UNBOUNDED, key=str)
    too_big = [f"{name}: {b.elem_id} <= {b.maximum}" for name, b in numeric
               if b.maximum is not None and b.maximum > SEED_MAX]
    assert too_big == []


def test_out_of_range_numbers_are_refused_before_any_handler(endpoints) -> None:
    refused = 0
    for name, blocks in endpoints.items():
        for block in blocks:
            if block.minimum is None or block.maximum is None:
                continue  # KNOWN_UNBOUNDED: the services check these
            for value in (block.maximum + 1, block.minimum - 1, 10**30, -(10**30)):
                with pytest.raises(gr.Error):
                    block.preprocess(value)
                refused += 1
            assert block.preprocess(block.minimum) == pytest.approx(block.minimum)
    assert refused >= 120
