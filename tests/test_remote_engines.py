"""Remote OpenAI-compatible engines, against a real one: `transformers serve` in its own process.

One module-scoped server (tiny GPTs from tests/factories.py and the shipped Shakespeare GPT) and
one app pointed at it, with an API key. The tests run in file order, because the server's life is
the story: not started yet (a clear error, an "unreachable" card), started (models listed, text
streams through the app's API and the page, Stop frees the server), stalled (read timeout),
killed mid-stream (a clear error within seconds), and started again (used again).
Two server starts in all, to keep the module's runtime modest on a 2-core CI machine.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from gradio_client.exceptions import AppError

from tests.conftest import free_port, launched
from tests.engine_server import EngineServer

SHIPPED_GPT = Path(__file__).resolve().parent.parent / "weights" / "gpt-shakespeare"
SECRET = "sk-test-4f9c1d2e-never-shown"
READ_TIMEOUT_S = 3.0
SAMPLING = dict(max_new_tokens=30, temperature=0.0, top_k=0, top_p=1.0, repetition_penalty=1.0, seed=3,
                randomize=False)
SEEN: list[str] = []  # every answer and message the app gave in this module: checked for the key


@pytest.fixture(scope="module")
def engine(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineServer]:
    """Not started: the first test sees no server at all."""
    log = tmp_path_factory.mktemp("engine") / "serve.log"
    server = EngineServer(free_port(), [weights_dir / "tiny-gpt", weights_dir / "tiny-chat", SHIPPED_GPT], log)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote_app(engine: EngineServer, weights_dir: Path) -> Iterator[str]:
    from aigc_demo import engines
    from aigc_demo.settings import ServeSettings

    settings = ServeSettings(host="127.0.0.1", port=free_port(), device="cpu", weights_dir=str(weights_dir),
                             llm_servers=(engine.base_url,), llm_api_key=SECRET,
                             llm_read_timeout_s=READ_TIMEOUT_S)
    with launched(settings) as url:
        yield url
    engines.configure(ServeSettings())  # later modules see no remote servers


@pytest.fixture(scope="module")
def rclient(remote_app: str) -> Any:
    from gradio_client import Client

    return Client(remote_app, verbose=False)


def ref(engine: EngineServer, model: Path | str) -> str:
    return f"remote:127.0.0.1:{engine.port}/{model}"


def remote_models(rclient: Any) -> list[dict[str, Any]]:
    models = rclient.predict("all", "remote", api_name="/models")
    SEEN.append(str(models))
    return models


def generate(rclient: Any, model: str, prompt: str, **overrides: Any) -> Any:
    values = {**SAMPLING, **overrides}
    return rclient.submit(model, prompt, *values.values(), api_name="/text_generate")


def expect_error(job: Any, pattern: str, within_s: float) -> str:
    started = time.perf_counter()
    with pytest.raises(AppError) as info:
        job.result(timeout=60)
    elapsed = time.perf_counter() - started
    message = str(info.value)
    SEEN.append(message)
    assert re.search(pattern, message), message
    assert elapsed < within_s, f"the error took {elapsed:.1f} s: {message}"
    return message


# ---- settings (no server needed) ----------------------------------------------------------------

def test_settings_are_validated_and_the_key_is_not_in_the_repr() -> None:
    from aigc_demo.settings import ServeSettings, parse_llm_servers, parse_serve_args

    assert parse_llm_servers(" http://a:8000/v1/ ,https://b.example/llm/v1") == (
        "http://a:8000/v1", "https://b.example/llm/v1")
    for bad, says in [("ftp://a/v1", "http:// or https://"), ("http://a:8000", "must end with /v1"),
                      ("http://a/v1,http://a/v1", "listed twice"), ("http://u:p@a/v1", "no user:password")]:
        with pytest.raises(ValueError, match=re.escape(says)):
            parse_llm_servers(bad)
    with pytest.raises(SystemExit, match="must end with /v1"):
        parse_serve_args(["--llm-servers", "http://gpu:8000"])
    settings = ServeSettings(llm_servers=("http://a:1/v1",), llm_api_key=SECRET)
    assert SECRET not in repr(settings) and "http://a:1/v1" in repr(settings)


def test_remote_refs_are_parsed_strictly() -> None:
    from aigc_demo.engines.registry import guess_chat, guess_task, make_ref, split_ref

    assert split_ref(make_ref("gpu:8000", "org/model-7b")) == ("gpu:8000", "org/model-7b")
    for bad in ("remote:gpu:8000", "remote:/model", "gpu:8000/model", ""):
        with pytest.raises(ValueError, match="not a remote model reference"):
            split_ref(bad)
    assert guess_chat("Qwen/Qwen2.5-7B-Instruct") and not guess_chat("openai-community/gpt2")
    assert guess_task("bigcode/starcoder2-7b") == guess_task("Qwen/Qwen2.5-Coder-7B") == "code-generation"
    assert guess_task("bigcode-fans/gpt2") == guess_task("/srv/models/gpt-shakespeare") == "text-generation"


def test_a_server_that_is_not_openai_compatible_is_reported(remote_app: str) -> None:
    """The app's own address answers HTTP, but not the OpenAI API: its listing error says so."""
    from aigc_demo.engines.registry import EngineConfig, Registry

    other = Registry()
    other.configure(EngineConfig(servers=(remote_app.rstrip("/") + "/v1",), api_key=SECRET))
    [card] = other.models()
    assert card.reachable is False and "answered HTTP 404" in card.error, card.error
    assert SECRET not in card.error


# ---- no server yet ------------------------------------------------------------------------------

def test_server_down_before_a_request_is_a_clear_card_and_message(rclient: Any, engine: EngineServer) -> None:
    assert not engine.running()
    cards = remote_models(rclient)
    assert len(cards) == 1 and cards[0]["source"] == "remote" and cards[0]["reachable"] is False
    assert f"127.0.0.1:{engine.port} is unreachable" in cards[0]["error"]
    assert "Connection refused" in cards[0]["error"] or "cannot be reached" in cards[0]["error"]
    expect_error(generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:"), "cannot be reached|not one of", 10)


# ---- the server starts --------------------------------------------------------------------------

def test_a_server_that_comes_up_is_picked_up(rclient: Any, engine: EngineServer, weights_dir: Path) -> None:
    engine.start()
    deadline = time.monotonic() + 15  # unreachable servers are re-asked every few seconds
    cards: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        cards = remote_models(rclient)
        if any(c["reachable"] for c in cards):
            break
        time.sleep(1)
    by_id = {c["id"]: c for c in cards}
    for model in (weights_dir / "tiny-gpt", weights_dir / "tiny-chat", SHIPPED_GPT):
        card = by_id[ref(engine, model)]
        assert card["source"] == "remote" and card["reachable"] is True and card["error"] is None
        assert card["server"] == f"127.0.0.1:{engine.port}" and card["family"] == "causal-lm"
        assert f"Served by 127.0.0.1:{engine.port} (reachable)" in card["description"]
    assert "chat completions" in by_id[ref(engine, weights_dir / "tiny-chat")]["description"]


def test_remote_models_are_in_the_text_and_code_pickers(remote_app: str, engine: EngineServer) -> None:
    from aigc_demo.services.gallery import models_for_tab

    for tab in ("text", "code"):
        refs = [value for _label, value in models_for_tab(os.devnull, tab)]
        assert ref(engine, SHIPPED_GPT) in refs


def test_generation_streams_through_the_api(rclient: Any, engine: EngineServer) -> None:
    job = generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n", max_new_tokens=40, temperature=0.8, top_k=20,
                   seed=7)
    updates = [update[0] for update in job]
    final = job.result()
    SEEN.append(str(final))
    # Streamed: partial text arrives before the whole, and only grows. (How many updates a 40-token answer
    # makes depends on how the server's chunks bunch up on a loaded machine: the page paces them.)
    assert len(updates) >= 2 and 0 < len(updates[0]) < len(final[0])
    assert all(b.startswith(a) for a, b in zip(updates, updates[1:] + [final[0]]))
    assert len(final[0]) > 20 and final[2] == "ROMEO:\n" + final[0]
    assert re.search(r"40 tokens · [\d.]+ tokens/s · seed 7 · first token after [\d.]+ s", final[1]), final[1]
    again = generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n", max_new_tokens=40, temperature=0.8,
                     top_k=20, seed=7).result()
    other = generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n", max_new_tokens=40, temperature=0.8,
                     top_k=20, seed=8).result()
    assert again[0] == final[0] and other[0] != final[0]  # the seed reaches the server, and it samples


def test_chat_models_use_chat_completions(rclient: Any, engine: EngineServer, weights_dir: Path) -> None:
    values = list({**SAMPLING, "max_new_tokens": 16}.values())  # the tiny GPT reads 64 positions
    final = rclient.submit(ref(engine, weights_dir / "tiny-chat"), "hi", [], "be brief", *values,
                           api_name="/text_chat").result()
    SEEN.append(str(final))
    box, history, stats, _seed = final
    assert box == "" and [m["role"] for m in history] == ["user", "assistant"] and "tokens/s" in stats
    log = engine.log_tail(20_000)  # transformers serve 5.25 logs the route, older ones the model
    assert "POST /v1/chat/completions" in log or "[Request received] Model: " + str(weights_dir / "tiny-chat") in log
    assert "POST /v1/chat/completions" in engine.log_tail(20_000)


def test_code_completion_through_a_remote_model(rclient: Any, engine: EngineServer, weights_dir: Path) -> None:
    values = list(SAMPLING.values())
    editor, stats, badge, _seed = rclient.submit(ref(engine, weights_dir / "tiny-gpt"), "def add(a, b):\n", True,
                                                 30, *values[1:], api_name="/code_complete").result()
    SEEN.append(str([editor, stats, badge]))
    assert editor.startswith("def add(a, b):\n") and len(editor) > len("def add(a, b):\n")
    assert "tokens/s" in stats and ("✓" in badge or "✗" in badge)  # the ast.parse badge


def test_look_inside_says_clearly_when_the_server_has_no_logprobs(rclient: Any, engine: EngineServer) -> None:
    with pytest.raises(AppError, match="does not return log-probabilities") as info:
        rclient.predict(ref(engine, SHIPPED_GPT), "ROMEO:", -1, 0, 0, api_name="/text_look_inside")
    SEEN.append(str(info.value))


def test_an_unlisted_remote_id_is_refused(rclient: Any, engine: EngineServer) -> None:
    expect_error(generate(rclient, ref(engine, "/etc/passwd"), "x"), "does not serve", 15)
    expect_error(generate(rclient, "remote:evil.example:80/model", "x"), "not one this app offers you", 5)


def test_stop_ends_the_upstream_generation(rclient: Any, engine: EngineServer) -> None:
    """After Stop the server's generation thread (one per model) is free at once: a new request
    to the same model starts long before the stopped one would have finished."""
    import openai

    tokens = 240  # the Shakespeare GPT reads 256 positions
    job = generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n", max_new_tokens=tokens, temperature=0.8)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(job.outputs()) < 3:
        time.sleep(0.05)
    rclient.predict(api_name="/text_stop")
    final = job.result(timeout=30)
    SEEN.append(str(final))
    assert "stopped by you" in final[1]
    done = int(final[1].split(" tokens")[0])
    rate = float(re.search(r"([\d.]+) tokens/s", final[1]).group(1))
    assert done < tokens
    remaining_s = (tokens - done) / max(rate, 1e-6)
    direct = openai.OpenAI(base_url=engine.base_url, api_key="x", max_retries=0)
    started = time.perf_counter()
    direct.completions.create(model=str(SHIPPED_GPT), prompt="ROMEO:\n", max_tokens=2)
    waited = time.perf_counter() - started
    assert waited < max(remaining_s / 2, 0.5), (
        f"a new request waited {waited:.1f} s; the stopped one had {remaining_s:.1f} s left: "
        "the server kept generating after Stop")
    card = next(c for c in remote_models(rclient) if c["id"] == ref(engine, SHIPPED_GPT))
    assert card["reachable"] is True  # closing the stream on Stop is not a server failure


# ---- the browser ----------------------------------------------------------------------------------

@pytest.fixture
def rpage(browser: Any, remote_app: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(remote_app)
    page.get_by_role("tab", name="Gallery").wait_for()
    yield page
    context.close()


@pytest.mark.browser
def test_browser_gallery_and_text_tab_with_a_remote_model(rpage: Any, engine: EngineServer) -> None:
    from playwright.sync_api import expect

    page = rpage
    page.locator("#gallery-source").get_by_text("inference server").click()
    cards = page.locator("#gallery-cards")
    expect(cards).to_contain_text(f"127.0.0.1:{engine.port}")
    expect(cards).to_contain_text("reachable")
    expect(cards).to_contain_text("gpt-shakespeare")
    page.get_by_role("tab", name="Text").click()
    label = f"{SHIPPED_GPT} (127.0.0.1:{engine.port})"
    page.locator("#text-model input").click()
    page.get_by_role("option", name=label, exact=True).click()
    page.locator("#text-prompt textarea").fill("ROMEO:\n")
    page.locator("#text-generate").click()
    expect(page.locator("#text-output textarea")).not_to_have_value("", timeout=30_000)
    expect(page.locator("#text-stats")).to_contain_text(re.compile(r"\d+ tokens · [\d.]+ tokens/s"),
                                                         timeout=30_000)
    expect(page.locator("#text-stats")).to_contain_text("first token after")
    SEEN.append(page.content())
    assert SECRET not in page.content()


# ---- the server stalls, dies, and comes back ------------------------------------------------------

def _wait_for_text(job: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not any(out[0] for out in job.outputs()):
        time.sleep(0.05)
    assert any(out[0] for out in job.outputs()), "no text arrived"


def test_a_stalled_server_times_out_clearly(rclient: Any, engine: EngineServer) -> None:
    job = generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n", max_new_tokens=240, temperature=0.8)
    _wait_for_text(job)
    os.killpg(engine.process.pid, signal.SIGSTOP)  # alive, connected, silent
    try:
        expect_error(job, rf"sent nothing for {READ_TIMEOUT_S:g} s", READ_TIMEOUT_S + 10)
    finally:
        os.killpg(engine.process.pid, signal.SIGCONT)


def test_server_killed_mid_stream_then_back(rclient: Any, engine: EngineServer, capfd: Any) -> None:
    job = generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n", max_new_tokens=240, temperature=0.8)
    _wait_for_text(job)
    engine.kill()
    expect_error(job, "cannot be reached or dropped the connection", 10)
    card = next(c for c in remote_models(rclient) if c["id"] == ref(engine, SHIPPED_GPT))
    assert card["reachable"] is False and "unreachable" in card["description"]
    # before a request: still a clear message at once, the app keeps serving
    expect_error(generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n"), "cannot be reached", 10)
    engine.start()
    final = generate(rclient, ref(engine, SHIPPED_GPT), "ROMEO:\n", max_new_tokens=20).result(timeout=60)
    SEEN.append(str(final))
    assert "20 tokens" in final[1] and final[0]
    card = next(c for c in remote_models(rclient) if c["id"] == ref(engine, SHIPPED_GPT))
    assert card["reachable"] is True
    out, err = capfd.readouterr()
    assert SECRET not in out + err


def test_the_api_key_never_appeared(engine: EngineServer) -> None:
    assert SEEN, "the tests above recorded what the app said"
    assert not [text for text in SEEN if SECRET in text]
