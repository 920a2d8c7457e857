"""The generation service behind the Text and Code tabs, on tiny models built here."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aigc_demo.models.gpt import GPTModelConfig, build_gpt  # noqa: E402
from aigc_demo.models.tokenizers import build_char_tokenizer  # noqa: E402
from aigc_demo.errors import UserError  # noqa: E402
from aigc_demo.generation.results import GenerationUpdate  # noqa: E402
from aigc_demo.generation.settings import GenerationSettings  # noqa: E402
from aigc_demo.generation.stopping import function_end  # noqa: E402
from aigc_demo.generation.stream import generate_with, stream_with  # noqa: E402
from aigc_demo.services import textgen  # noqa: E402

CODE = "def f(x):\n    return x\n\n" * 40
CTX = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, one_thread):
    """A 2-layer char model trained for a few seconds on repeated code, saved in HF layout."""
    torch.manual_seed(0)
    tok = build_char_tokenizer(CODE + "abcdefghijklmnopqrstuvwxyz .,:\n")
    model = build_gpt(GPTModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=CTX, dropout=0.0,
                                     vocab_size=len(tok)), tok.get_vocab()["\n"], None)
    data = torch.tensor(tok(CODE)["input_ids"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(300):
        starts = torch.randint(len(data) - CTX - 1, (16, 1))
        chunk = data[starts + torch.arange(CTX + 1)]
        loss = model(input_ids=chunk[:, :-1], labels=chunk[:, :-1]).loss  # HF shifts labels itself
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    folder = tmp_path_factory.mktemp("tiny-gpt")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok, str(folder)


def test_greedy_learned_the_pattern_and_stops_at_function_end(tiny):
    model, tok, _ = tiny
    out = generate_with(model, tok, "def f(x):\n", GenerationSettings(max_new_tokens=60, temperature=0))
    assert out.text.startswith("    return x\n")
    stopped = generate_with(model, tok, "def f(x):\n",
                            GenerationSettings(max_new_tokens=60, temperature=0, stop_at_function_end=True))
    assert stopped.text == "    return x\n" and stopped.stop_reason == "function_end"
    assert textgen.code_parses("def f(x):\n" + stopped.text) == (True, "Parses as Python")


def test_determinism_by_seed_and_max_tokens(tiny):
    model, tok, _ = tiny
    settings = GenerationSettings(max_new_tokens=40, temperature=1.5, top_k=20, top_p=0.95, seed=7)
    a, b = generate_with(model, tok, "def", settings), generate_with(model, tok, "def", settings)
    assert a.text == b.text and a.seed == 7
    assert a.new_tokens == 40 and a.stop_reason == "max_new_tokens"
    others = {generate_with(model, tok, "def", GenerationSettings(max_new_tokens=40, temperature=1.5, seed=s)).text
              for s in range(4)}
    assert len(others) > 1
    random_seed = generate_with(model, tok, "def", GenerationSettings(max_new_tokens=5, seed=None))
    assert isinstance(random_seed.seed, int)  # reported so the user can reuse it


def test_stop_sequences_trim_the_text(tiny):
    model, tok, _ = tiny
    out = generate_with(model, tok, "def f(x):\n", GenerationSettings(max_new_tokens=60, temperature=0,
                                                                      stop_sequences=("return",)))
    assert out.text == "    " and out.stop_reason == "stop_sequence"


def test_streaming_yields_incremental_updates(tiny):
    model, tok, _ = tiny
    updates = list(stream_with(model, tok, "def", GenerationSettings(max_new_tokens=30, seed=1),
                               update_interval_s=0))
    assert len(updates) >= 10
    lengths = [len(u.text) for u in updates]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    assert all(not u.done for u in updates[:-1]) and updates[-1].done
    last = updates[-1]
    assert last.new_tokens == 30 and last.tokens_per_s > 0 and last.time_to_first_token_s is not None


def test_updates_are_throttled_but_complete(tiny):
    model, tok, _ = tiny
    settings = GenerationSettings(max_new_tokens=200, temperature=0)
    updates = list(stream_with(model, tok, "def", settings, update_interval_s=0.05))
    elapsed = updates[-1].elapsed_s
    assert len(updates) <= elapsed / 0.05 + 3  # at most one update per interval (plus the last)
    assert updates[-1].new_tokens == 200
    assert updates[-1].text == generate_with(model, tok, "def", settings).text  # nothing lost


def test_generation_continues_past_the_context_window(tiny):
    model, tok, _ = tiny
    out = generate_with(model, tok, "def f(x):\n", GenerationSettings(max_new_tokens=3 * CTX, temperature=0))
    assert out.new_tokens == 3 * CTX and len(out.text) == 3 * CTX


def test_stop_event_ends_only_its_own_stream(tiny):
    model, tok, _ = tiny
    settings = GenerationSettings(max_new_tokens=200, temperature=1.0, seed=3)
    solo = generate_with(model, tok, "def", settings).text
    stop_a = threading.Event()
    results: dict[str, object] = {}

    def run_a():
        for i, update in enumerate(stream_with(model, tok, "def", GenerationSettings(max_new_tokens=200, seed=5),
                                               stop_a, update_interval_s=0)):
            if i == 3:
                stop_a.set()
        results["a"] = update

    def run_b():
        results["b"] = generate_with(model, tok, "def", settings)

    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["a"].stop_reason == "stopped" and results["a"].new_tokens < 20
    assert results["b"].text == solo and results["b"].new_tokens == 200  # unaffected, same seed, same text


def test_bad_inputs_have_clear_messages(tiny):
    model, tok, folder = tiny
    with pytest.raises(ValueError, match="Temperature cannot be negative"):
        generate_with(model, tok, "x", GenerationSettings(temperature=-0.5))
    with pytest.raises(ValueError, match="Top-p"):
        generate_with(model, tok, "x", GenerationSettings(top_p=0))
    clamped = generate_with(model, tok, "def", GenerationSettings(max_new_tokens=10**6, temperature=0))
    assert clamped.new_tokens == textgen.MAX_NEW_TOKENS_LIMIT
    assert any("clamped" in n for n in clamped.notices)
    empty = generate_with(model, tok, "", GenerationSettings(max_new_tokens=5))
    assert empty.new_tokens == 5 and "Empty prompt" in empty.notices[0]
    long = generate_with(model, tok, "def f(x):\n" * 10_000, GenerationSettings(max_new_tokens=8))
    assert long.prompt_tokens < CTX and any("cut from the left" in n for n in long.notices)
    with pytest.raises(ValueError, match="this server takes at most 200,000"):  # a megabyte is refused
        textgen.generate_text(folder, "def f(x):\n" * 100_000, GenerationSettings(max_new_tokens=8), device="cpu")
    unseen = generate_with(model, tok, "déf ✓", GenerationSettings(max_new_tokens=3))
    assert any("never saw" in n and "'?'" in n for n in unseen.notices)


def test_service_loads_saved_folder_and_looks_inside(tiny):
    _, _, folder = tiny
    out = textgen.generate_text(folder, "def f(x):\n", GenerationSettings(max_new_tokens=12, temperature=0),
                                device="cpu")
    assert out.text.startswith("    return")
    view = textgen.look_inside(folder, "def f(x):\n    ret", position=-1, layer=1, head=1, device="cpu")
    n = len("def f(x):\n    ret")
    assert view.attention.shape == (n, n) and len(view.top) == 10
    assert view.top[0][0] == "u"  # 'ret' -> 'u'
    total = sum(p for _, p in view.top)
    assert 0 < total <= 1 + 1e-5 and view.top == sorted(view.top, key=lambda t: -t[1])
    assert np.allclose(view.attention.sum(-1), 1, atol=1e-4)
    assert np.allclose(np.triu(view.attention, 1), 0)  # causal: no attention to the future
    with pytest.raises(ValueError, match="Layer must be between 0 and 1"):
        textgen.look_inside(folder, "def", layer=5, device="cpu")
    with pytest.raises(ValueError, match="no text"):
        textgen.look_inside(folder, "", device="cpu")


def test_function_end_and_code_parses():
    assert function_end("def f(x):\n", "    return x\n\nprint(1)\n") == len("    return x\n\n")
    assert function_end("", "def f():\n    pass\n@dec\ndef g(): pass") == len("def f():\n    pass\n")
    assert function_end("def f(a,\n", "      b):\n    return a\n") is None  # still inside
    assert function_end("x = 1\n", "y = 2\n") is None  # no function yet
    ok, message = textgen.code_parses("def f(:\n")
    assert not ok and "line 1" in message
    assert textgen.code_parses("import os; os.remove('/nonexistent')")[0]  # parsed, never run


def test_attention_axes_are_labelled_with_tokens():
    """Look inside: axis labels are the tokens (whitespace visible), a window ending at the position."""
    from aigc_demo.ui.generation import heat_window, token_label

    assert token_label(" the") == "·the" and token_label("\n") == "\u21b5" and token_label("") == "\u2205"
    assert heat_window(5, 100) == (0, 6)
    assert heat_window(99, 100) == (60, 100)  # the 40 tokens up to the chosen one


CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.fixture(scope="module")
def tiny_chat(tiny, tmp_path_factory):
    """The same tiny model with a chat template: an 'instruct' model, by id."""
    from transformers import AutoTokenizer

    _, _, folder = tiny
    chat_folder = tmp_path_factory.mktemp("tiny-chat")
    shutil.copytree(folder, chat_folder, dirs_exist_ok=True)
    tok = AutoTokenizer.from_pretrained(chat_folder)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(chat_folder)
    return str(chat_folder)


def test_chat_and_code_by_model_id(tiny, tiny_chat, monkeypatch):
    """A tab hands the service a model id; the service renders chats with the model's template."""
    model, tok, folder = tiny
    settings = GenerationSettings(max_new_tokens=10, temperature=0)
    history = [{"role": "user", "content": "def f(x):"}]
    with pytest.raises(textgen.NoChatTemplate):
        list(textgen.stream_chat(folder, history, settings, device="cpu"))
    code = list(textgen.stream_code(folder, "def f(x):\n", settings, instruction="unused", device="cpu"))[-1]
    assert code.text == generate_with(model, tok, "def f(x):\n", settings).text  # a base coder continues
    reply = list(textgen.stream_chat(tiny_chat, history, settings, system="Be brief.", device="cpu"))[-1]
    rendered = "<system>Be brief.\n<user>def f(x):\n<assistant>"
    assert reply.done and reply.text == generate_with(model, tok, rendered, settings).text
    with pytest.raises(UserError, match="Type a message first"):
        list(textgen.stream_chat(tiny_chat, [{"role": "assistant", "content": "hi"}], settings, device="cpu"))
    seen: list[str] = []

    def fenced(model, tokenizer, prompt, settings, stop, interval):
        seen.append(prompt)
        yield GenerationUpdate("```python\n    return x\n```", 3, 1.0, 0.1, 1.0, 1, 5, done=True)

    monkeypatch.setattr(textgen, "_stream_local", fenced)
    out = list(textgen.stream_code(tiny_chat, "def f(x):\n", settings, instruction="Go on: def f(x):",
                                   device="cpu"))
    assert seen == ["<user>Go on: def f(x):\n<assistant>"]  # an instruct coder gets the request as a chat
    assert out[-1].text == "    return x\n"  # its reply is appended without the Markdown fences
