"""The app as an MCP server: each visitor-facing generator is also a tool for agents.

Gradio 6 serves a Blocks app over MCP (`launch(mcp_server=True)`, streamable HTTP at
`/gradio_api/mcp/`) and makes every public named endpoint a tool, named after its Python
function and described by its docstring. The page's own endpoints are shaped for the page
(batched lists, streamed tuples of widget updates, parameters named by what a slider holds), and
some are admin or file helpers, so the tools here are separate `gr.api` endpoints: one plain
function per generator with typed parameters, a docstring whose `Args:` describe each one, and
`Annotated[..., Range(...)]` bounds that go into the tool's JSON schema. Each calls the same
handler or service as the page, with the same checks, model-id ownership (the caller's own
session: another visitor's `yours/<name>` is refused), concurrency groups and limits.

Which endpoints are tools: Gradio 6.31 offers only `api_visibility` to leave one out, which would
also hide it from the HTTP API page; so `restrict(demo)` gives Gradio's MCP server the list of
these tools, and nothing else is listed or callable over MCP.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
from dataclasses import dataclass
from typing import Annotated, Any, Callable, get_args, get_origin, get_type_hints

import gradio as gr
from PIL import Image
from gradio import utils as gradio_utils
from gradio.context import get_blocks_context

from aigc_demo.errors import UserError
from aigc_demo.services import compare_text as compare_text_svc
from aigc_demo.services import digits as digits_svc
from aigc_demo.services import textgen, validate
from aigc_demo.services.compare import MAX_PER_DIGIT
from aigc_demo.services.digits_diffusion import GUIDANCE_RANGE, STEPS_RANGE
from aigc_demo.services.imagegen import (MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_STEPS, ImageSettings,
                                         generate_images)
from aigc_demo.ui import code as code_tab
from aigc_demo.ui import compare as compare_tab
from aigc_demo.ui import digits as digits_tab
from aigc_demo.ui import digits_diffusion, model_refs
from aigc_demo.ui import text as text_tab
from aigc_demo.ui.availability import picker_choices
from aigc_demo.ui.compare_text import STREAMS as COMPARE_STREAMS
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.files import serve_bytes, serve_file
from aigc_demo.ui.generation import make_settings, new_stop
from aigc_demo.ui.image import SIZE_MAX, SIZE_MIN
from aigc_demo.ui.strings import t

API_PREFIX = "mcp_"  # the tools' HTTP endpoints are /mcp_<tool name>
MAX_SEED = 2**31 - 1  # what every seed box of the page takes
MAX_PROMPT = 4000  # characters of a text or code prompt (as share links take)


@dataclass(frozen=True)
class Range:
    """Bounds of a number parameter, written into the tool's JSON schema."""

    low: float
    high: float


@dataclass(frozen=True)
class MaxLength:
    """The longest string a parameter takes, written into the tool's JSON schema."""

    chars: int


def bounds_of(fn: Callable[..., Any]) -> dict[str, Range | MaxLength]:
    """Each `Annotated` parameter's bound (Range or MaxLength), by parameter name."""
    found: dict[str, Range | MaxLength] = {}
    for name, hint in get_type_hints(fn, include_extras=True).items():
        if get_origin(hint) is Annotated:
            found.update({name: mark for mark in get_args(hint)[1:] if isinstance(mark, (Range, MaxLength))})
    return found


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse, with a clear message, a value outside the bounds the tool's schema declares (a
    client need not honour the schema)."""
    signature = inspect.signature(fn)
    bounds = bounds_of(fn)
    whole = {name: get_type_hints(fn).get(name) is int for name in bounds}

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        for name, mark in bounds.items():
            value, label = call.arguments[name], name.replace("_", " ").capitalize()
            if isinstance(mark, MaxLength):
                call.arguments[name] = validate.text(value, label, max_chars=mark.chars)
            elif whole[name]:
                call.arguments[name] = validate.integer(value, label, low=int(mark.low), high=int(mark.high))
            else:
                call.arguments[name] = validate.number(value, label, low=mark.low, high=mark.high)
        return fn(*call.args, **call.kwargs)

    return wrapper


Seed = Annotated[int, Range(0, MAX_SEED)]
Tokens = Annotated[int, Range(1, textgen.MAX_NEW_TOKENS_LIMIT)]
Temperature = Annotated[float, Range(0, 2)]
TopK = Annotated[int, Range(0, 200)]
TopP = Annotated[float, Range(0.05, 1)]
Penalty = Annotated[float, Range(0.5, 2)]
Truncation = Annotated[float, Range(*digits_svc.TRUNCATION_RANGE)]
Prompt = Annotated[str, MaxLength(MAX_PROMPT)]
Digits = Annotated[str, MaxLength(40)]
ModelId = Annotated[str, MaxLength(200)]

_ctx: AppContext | None = None  # the app registered last: the fallback outside an event


def _context() -> AppContext:
    """The app whose MCP server is answering this call (another app in the process keeps its own)."""
    ctx = model_refs.app_context() or _ctx
    assert ctx is not None, "mcp_tools.register(ctx) builds the tools first"
    return ctx


def _no_progress(*_args: Any, **_kwargs: Any) -> None:
    """Tools report no progress bar (the page's handlers take a gr.Progress)."""


def _first(tab: str, families: tuple[str, ...] | None = None, chat: bool | None = None) -> str:
    """The first model the page lists to this caller for `tab` (what the page preselects)."""
    ctx = _context()
    for _, ref in picker_choices(ctx.settings.weights_dir, tab, ctx.user_dirs, families=families):
        if chat is None or textgen.is_chat_model(model_refs.resolve(ref)) == chat:
            return ref
    raise UserError(t("mcp.no_model", tab=tab))


def _image(path: str, name: str | None = None) -> dict[str, Any]:
    """A served file as Gradio's FileData, which the MCP server sends back as an image."""
    return {"path": path, "orig_name": name or path.rsplit("/", 1)[-1], "mime_type": "image/png",
            "meta": {"_type": "gradio.FileData"}}


def _last(updates: Any) -> tuple[Any, ...]:
    """The final update of a page handler's stream."""
    final = None
    for final in updates:
        pass
    if final is None:
        raise UserError(t("mcp.nothing"))
    return final


def _digit_model(model: str, family: str) -> str:
    return model or _first("digits", families=(family,))


# ---------------------------------------------------------------- the tools

@user_errors
@checked
def digits_grid(digits: Digits = "0123456789", count: Annotated[int, Range(1, digits_svc.MAX_GRID)] = 40,
                seed: Seed = 0, truncation: Truncation = 1.0, model: ModelId = "") -> dict:
    """Draw a grid of handwritten digits with the conditional GAN (28x28 MNIST-style digits, 10 per row).

    Args:
        digits: which digits to draw, as text of 0-9 (e.g. "0123456789" or "377"); the grid cycles through them; "random" for random digits.
        count: how many digits the grid holds.
        seed: random seed; the same seed, digits and count give the same grid.
        truncation: sampling spread: below 1 neater, more typical digits; above 1 more varied.
        model: a GAN model id the gallery lists (e.g. "dcgan-mnist"); empty for the first one.

    Returns:
        the grid as a PNG image.
    """
    path = digits_tab.grid_single(digits, count, seed, truncation, _digit_model(model, "gan"))
    return _image(path)


@user_errors
@checked
def write_digits(text: Annotated[str, MaxLength(digits_svc.MAX_TEXT)] = "2026", seed: Seed = 7,
                 truncation: Truncation = 0.8, model: ModelId = "") -> dict:
    """Write a number in handwriting: each character drawn by the GAN in one consistent style.

    Args:
        text: digits to write, with '.', '-', ',' and spaces allowed (e.g. "2026" or "3.14159").
        seed: the handwriting style; the same seed gives the same hand.
        truncation: neatness: below 1 neater, above 1 wilder strokes.
        model: a GAN model id the gallery lists; empty for the first one.

    Returns:
        the handwriting as a PNG image.
    """
    path, _ = digits_tab.write_digits(text, seed, truncation, _digit_model(model, "gan"))
    return _image(path)


@user_errors
@checked
def diffusion_digits(digits: Digits = "0123456789", count: Annotated[int, Range(1, digits_svc.MAX_GRID)] = 20,
                     seed: Seed = 0, steps: Annotated[int, Range(*STEPS_RANGE)] = 5,
                     guidance: Annotated[float, Range(*GUIDANCE_RANGE)] = 3.0, model: ModelId = "") -> dict:
    """Draw a grid of handwritten digits with the small diffusion model (a denoising UNet sampled in a few steps).

    Args:
        digits: which digits to draw, as text of 0-9 (e.g. "2026"); "random" for random digits.
        count: how many digits the grid holds.
        seed: random seed; the same seed and settings give the same grid.
        steps: sampler steps (model calls per image): more is slower and cleaner.
        guidance: classifier-free guidance: 1 for none, higher for digits that read more clearly.
        model: a diffusion model id the gallery lists (e.g. "diffusion-mnist"); empty for the first one.

    Returns:
        the grid as a PNG image.
    """
    path, _ = digits_diffusion.diffusion_single(digits, count, seed, steps, guidance, _digit_model(model, "diffusion"))
    return _image(path)


def _settings_args(max_new_tokens: int, temperature: float, top_k: int, top_p: float,
                   repetition_penalty: float, seed: int) -> tuple[Any, ...]:
    return max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, False  # False: keep the seed


@user_errors
@checked
def generate_text(prompt: Prompt, model: ModelId = "", max_new_tokens: Tokens = 200,
                  temperature: Temperature = 0.8, top_k: TopK = 40, top_p: TopP = 1.0,
                  repetition_penalty: Penalty = 1.0, seed: Seed = 0, request: gr.Request = None) -> str:
    """Continue a text prompt with a language model (our Shakespeare GPT, or a Hugging Face model the gallery lists).

    Args:
        prompt: the text to continue (e.g. "ROMEO:").
        model: a text model id the gallery lists (e.g. "gpt-shakespeare", "openai-community/gpt2"); empty for the first one.
        max_new_tokens: the most tokens to add.
        temperature: randomness of sampling: 0 always takes the likeliest token.
        top_k: sample only among the k likeliest tokens (0: no limit).
        top_p: sample only among the likeliest tokens that make up this probability.
        repetition_penalty: above 1 discourages repeating tokens.
        seed: random seed; the same seed and settings give the same text.

    Returns:
        the continuation (without the prompt).
    """
    final = _last(text_tab.complete(model or _first("text"), prompt, *_settings_args(
        max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed), request=request, progress=_no_progress))
    return final[0]


@user_errors
@checked
def chat(message: Prompt, system: Prompt = "", model: ModelId = "", max_new_tokens: Tokens = 200,
         temperature: Temperature = 0.8, top_k: TopK = 40, top_p: TopP = 1.0, repetition_penalty: Penalty = 1.0,
         seed: Seed = 0, request: gr.Request = None) -> str:
    """Ask an instruct (chat) model one question and get its reply; each call is a new conversation.

    Args:
        message: what the user says.
        system: the system prompt (instructions for the assistant); empty for none.
        model: a chat model id the gallery lists (e.g. "HuggingFaceTB/SmolLM2-360M-Instruct"); empty for the first one.
        max_new_tokens: the most tokens in the reply.
        temperature: randomness of sampling: 0 always takes the likeliest token.
        top_k: sample only among the k likeliest tokens (0: no limit).
        top_p: sample only among the likeliest tokens that make up this probability.
        repetition_penalty: above 1 discourages repeating tokens.
        seed: random seed; the same seed and settings give the same reply.

    Returns:
        the assistant's reply.
    """
    final = _last(text_tab.chat(model or _first("text", chat=True), message, [], system, *_settings_args(
        max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed), request=request, progress=_no_progress))
    return final[1][-1]["content"]


@user_errors
@checked
def complete_code(code: Prompt, model: ModelId = "", stop_at_function_end: bool = True,
                  max_new_tokens: Tokens = 200, temperature: Temperature = 0.8, top_k: TopK = 40,
                  top_p: TopP = 1.0, repetition_penalty: Penalty = 1.0, seed: Seed = 0,
                  request: gr.Request = None) -> str:
    """Complete Python code with a code model (our standard-library GPT or a Hugging Face coder); the code is never run, only parsed.

    Args:
        code: the start of the code (e.g. a def line and its docstring).
        model: a code model id the gallery lists (e.g. "gpt-python"); empty for the first one.
        stop_at_function_end: stop when the function being written ends.
        max_new_tokens: the most tokens to add.
        temperature: randomness of sampling: 0 always takes the likeliest token.
        top_k: sample only among the k likeliest tokens (0: no limit).
        top_p: sample only among the likeliest tokens that make up this probability.
        repetition_penalty: above 1 discourages repeating tokens.
        seed: random seed; the same seed and settings give the same code.

    Returns:
        the code with its completion.
    """
    final = _last(code_tab.complete_code(model or _first("code"), code, stop_at_function_end, *_settings_args(
        max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed), request=request, progress=_no_progress))
    return final[0]


@user_errors
@checked
def generate_image(prompt: Annotated[str, MaxLength(MAX_PROMPT_CHARS)], negative_prompt: Annotated[
                       str, MaxLength(MAX_PROMPT_CHARS)] = "", model: ModelId = "",
                   steps: Annotated[int, Range(1, MAX_STEPS)] = 4,
                   guidance: Annotated[float, Range(0, MAX_GUIDANCE)] = 0.0,
                   width: Annotated[int, Range(SIZE_MIN, SIZE_MAX)] = 512,
                   height: Annotated[int, Range(SIZE_MIN, SIZE_MAX)] = 512, seed: Seed = 0) -> dict:
    """Paint a picture from a text prompt with a text-to-image model the gallery lists (e.g. SD-Turbo); the PNG carries its settings.

    Args:
        prompt: what to paint.
        negative_prompt: what to keep out of the picture.
        model: a text-to-image model id the gallery lists (e.g. "stabilityai/sd-turbo"); empty for the first one.
        steps: denoising steps: turbo models need 1 to 4.
        guidance: classifier-free guidance: 0 for turbo models.
        width: width in pixels (a multiple of 8).
        height: height in pixels (a multiple of 8).
        seed: random seed; the same seed and settings give the same picture.

    Returns:
        the picture as a PNG image.
    """
    ref = validate.identifier(model, "Model", required=False) or _first("image", families=("diffusion",))
    settings = ImageSettings(prompt=validate.text(prompt, "Prompt", max_chars=MAX_PROMPT_CHARS * 4),
                             negative_prompt=validate.text(negative_prompt, "Negative prompt",
                                                           max_chars=MAX_PROMPT_CHARS * 4),
                             steps=steps, guidance=guidance, width=width, height=height, seed=seed, num_images=1)
    batch = generate_images(model_refs.resolve(ref), settings, record_as=ref)
    return _image(serve_file(batch.images[0].path))


@user_errors
@checked
def compare_digits(digits: Digits = "0123456789", per_digit: Annotated[int, Range(1, MAX_PER_DIGIT)] = 2,
                   seed: Seed = 0) -> dict:
    """Draw the same digits with the GAN, the diffusion model and the VAE decoder, timed, to compare the families.

    Args:
        digits: which digits, as text of 0-9 (e.g. "0123456789").
        per_digit: copies of each digit per family.
        seed: random seed shared by the three families.

    Returns:
        one PNG image: the GAN's grid, the diffusion model's and the VAE's, left to right (a family this server has no model of is left out).
    """
    ctx = _context()
    picks = {family: compare_tab.default_choice(family, compare_tab.family_choices(ctx, family))
             for family in ("gan", "diffusion", "vae", "classifier")}
    outputs = compare_tab.compare_digits(digits, per_digit, seed, picks["gan"], picks["diffusion"], picks["vae"],
                                         picks["classifier"])
    grids = [Image.open(path).convert("L") for path in outputs[0:6:2] if path is not None]
    if not grids:
        raise UserError(t("mcp.no_digit_models"))
    gap = 8  # px of white between the families' grids
    row = Image.new("L", (sum(g.width for g in grids) + gap * (len(grids) - 1), max(g.height for g in grids)), 255)
    left = 0
    for grid in grids:
        row.paste(grid, (left, 0))
        left += grid.width + gap
    buffer = io.BytesIO()
    row.save(buffer, format="PNG")
    return _image(serve_bytes(buffer.getvalue(), digits_svc.download_name("compare", digits, f"seed{seed}")))


@user_errors
@checked
def compare_text(prompt: Prompt, model_a: ModelId = "", model_b: ModelId = "", max_new_tokens: Tokens = 80,
                 temperature: Temperature = 0.8, seed: Seed = 0, request: gr.Request = None) -> str:
    """Continue one prompt with two text models side by side, with each one's speed.

    Args:
        prompt: the text both models continue.
        model_a: the first text model id the gallery lists; empty for the first one.
        model_b: the second; empty for the second listed.
        max_new_tokens: the most tokens each model adds.
        temperature: randomness of sampling: 0 always takes the likeliest token.
        seed: random seed shared by both models.

    Returns:
        each model's continuation and its tokens/s, as JSON.
    """
    ctx = _context()
    listed = [ref for _, ref in picker_choices(ctx.settings.weights_dir, "text", ctx.user_dirs)]
    picked = compare_text_svc.check_columns([model_a or (listed[0] if listed else ""),
                                             model_b or (listed[1] if len(listed) > 1 else "")])
    refs = [model_refs.resolve(ref) for ref in picked]
    settings = make_settings(max_new_tokens, temperature, 40, 1.0, 1.0, seed, False)
    states: list[Any] = []
    for states in compare_text_svc.stream_columns(refs, prompt, settings, new_stop(request)):
        pass
    return json.dumps([{"model": ref, "text": state.update.text if state.update else "",
                        "tokens_per_s": round(state.update.tokens_per_s, 2) if state.update else None,
                        "error": state.error} for ref, state in zip(picked, states)], ensure_ascii=False)


# (tool, the page's concurrency group it shares, its limit there)
TOOLS: list[tuple[Callable[..., Any], str | None, int]] = [
    (digits_grid, "mcp-digits", 1),
    (write_digits, "mcp-digits", 1),
    (diffusion_digits, "mcp-diffusion", 1),
    (generate_text, "textgen", textgen.CONCURRENT_STREAMS),
    (chat, "textgen", textgen.CONCURRENT_STREAMS),
    (complete_code, "textgen", textgen.CONCURRENT_STREAMS),
    (generate_image, "image-generate", 1),
    (compare_digits, "compare_digits", 1),
    (compare_text, "compare_text", COMPARE_STREAMS),
]


def schema_bounds(fn: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    """JSON-schema keywords for a tool's bounded parameters: minimum/maximum, maxLength."""
    return {name: {"minimum": mark.low, "maximum": mark.high} if isinstance(mark, Range) else {"maxLength": mark.chars}
            for name, mark in bounds_of(fn).items()}


def register(ctx: AppContext) -> dict[str, str]:
    """Add every tool as an API endpoint of the Blocks being built; {tool name: endpoint}."""
    global _ctx
    _ctx = ctx
    blocks = get_blocks_context()
    assert blocks is not None, "register() runs inside the app's gr.Blocks"
    tools = {}
    for fn, group, limit in TOOLS:
        name = fn.__name__
        gr.api(fn, api_name=API_PREFIX + name, concurrency_id=group, concurrency_limit=limit)
        block_fn = next(f for f in blocks.fns.values() if f.api_name == API_PREFIX + name)
        bounds = schema_bounds(fn)
        params = [param[0] for param in gradio_utils.get_function_params(fn)]  # as gr.api made its inputs
        for param, component in zip(params, block_fn.inputs, strict=True):
            component._api_info = {**component._api_info, **bounds.get(param, {})}
        tools[name] = "/" + API_PREFIX + name
    return tools


def restrict(demo: gr.Blocks, tools: dict[str, str]) -> gr.Blocks:
    """Make `tools` the only MCP tools of `demo` (listed, described and callable)."""
    demo.aigc_mcp_tools = dict(tools)  # type: ignore[attr-defined]
    _install_tool_filter()
    return demo


def _install_tool_filter() -> None:
    from gradio import mcp as gradio_mcp

    server = gradio_mcp.GradioMCPServer
    if getattr(server.get_tool_to_endpoint, "aigc_filter", False):
        return
    every_endpoint = server.get_tool_to_endpoint

    def get_tool_to_endpoint(self: Any) -> dict[str, str]:
        chosen = getattr(self.blocks, "aigc_mcp_tools", None)
        if chosen is None:  # another app in this process: Gradio's own choice
            return every_endpoint(self)
        named, tools = self.api_info["named_endpoints"], {}
        for name, endpoint in chosen.items():  # named as Gradio names tools (a Space's name first)
            if endpoint in named:
                tools[self.valid_and_unique_tool_name(self.tool_prefix + name, set(tools))] = endpoint
        return tools

    get_tool_to_endpoint.aigc_filter = True  # type: ignore[attr-defined]
    server.get_tool_to_endpoint = get_tool_to_endpoint  # type: ignore[method-assign]
