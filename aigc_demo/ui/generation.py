"""What the Text and Code tabs share: sampling controls, per-user Stop, stats and Look inside."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from aigc_demo.errors import UserError
from aigc_demo.services import textgen, validate
from aigc_demo.settings import operator_settings
from aigc_demo.ui import model_refs
from aigc_demo.ui.availability import picker_choices
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

# How often a stream repaints the page. Each repaint costs the browser a layout; on a busy CPU a
# faster pace queued repaints faster than the page could draw them and froze it (Stop could not
# be clicked for a minute, issue #10). Four repaints a second read as smooth typing.
UI_UPDATE_S = 0.25
STATS_EVERY_S = 1.0  # the stats line (a Markdown render) changes at most this often while streaming

_stops: dict[str, threading.Event] = {}  # session -> the Stop flag of its running stream
_stops_lock = threading.Lock()


def new_stop(request: gr.Request | None) -> threading.Event:
    """A fresh Stop flag for this browser session (replacing any earlier one)."""
    event = threading.Event()
    with _stops_lock:
        _stops[_session(request)] = event
    return event


def build_model_picker(ctx: Any, tab: str) -> gr.Dropdown:
    """The causal-LM picker of the Text and Code tabs: our models, then hub ids, or any typed id;
    refreshed with the visitor's own saved models."""
    def choices() -> list[tuple[str, str]]:
        return picker_choices(ctx.settings.weights_dir, tab, ctx.user_dirs)

    initial = choices()
    picker = gr.Dropdown(initial, value=initial[0][1] if initial else None, label=t("gen.model"),
                         info=t("gen.model_info"), allow_custom_value=True, elem_id=f"{tab}-model")
    ctx.register_picker(picker, choices)
    return picker


def model_with_progress(model: str | None, progress: gr.Progress) -> tuple[str, Callable[[Any], None]]:
    """The model id to stream from, and the callback that shows its download (bytes and ETA) in the
    page; 'loading' is shown at once."""
    if not model:
        raise UserError(t("gen.no_model"))
    ref = model_refs.resolve(model)
    progress(0, desc=t("gen.loading"))

    def downloading(report: Any) -> None:
        progress(report.fraction, desc=t("gen.downloading", detail=report.text()))

    return ref, downloading


def stop_stream(request: gr.Request) -> None:
    """Stop only this session's stream."""
    with _stops_lock:
        event = _stops.get(_session(request))
    if event is not None:
        event.set()


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "api"


@dataclass
class SamplingControls:
    max_new_tokens: gr.Slider
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    repetition_penalty: gr.Slider
    seed: gr.Number
    randomize: gr.Checkbox

    def inputs(self) -> list[gr.components.Component]:
        return [self.max_new_tokens, self.temperature, self.top_k, self.top_p,
                self.repetition_penalty, self.seed, self.randomize]

    def by_name(self) -> dict[str, gr.components.Component]:
        """The controls by their share-link parameter names (ui/urlstate.py)."""
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "repetition_penalty": self.repetition_penalty, "seed": self.seed}


def build_sampling_controls(prefix: str, max_new_tokens: int = 200) -> SamplingControls:
    with gr.Accordion(t("gen.settings"), open=False):
        with gr.Row():
            tokens = gr.Slider(1, textgen.MAX_NEW_TOKENS_LIMIT, value=max_new_tokens, step=1,
                               label=t("gen.max_new_tokens"), elem_id=f"{prefix}-max-tokens")
            temperature = gr.Slider(0, 2, value=0.8, step=0.05, label=t("gen.temperature"),
                                    info=t("gen.temperature_info"), elem_id=f"{prefix}-temperature")
            top_k = gr.Slider(0, 200, value=40, step=1, label=t("gen.top_k"), info=t("gen.top_k_info"))
        with gr.Row():
            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label=t("gen.top_p"), info=t("gen.top_p_info"))
            penalty = gr.Slider(0.5, 2, value=1.0, step=0.05, label=t("gen.repetition_penalty"),
                                info=t("gen.repetition_penalty_info"))
            with gr.Column():
                seed = gr.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label=t("gen.seed"),
                                 elem_id=f"{prefix}-seed")
                randomize = gr.Checkbox(True, label=t("gen.random_seed"), info=t("gen.random_seed_info"))
    return SamplingControls(tokens, temperature, top_k, top_p, penalty, seed, randomize)


def make_settings(max_new_tokens: float, temperature: float, top_k: float, top_p: float,
                  repetition_penalty: float, seed: float | None, randomize: bool,
                  **extra: Any) -> textgen.GenerationSettings:
    """Widget values -> service settings (a fresh seed when 'random' is ticked)."""
    randomize = validate.flag(randomize, "Random seed", default=True)
    chosen = random.randint(0, 2**31 - 1) if randomize or seed is None else \
        validate.integer(seed, "The seed", low=0, high=2**32 - 1)
    return textgen.GenerationSettings(
        max_new_tokens=validate.integer(round(validate.number(max_new_tokens, "Max new tokens", default=200)),
                                        "Max new tokens"),
        temperature=validate.number(temperature, "Temperature", default=0.8),
        top_k=validate.integer(validate.number(top_k, "Top-k", low=0, high=1e6, default=0) // 1, "Top-k"),
        top_p=validate.number(top_p, "Top-p", default=1.0),
        repetition_penalty=validate.number(repetition_penalty, "Repetition penalty", default=1.0),
        seed=chosen, **extra)


@dataclass
class StatsPacer:
    """Says when a streaming update should also refresh the slow outputs (stats line, seed, ...):
    first, every second, last. In between, `hold` gives the values last sent, to send again.

    Why send them again rather than `gr.skip()`: Gradio streams each output as a diff against what it
    last sent, so an unchanged value goes out as an empty edit and the page repaints nothing; but a
    `gr.skip()` is a property update, for which Gradio builds a new component and its config on every
    update (measured: 4 ms per update with three skips, 0.9 ms with three unchanged values), in the
    event loop every visitor shares."""

    every_s: float = STATS_EVERY_S
    last: float = float("-inf")
    held: tuple[Any, ...] = ()

    def due(self, update: textgen.GenerationUpdate) -> bool:
        now = time.monotonic()
        if update.done or now - self.last >= self.every_s:
            self.last = now
            return True
        return False

    def hold(self, update: textgen.GenerationUpdate, fresh: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        """`fresh()` when the slow outputs are due (and at the first update), else the values last sent."""
        if self.due(update) or not self.held:
            self.held = fresh()
        return self.held


def stats_line(update: textgen.GenerationUpdate) -> str:
    """'42 tokens · 31.5 tokens/s · first token after 0.12 s · seed 7', plus notices."""
    parts = [t("gen.stats", tokens=update.new_tokens, rate=update.tokens_per_s, seed=update.seed)]
    if update.time_to_first_token_s is not None:
        parts.append(t("gen.ttft", seconds=update.time_to_first_token_s))
    if update.done:
        parts.append(t(f"gen.reason.{update.stop_reason or 'max_new_tokens'}"))
    text = " · ".join(parts)
    for notice in update.notices:
        text += f"\n\n> {localize(notice)}"
    return text


HEAT_TOKENS = 40  # tokens on each axis of the heat map: enough context, labels still readable
_SHOWN = {"\n": "↵", "\t": "→", " ": "·"}


def token_label(token: str, width: int = 8) -> str:
    """A token as an axis label: whitespace made visible (· space, ↵ newline), cut to `width`."""
    shown = "".join(_SHOWN.get(ch, ch) for ch in token) or "∅"
    return shown[:width]


def heat_window(position: int, size: int, span: int = HEAT_TOKENS) -> tuple[int, int]:
    """Which tokens the heat map shows: the `span` tokens up to and including `position`
    (a token attends only to the ones before it, so nothing after it is lost)."""
    end = position + 1
    return max(0, end - span), end


def attention_image(view: textgen.InsideView) -> Any:
    """The chosen head's attention as a heat map (PIL), both axes labelled with the tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    start, end = heat_window(view.position, len(view.tokens))
    labels = [token_label(tok) for tok in view.tokens[start:end]]
    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=100)
    ax.imshow(view.attention[start:end, start:end], cmap="viridis", vmin=0)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.axhline(view.position - start, color="red", linewidth=0.8)
    ax.set_xlabel(t("inside.attends_to"))
    ax.set_ylabel(t("inside.token"))
    title = t("inside.title", layer=view.layer, head=view.head)
    if start > 0:
        title += " · " + t("inside.window", first=start, last=end - 1)
    ax.set_title(title)
    fig.tight_layout()
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    plt.close(fig)
    return image.convert("RGB")


def token_spans(view: textgen.InsideView) -> list[tuple[str, str | None]]:
    """The text as clickable tokens for gr.HighlightedText; the chosen one is marked."""
    chosen = t("inside.chosen")
    return [(tok, chosen if i == view.position else None) for i, tok in enumerate(view.tokens)]


def look_inside(model: str, text: str, position: float, layer: float, head: float) -> tuple[Any, ...]:
    """Top-10 next tokens (for gr.Label), the attention heat map, where, the clickable tokens, the position."""
    if not model:
        raise UserError(t("gen.no_model"))
    if position is None:
        position = -1
    view = textgen.look_inside(model_refs.resolve(model), text, position, layer, head)  # the service checks each value
    label = {f"{tok!r}": prob for tok, prob in view.top}
    if view.attention is None:  # a remote engine: next tokens only
        return label, None, localize(view.notice), token_spans(view) if view.tokens else None, view.position
    where = t("inside.where", position=view.position, token=view.tokens[view.position],
              layers=view.n_layers, heads=view.n_heads) + (f"\n\n> {localize(view.notice)}" if view.notice else "")
    return label, attention_image(view), where, token_spans(view), view.position


def pick_token(evt: gr.SelectData) -> int:
    """A click on a token: its index becomes the position."""
    index = evt.index
    return int(index[0] if isinstance(index, (list, tuple)) else index)


MAX_LAYER_OR_HEAD = 1023  # more than any model has (the largest open ones have ~130 layers and heads)


def build_look_inside(prefix: str, model: gr.Dropdown, text: gr.components.Component) -> None:
    with gr.Accordion(t("inside.heading"), open=False):
        gr.Markdown(t("inside.help"))
        with gr.Row():
            most = operator_settings().max_text_chars  # a text of n characters has at most n tokens
            position = gr.Number(-1, precision=0, minimum=-most, maximum=most - 1, label=t("inside.position"),
                                 info=t("inside.position_info"), elem_id=f"{prefix}-inside-position")
            # The model's own layer and head counts are checked when it is loaded (generation/inside.py).
            layer = gr.Number(0, precision=0, minimum=0, maximum=MAX_LAYER_OR_HEAD, label=t("inside.layer"))
            head = gr.Number(0, precision=0, minimum=0, maximum=MAX_LAYER_OR_HEAD, label=t("inside.head"))
            go = gr.Button(t("inside.button"), elem_id=f"{prefix}-inside-go")
        tokens = gr.HighlightedText(label=t("inside.tokens"), show_legend=False, combine_adjacent=False,
                                    show_inline_category=False, color_map={t("inside.chosen"): "red"},
                                    elem_id=f"{prefix}-inside-tokens", elem_classes=["inside-tokens"])
        where = gr.Markdown(elem_id=f"{prefix}-inside-where")
        with gr.Row():
            top = gr.Label(num_top_classes=10, label=t("inside.top10"), elem_id=f"{prefix}-inside-top")
            heat = gr.Image(label=t("inside.attention"), type="pil", elem_id=f"{prefix}-inside-heat",
                            show_label=False)
    inputs = [model, text, position, layer, head]
    outputs = [top, heat, where, tokens, position]
    go.click(user_errors(look_inside), inputs, outputs, api_name=f"{prefix}_look_inside")
    tokens.select(pick_token, None, position, queue=False, api_visibility="private").then(
        user_errors(look_inside), inputs, outputs, api_visibility="private")
