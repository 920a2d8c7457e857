"""The app as an MCP server, through the `mcp` SDK's own client over streamable HTTP.

The launched test app (conftest's `app_url`) serves MCP at /gradio_api/mcp/ by default: the
generators are tools with descriptions and bounded, typed parameters; admin and file helpers are
not; calls return images as images and text as text, with the page's checks and ownership rules.
`--no-mcp` (AIGC_MCP=off) serves no MCP at all.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aigc_demo.services.model_ids import REFUSED
from aigc_demo.settings import ServeSettings, Settings
from tests.conftest import free_port, launched
from tests.factories import make_tiny_char_gpt

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"digits_grid", "write_digits", "diffusion_digits", "generate_text", "chat", "complete_code",
         "generate_image", "compare_digits", "compare_text"}
NOT_TOOLS = {"unload_one", "unload_everything", "models_api", "system_api", "restore", "read_sketch",
             "add_drawing", "start_job", "download_model", "push_model", "save_model", "device_badge",
             "finetune_status", "add_model", "stop_stream", "refresh_view"}


async def _session(url: str, work: Any) -> Any:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def mcp(url: str, work: Any) -> Any:
    """Run `work(session)` against the app's MCP server and return what it returns."""
    # A thread of its own: an earlier test (Playwright's sync API) may leave an event loop running here.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(_session(url, work), timeout=240)).result()


def call(url: str, name: str, arguments: dict[str, Any]) -> Any:
    async def work(session: Any) -> Any:
        return await session.call_tool(name, arguments)
    return mcp(url, work)


def _texts(result: Any) -> list[str]:
    return [c.text for c in result.content if c.type == "text"]


def test_tools_are_the_generators_described_and_bounded(app_url: str) -> None:
    async def work(session: Any) -> Any:
        return (await session.list_tools()).tools
    tools = {tool.name: tool for tool in mcp(app_url, work)}
    assert set(tools) == TOOLS  # exactly the generators: no admin, file or page-helper endpoint
    assert not NOT_TOOLS & set(tools)
    for name, tool in tools.items():
        assert len(tool.description) > 40 and "Returns:" in tool.description, name
        properties = tool.inputSchema["properties"]
        assert properties, name
        for param, schema in properties.items():
            assert schema.get("type") in ("string", "integer", "number", "boolean"), (name, param, schema)
            assert len(schema.get("description", "")) > 5, (name, param)  # from the docstring's Args
            if schema["type"] in ("integer", "number"):
                assert schema["minimum"] < schema["maximum"], (name, param)
            if schema["type"] == "string":
                assert 0 < schema["maxLength"] <= 4000, (name, param)
    grid = tools["digits_grid"].inputSchema["properties"]
    assert grid["count"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 40,
                             "description": "how many digits the grid holds."}
    assert tools["generate_text"].inputSchema["required"] == ["prompt"]
    assert tools["generate_image"].inputSchema["properties"]["width"]["maximum"] == 1024


def test_digits_grid_returns_a_png_image(app_url: str) -> None:
    from PIL import Image

    result = call(app_url, "digits_grid", {"digits": "37", "count": 20, "seed": 5})
    assert not result.isError, _texts(result)
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    picture = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    assert picture.width > 28 * 9 and picture.height > 28  # 20 digits: two rows of ten 28-px cells
    again = call(app_url, "digits_grid", {"digits": "37", "count": 20, "seed": 5})
    assert [c.data for c in again.content if c.type == "image"] == [images[0].data]  # same seed, same grid


def test_a_second_app_in_the_process_keeps_its_own_models(app_url: str, tmp_path: Path) -> None:
    """Each app's tools and pickers use its own weights folder, whichever app was built last (CI once
    saw the session app answer with the model list of a second app a test had built before)."""
    empty = tmp_path / "weights"
    empty.mkdir()
    settings = ServeSettings(host="127.0.0.1", port=free_port(), device="cpu", weights_dir=str(empty))
    with launched(settings) as other_url:  # built last: the module global now points at it
        other = call(other_url, "digits_grid", {"digits": "1", "count": 1, "seed": 1})
        ours = call(app_url, "digits_grid", {"digits": "1", "count": 1, "seed": 1})
    assert other.isError and _texts(other) == ["This server has no model for the digits tab."]
    assert not ours.isError and [c.type for c in ours.content].count("image") == 1, _texts(ours)


def test_text_is_text_and_the_seed_repeats_it(app_url: str) -> None:
    arguments = {"prompt": "ab", "model": "tiny-char-gpt", "max_new_tokens": 12, "temperature": 1.0, "seed": 3}
    first, second = call(app_url, "generate_text", arguments), call(app_url, "generate_text", arguments)
    assert not first.isError, _texts(first)
    assert [c.type for c in first.content] == ["text"]
    text = first.content[0].text
    assert 0 < len(text) <= 12 * 8 and _texts(second) == [text]  # a char model: 12 tokens, 12 characters
    other = call(app_url, "generate_text", {**arguments, "seed": 4})
    assert _texts(other) != [text]


def test_every_other_tool_answers_with_its_kind_of_output(app_url: str) -> None:
    """One call of each remaining tool, on the fixture's tiny models."""
    calls = {"write_digits": {"text": "42", "seed": 1},
             "diffusion_digits": {"digits": "7", "count": 2, "steps": 2, "guidance": 1.0},
             "chat": {"message": "hi", "model": "tiny-chat", "max_new_tokens": 4, "seed": 1},
             "complete_code": {"code": "def f(x):\n", "model": "tiny-coder", "max_new_tokens": 4, "seed": 1},
             "generate_image": {"prompt": "a red square", "model": "tiny-sd", "steps": 1, "width": 32, "height": 32},
             "compare_digits": {"digits": "12", "per_digit": 1, "seed": 2},
             "compare_text": {"prompt": "ab", "model_a": "tiny-char-gpt", "model_b": "tiny-gpt", "max_new_tokens": 3}}

    async def work(session: Any) -> dict[str, Any]:
        return {name: await session.call_tool(name, arguments) for name, arguments in calls.items()}
    results = mcp(app_url, work)
    for name, result in results.items():
        assert not result.isError, (name, _texts(result))
    kinds = {name: [c.type for c in result.content] for name, result in results.items()}
    assert kinds["write_digits"] == ["image", "text"]  # the image, and its URL on the server
    assert kinds["diffusion_digits"] == kinds["generate_image"] == kinds["compare_digits"] == ["image", "text"]
    assert kinds["chat"] == kinds["complete_code"] == kinds["compare_text"] == ["text"]
    assert _texts(results["complete_code"])[0].startswith("def f(x):\n")  # the code, then its completion
    columns = json.loads(_texts(results["compare_text"])[0])
    assert [c["model"] for c in columns] == ["tiny-char-gpt", "tiny-gpt"] and all(c["text"] for c in columns)
    from PIL import Image

    def size(name: str) -> tuple[int, int]:
        image = next(c for c in results[name].content if c.type == "image")
        return Image.open(io.BytesIO(base64.b64decode(image.data))).size
    assert size("generate_image") == (32, 32)
    assert size("compare_digits")[0] > 3 * 28  # three families' grids side by side


def test_limits_and_ownership_are_the_pages(app_url: str, client: Any, weights_dir: Path) -> None:
    too_many = call(app_url, "digits_grid", {"count": 5000})  # the MCP server checks the schema's bounds
    assert too_many.isError and "greater than the maximum of 100" in " ".join(_texts(too_many)), _texts(too_many)
    long_prompt = call(app_url, "generate_text", {"prompt": "x" * 4001, "model": "tiny-char-gpt"})
    assert long_prompt.isError and "too long" in " ".join(_texts(long_prompt)), _texts(long_prompt)
    from gradio_client.exceptions import AppError

    # The tools' HTTP endpoints check the same bounds themselves (a client need not honour a schema).
    with pytest.raises(AppError, match="Count must be between 1 and 100"):
        client.predict("1", 5000, 0, 1.0, "", api_name="/mcp_digits_grid")
    with pytest.raises(AppError, match="this server takes at most 4,000"):
        client.predict("x" * 4001, "tiny-char-gpt", api_name="/mcp_generate_text")
    from aigc_demo.services.jobs import get_manager

    folder = Path(get_manager().config.user_models_dir) / "someone-else-session" / "their-gan"
    shutil.copytree(weights_dir / "tiny-gan", folder)
    try:  # another visitor's saved model is not the caller's, whoever names it
        theirs = call(app_url, "digits_grid", {"model": "yours/their-gan", "count": 4})
        assert theirs.isError and REFUSED in " ".join(_texts(theirs)), _texts(theirs)
        by_path = call(app_url, "write_digits", {"text": "12", "model": str(folder)})
        assert by_path.isError and REFUSED in " ".join(_texts(by_path)), _texts(by_path)
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def test_an_admin_endpoint_cannot_be_called_as_a_tool(app_url: str) -> None:
    result = call(app_url, "unload_everything", {"admin_token": "x"})
    assert result.isError and "Unknown tool" in " ".join(_texts(result))


def test_the_setting_reads_and_validates() -> None:
    assert Settings.from_env({}).serve.mcp is True  # on by default
    assert Settings.from_env({"AIGC_MCP": "off"}).serve.mcp is False
    with pytest.raises(ValueError, match="AIGC_MCP must be one of"):
        Settings.from_env({"AIGC_MCP": "maybe"})
    with pytest.raises(ValueError, match="mcp must be True or False"):
        ServeSettings(mcp="no")  # type: ignore[arg-type]
    from aigc_demo.ui.launch import launch_kwargs

    assert launch_kwargs(ServeSettings(mcp=False))["mcp_server"] is False
    assert launch_kwargs(ServeSettings())["mcp_server"] is True


def test_no_mcp_serves_no_mcp(tmp_path: Path) -> None:
    """`python app.py --no-mcp`: no MCP endpoint and no tool endpoints; the page and its API stay."""
    make_tiny_char_gpt(tmp_path / "weights" / "tiny-char-gpt")
    port = free_port()
    env = dict(os.environ, AIGC_RUNS_DIR=str(tmp_path / "runs"), AIGC_WEIGHTS_DIR=str(tmp_path / "weights"),
               HF_HUB_OFFLINE="1", AIGC_DEVICE="cpu", GRADIO_ANALYTICS_ENABLED="False", AIGC_MCP="on")
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--no-mcp"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(url + "gradio_api/info", timeout=10) as answer:
                    info = answer.read().decode()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "app.log").read_text()[-3000:]
                time.sleep(0.5)
        assert "/text_generate" in info and "/mcp_" not in info
        request = urllib.request.Request(url + "gradio_api/mcp/", method="POST", data=b"{}",
                                         headers={"Accept": "application/json, text/event-stream",
                                                  "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code in (404, 405)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()


def test_on_a_space_the_tools_are_named_as_gradio_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio puts the Space's name (with `_` for `-`) before each tool's name; `restrict` keeps that
    and still leaves every other endpoint out."""
    import gradio as gr
    from gradio.mcp import GradioMCPServer

    from aigc_demo.ui.mcp_tools import restrict

    def digits_grid(count: int = 1) -> str:
        """A stand-in tool.

        Args:
            count: how many.
        """
        return str(count)

    def page_helper(text: str) -> str:
        return text

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(page_helper, box, box, api_name="page_helper")
        gr.api(digits_grid, api_name="mcp_digits_grid")
    monkeypatch.setenv("SYSTEM", "spaces")  # what a Space sets
    monkeypatch.setenv("SPACE_ID", "someone/aigc-gallery")
    assert GradioMCPServer(demo).tool_to_endpoint == {"aigc_gallery_page_helper": "/page_helper",
                                                      "aigc_gallery_digits_grid": "/mcp_digits_grid"}  # Gradio's own
    restrict(demo, {"digits_grid": "/mcp_digits_grid", "gone": "/no_such_endpoint"})
    assert GradioMCPServer(demo).tool_to_endpoint == {"aigc_gallery_digits_grid": "/mcp_digits_grid"}
