"""The Text and Code tabs through gradio_client: streaming, Stop, chat, bad input, look inside."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

SAMPLING = dict(max_new_tokens=40, temperature=0.0, top_k=0, top_p=1.0, repetition_penalty=1.0,
                seed=3, randomize=False)


def _complete(client, model: str, prompt: str, **overrides):
    values = {**SAMPLING, **overrides}
    return client.submit(model, prompt, *values.values(), api_name="/text_generate")


def test_streaming_yields_incremental_chunks(client, weights_dir: Path) -> None:
    job = _complete(client, "tiny-gpt", "def add(a, b):\n", max_new_tokens=600)
    outputs = [update[0] for update in job]  # every streamed update
    final = job.result()
    assert len(outputs) >= 3
    assert all(len(a) <= len(b) for a, b in zip(outputs, outputs[1:]))  # it grows as tokens arrive
    assert final[0] == outputs[-1] and 0 < len(final[0]) <= 600  # char model: <= 1 char per token
    assert "600 tokens" in final[1] and "seed 3" in final[1]
    assert final[2] == "def add(a, b):\n" + final[0]  # the text Look inside reads
    assert final[3] == 3  # the seed used, written back to the seed box


def test_same_seed_same_text(client, weights_dir: Path) -> None:
    model = "tiny-gpt"
    first = _complete(client, model, "class ", temperature=1.0, seed=11).result()
    again = _complete(client, model, "class ", temperature=1.0, seed=11).result()
    assert first[0] == again[0] and first[3] == again[3] == 11


def test_random_seed_is_reported_for_reuse(client, weights_dir: Path) -> None:
    result = _complete(client, "tiny-gpt", "def ", randomize=True).result()
    assert isinstance(result[3], (int, float)) and f"seed {int(result[3])}" in result[1]


def test_stop_ends_only_the_stream_of_that_session(client, weights_dir: Path, app_url: str) -> None:
    from gradio_client import Client

    model = "tiny-gpt"
    other = Client(app_url, verbose=False)
    mine = _complete(client, model, "def ", max_new_tokens=1024, temperature=1.0)
    theirs = _complete(other, model, "def ", max_new_tokens=300, temperature=1.0)
    deadline = time.monotonic() + 60  # on a loaded machine the queue may start it late: stop once it streams
    while not mine.outputs() and time.monotonic() < deadline:
        time.sleep(0.05)
    client.predict(api_name="/text_stop")
    mine_final = mine.result(timeout=60)
    theirs_final = theirs.result(timeout=120)
    assert "stopped by you" in mine_final[1]
    assert "300 tokens" in theirs_final[1] and "stopped by you" not in theirs_final[1]


@pytest.mark.parametrize("overrides, message", [
    ({"temperature": -1.0}, "less than minimum value 0"),
    ({"max_new_tokens": 100_000}, "greater than maximum value 1024"),
])
def test_absurd_settings_are_refused_clearly(client, weights_dir: Path, overrides: dict, message: str) -> None:
    with pytest.raises(AppError, match=message):
        _complete(client, "tiny-gpt", "x", **overrides).result()


def test_empty_and_huge_prompts(client, weights_dir: Path) -> None:
    model = "tiny-gpt"
    empty = _complete(client, model, "", max_new_tokens=10).result()
    assert "Empty prompt" in empty[1] and len(empty[0]) > 0
    long = _complete(client, model, "a" * 100_000, max_new_tokens=5).result()
    assert "cut from the left" in long[1] and "100,000 characters" in long[1]
    with pytest.raises(AppError, match="this server takes at most 200,000"):  # a megabyte is refused
        _complete(client, model, "a" * 1_000_000, max_new_tokens=5).result()


def test_unseen_characters_are_mapped_and_said(client, weights_dir: Path) -> None:
    result = _complete(client, "tiny-gpt", "héllo ☃", max_new_tokens=5).result()
    assert "never saw" in result[1] and "'☃'" in result[1]


def test_missing_hub_model_is_a_clear_message_fast(client) -> None:
    started = time.perf_counter()
    with pytest.raises(AppError, match="openai-community/gpt2"):
        _complete(client, "openai-community/gpt2", "Hello").result()
    assert time.perf_counter() - started < 15


def test_chat_uses_the_template_and_streams(client, weights_dir: Path) -> None:
    values = list(SAMPLING.values())
    job = client.submit("tiny-chat", "hi", [], "be brief", *values, api_name="/text_chat")
    final = job.result()
    box, history, stats, _seed = final
    assert box == "" and [m["role"] for m in history] == ["user", "assistant"]
    assert "hi" in str(history[0]["content"]) and "tokens" in stats
    with pytest.raises(AppError, match="Type a message first"):
        client.predict("tiny-chat", "  ", [], "", *values, api_name="/text_chat")
    with pytest.raises(AppError, match="no chat template"):
        client.predict("tiny-gpt", "hi", [], "", *values, api_name="/text_chat")


def test_look_inside_returns_top10_and_attention(client, weights_dir: Path) -> None:
    from PIL import Image

    top, heat, where, tokens, position = client.predict("tiny-gpt", "def add(a, b):", 4, 1, 1,
                                                        api_name="/text_look_inside")
    assert position == 4  # the text as tokens, the chosen one marked: what the page lets you click
    spans = [(item["token"], item["class_or_confidence"]) for item in tokens] if isinstance(tokens[0], dict) \
        else [tuple(item) for item in tokens]
    assert "".join(token for token, _ in spans) == "def add(a, b):"
    assert [i for i, (_, mark) in enumerate(spans) if mark] == [4]
    confidences = top["confidences"]
    assert len(confidences) == 10 and sum(c["confidence"] for c in confidences) <= 1.0 + 1e-6
    assert Image.open(heat if isinstance(heat, str) else heat["path"]).size[0] > 100
    assert "Position 4" in where and "2 layers" in where
    with pytest.raises(AppError, match="Layer must be between 0 and 1"):
        client.predict("tiny-gpt", "def", 0, 5, 0, api_name="/text_look_inside")


def test_code_completion_streams_into_the_editor_and_parses(client, weights_dir: Path) -> None:
    values = list(SAMPLING.values())
    job = client.submit("tiny-coder", "def add(a, b):\n", True, 80, *values[1:],
                        api_name="/code_complete")
    updates = list(job)
    editor, stats, badge, _seed = job.result()
    assert len(updates) >= 2 and editor.startswith("def add(a, b):\n")
    assert re.search(r'<span class="parse-badge (ok|bad)">[✓✗] (Parses|Does not parse)', badge)
    assert not re.search("[\U0001F000-\U0001FFFF\u2705\u26a0]", badge)  # no emoji: nothing needs an emoji font
    assert "tokens" in stats
