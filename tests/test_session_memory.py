"""Memory per page session stays small (issue 25, item 7): Gradio's per-session copies of the
whole page config (0.9 MB each for this app's 566 blocks, measured) and of every value sent are
not kept, sessions are bounded, and deep links (a dump of a session's values to disk) are off.

Every `/call/` without a session id is a new session, which is what a stranger scripting the
API sends: here CALLS of them, each with a 200 KB prompt, must keep less than MAX_KEPT_KB each
of Python memory (traced; RSS is printed too, but includes what the allocator keeps for reuse).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.test_hostile_inputs import rss_with_children_mb

CALLS = 150
MAX_KEPT_KB = 60  # Python memory kept per fresh session (was ~1,100 KB: 0.9 MB of config + the prompt)
PROMPT = "B" * 200_000




def _one_call(base: str, data: list) -> str:
    with httpx.Client(timeout=120) as http:
        posted = http.post(f"{base}/call/text_generate", json={"data": data})
        if posted.status_code != 200:
            return f"http {posted.status_code}"
        stream = http.get(f"{base}/call/text_generate/{posted.json()['event_id']}").text
    return "error" if "event: error" in stream else "done"


def test_fresh_sessions_with_big_values_do_not_grow_the_app(app_url: str) -> None:
    import gc
    import tracemalloc

    from gradio_client import Client

    base = app_url.rstrip("/") + "/gradio_api"
    params = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)[
        "named_endpoints"]["/text_generate"]["parameters"]
    data = [PROMPT if p["parameter_name"] == "prompt" else 2 if p["parameter_name"] == "max_new_tokens"
            else p.get("parameter_default") for p in params]
    _one_call(base, data)  # warm: the model is loaded once, before measuring
    before = rss_with_children_mb()
    tracemalloc.start()
    try:
        gc.collect()
        start, _ = tracemalloc.get_traced_memory()
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(lambda _: _one_call(base, data), range(CALLS)))
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    after = rss_with_children_mb()
    per_call_kb = (kept - start) / CALLS / 1024
    print(f"\n{CALLS} fresh sessions with a 200 KB prompt: Python memory kept {per_call_kb:.0f} KB a call; "
          f"RSS with children {before:.0f} -> {after:.0f} MB; outcomes {sorted(set(outcomes))}")
    assert set(outcomes) == {"done"}, outcomes
    assert per_call_kb < MAX_KEPT_KB


def test_a_session_keeps_no_copy_of_the_page_and_deep_links_are_off(app_url: str, weights_dir) -> None:
    from gradio import state_holder

    from aigc_demo.settings import ServeSettings
    from aigc_demo.ui.launch import create
    from aigc_demo.ui.session_memory import SESSION_CAPACITY

    demo = create(ServeSettings(host="127.0.0.1", port=1, device="cpu", weights_dir=str(weights_dir)))
    assert demo.state_session_capacity == SESSION_CAPACITY
    session = state_holder.SessionState(demo)
    assert dict(session.config_values) == {}
    some_id = next(iter(demo.blocks))
    session._update_value_in_config(some_id, PROMPT)  # what Gradio does with every input value
    assert dict(session.config_values) == {} and list(session.components) == []
    answer = httpx.get(f"{app_url}gradio_api/deep_link", params={"session_hash": "anyone"}, timeout=30)
    assert answer.status_code == 404
    assert json.dumps(answer.text).count("props") == 0
