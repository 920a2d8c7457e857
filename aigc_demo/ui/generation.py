"""What the Text and Code tabs share: sampling controls, per-user Stop, stats and Look inside."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

import gradio as gr

from aigc_demo.services import textgen
from aigc_demo.ui import model_refs
from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

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
    from aigc_demo.ui.availability import picker_choices

    def choices() -> list[tuple[str, str]]:
        return picker_choices(ctx.settings.weights_dir, tab, ctx.user_dirs)

    initial = choices()
    picker = gr.Dropdown(initial, value=initial[0][1] if initial else None, label=t("gen.model"),
                         info=t("gen.model_info"), allow_custom_value=True, elem_id=f"{tab}-model")
    ctx.register_picker(picker, choices)
    return picker


def load_with_progress(model: str | None, progress: gr.Progress) -> tuple[Any, Any]:
    """Load (or download, with bytes and ETA shown in the page) a causal LM, then show 'loading'."""
    if not model:
        raise ValueError(t("gen.no_model"))
    ref = model_refs.resolve(model)
    progress(0, desc=t("gen.loading"))

    def downloading(report: Any) -> None:
        progress(report.fraction, desc=t("gen.downloading", detail=report.text()))

    return textgen.load_causal_lm(ref, on_progress=downloading)


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
    chosen = random.randint(0, 2**31 - 1) if randomize or seed is None else int(seed)
    return textgen.GenerationSettings(
        max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_k=int(top_k),
        top_p=float(top_p), repetition_penalty=float(repetition_penalty), seed=chosen, **extra)


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


def attention_image(view: textgen.InsideView) -> Any:
    """The chosen head's attention as a heat map (PIL), token labels when they fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    size = len(view.tokens)
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
    ax.imshow(view.attention, cmap="viridis", vmin=0)
    if size <= 40:
        labels = [repr(tok)[1:-1][:8] for tok in view.tokens]
        ax.set_xticks(range(size), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(size), labels, fontsize=7)
    ax.axhline(view.position, color="red", linewidth=0.8)
    ax.set_xlabel(t("inside.attends_to"))
    ax.set_ylabel(t("inside.token"))
    ax.set_title(t("inside.title", layer=view.layer, head=view.head))
    fig.tight_layout()
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    plt.close(fig)
    return image.convert("RGB")


def look_inside(model: str, text: str, position: float, layer: float, head: float) -> tuple[Any, ...]:
    """Top-10 next tokens (for gr.Label) and the attention heat map of one layer and head."""
    if not model:
        raise ValueError(t("gen.no_model"))
    view = textgen.look_inside(model_refs.resolve(model), text, int(position), int(layer), int(head))
    where = t("inside.where", position=view.position, token=view.tokens[view.position],
              layers=view.n_layers, heads=view.n_heads) + (f"\n\n> {localize(view.notice)}" if view.notice else "")
    label = {f"{tok!r}": prob for tok, prob in view.top}
    return label, attention_image(view), where


def build_look_inside(prefix: str, model: gr.Dropdown, text: gr.components.Component) -> None:
    with gr.Accordion(t("inside.heading"), open=False):
        gr.Markdown(t("inside.help"))
        with gr.Row():
            position = gr.Number(-1, precision=0, label=t("inside.position"), info=t("inside.position_info"))
            layer = gr.Number(0, precision=0, minimum=0, label=t("inside.layer"))
            head = gr.Number(0, precision=0, minimum=0, label=t("inside.head"))
            go = gr.Button(t("inside.button"), elem_id=f"{prefix}-inside-go")
        where = gr.Markdown(elem_id=f"{prefix}-inside-where")
        with gr.Row():
            top = gr.Label(num_top_classes=10, label=t("inside.top10"), elem_id=f"{prefix}-inside-top")
            heat = gr.Image(label=t("inside.attention"), type="pil", elem_id=f"{prefix}-inside-heat")
    from aigc_demo.ui.errors import user_errors

    go.click(user_errors(look_inside), [model, text, position, layer, head], [top, heat, where],
             api_name=f"{prefix}_look_inside")
