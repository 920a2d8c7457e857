"""The Compare tab: the generative families side by side on the same task.

Digits: the same digits and seed from the GAN, the diffusion model and the VAE, each column with
its measured time per image and the metrics its model card records. Text: one prompt streamed by
several text models at once (ui/compare_text.py), with an optional blind vote.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.catalog import Metric
from aigc_demo.data.png import encode_pngs
from aigc_demo.services import compare as svc
from aigc_demo.services import digits as digits_svc
from aigc_demo.services.gallery import models_for_tab
from aigc_demo.services.validate import identifier
from aigc_demo.ui import model_refs, share
from aigc_demo.ui.cards import esc, metric_badge
from aigc_demo.ui.compare_text import build_text_part
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.digits import next_seed
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.files import serve_bytes
from aigc_demo.ui.lead import build_help, build_lead
from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

CSS = """
#compare-digits-columns, #compare-text-columns { gap: 12px; }
.compare-col { border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 8px 10px;
               min-width: min(260px, 100%) !important; }
.compare-col img { image-rendering: pixelated; }
.compare-info p { margin: 4px 0; }
.compare-info .compare-time { font-weight: 600; }
.compare-info .compare-problem { color: var(--error-text-color); }
"""


def family_choices(ctx: AppContext, family: str) -> list[tuple[str, str]]:
    """A family's models for its column's picker: shipped ones and the visitor's own."""
    return models_for_tab(ctx.settings.weights_dir, "digits", ctx.user_dirs, families=(family,))


def _folder(ref: Any, family: str) -> str | None:
    """The folder of a picked id (only ids the app lists are accepted); None when none is picked."""
    ref = identifier(ref, t(f"compare.family.{family}"), required=False)
    return model_refs.resolve(ref) if ref else None


def info_html(result: svc.FamilyResult, fastest: svc.FamilyResult | None = None) -> str:
    """A column's figures: time per image (and how many times the fastest column's), the VAE's
    draws, the card's metrics, or why it has none."""
    parts = []
    if result.title:
        parts.append(f"<p><b>{esc(result.title)}</b></p>")
    if result.error:
        message = localize(result.error)
        return "".join(parts) + f'<p class="compare-problem">{esc(message)}</p>'
    per_image = result.per_image_s or 0.0
    parts.append(f'<p class="compare-time">{esc(t("compare.per_image", ms=per_image * 1000, count=result.count, seconds=result.seconds))}</p>')
    if fastest is not None and fastest is not result and fastest.per_image_s:
        parts.append(f"<p>{esc(t('compare.relative', times=per_image / fastest.per_image_s, fastest=t(f'compare.family.{fastest.family}')))}</p>")
    if result.draws is not None:
        key = "compare.vae_gave_up" if result.missing else "compare.vae_draws"
        missing = ", ".join(str(d) for d in result.missing)
        parts.append(f"<p>{esc(t(key, draws=result.draws, digits=missing))}</p>")
    badges = "".join(metric_badge(m) for m in result.metrics)
    parts.append(f"<div>{badges}</div>" if badges else f"<p><i>{esc(t('compare.no_metrics'))}</i></p>")
    return "".join(parts)


def _metric(metric: Metric) -> dict[str, Any]:
    return {"name": metric.name, "value": metric.value, "unit": metric.unit}


def figures(results: list[svc.FamilyResult]) -> dict[str, Any]:
    """The comparison as data (what API clients read): per family its title, time and metrics."""
    return {r.family: {"title": r.title, "images": r.count, "seconds": round(r.seconds, 4),
                       "per_image_ms": None if r.per_image_s is None else round(r.per_image_s * 1000, 3),
                       "draws": r.draws, "gave_up": r.missing, "metrics": [_metric(m) for m in r.metrics],
                       "error": localize(r.error) if r.error else None} for r in results}


@user_errors
def compare_digits(digits: Any, per_digit: Any, seed: Any, gan: Any, diffusion: Any, vae: Any,
                   classifier: Any) -> tuple[Any, ...]:
    """Every family's grid, its figures (HTML), and all of it as data."""
    folders = {family: _folder(ref, family) for family, ref in (("gan", gan), ("diffusion", diffusion), ("vae", vae))}
    classifier_folder = _folder(classifier, "classifier")
    results = svc.compare_digits(digits, per_digit, seed, folders, classifier_folder)
    request = svc.check_request(digits, per_digit, seed)
    which = "".join(str(d) for d in request.digits)
    pngs = encode_pngs([r.grid for r in results if r.grid is not None])
    images = []
    for result in results:
        if result.grid is None:
            images.append(None)
            continue
        images.append(serve_bytes(pngs.pop(0), digits_svc.download_name(f"compare-{result.family}", which,
                                                                       f"seed{request.seed}")))
    timed = [r for r in results if r.per_image_s]
    fastest = min(timed, key=lambda r: r.per_image_s) if len(timed) > 1 else None
    outputs: list[Any] = []
    for image, result in zip(images, results):
        outputs += [image, info_html(result, fastest)]
    return (*outputs, figures(results))


def default_choice(family: str, choices: list[tuple[str, str]]) -> str | None:
    """The column's first pick: the first model, or for the VAE the one with the largest latent
    space (the 2-D one is for drawing maps; the larger one draws better digits)."""
    if not choices:
        return None
    if family != "vae":
        return choices[0][1]
    return max(choices, key=lambda c: _latent_dim(c[1]))[1]


def _latent_dim(ref: str) -> int:
    folder = model_refs.resolve_or_none(ref)
    return (digits_svc.latent_dim(folder) or 0) if folder else 0


def _picker(label: str, choices: list[tuple[str, str]], value: str | None, elem_id: str) -> gr.Dropdown:
    return gr.Dropdown(choices, value=value, label=label, elem_id=elem_id,
                       allow_custom_value=True)  # a visitor's saved models join after page load


def build_digits_part(ctx: AppContext) -> tuple[dict[str, Any], share.Runner, Any, Any, Any]:
    """The digits comparison; returns its link parameters, its runner, its event, its share slot and
    its 'random seed' box."""
    build_help("compare.digits_lead", "compare.digits_help", "compare-digits")
    with gr.Row():
        which = gr.CheckboxGroup([str(d) for d in range(10)], value=[str(d) for d in range(10)],
                                 label=t("compare.digits"), info=t("compare.digits_info"),
                                 elem_id="compare-digits-which", scale=3)
        per_digit = gr.Slider(1, svc.MAX_PER_DIGIT, value=2, step=1, label=t("compare.per_digit"),
                              elem_id="compare-per-digit", scale=1)
        with gr.Column(scale=1, min_width=160):
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label=t("compare.seed"),
                             elem_id="compare-seed")
            randomize = gr.Checkbox(False, label=t("compare.random_seed"))
    go = gr.Button(t("compare.digits_go"), variant="primary", elem_id="compare-digits-go")
    pickers: dict[str, gr.Dropdown] = {}
    outputs: list[Any] = []
    with gr.Row(elem_id="compare-digits-columns", equal_height=False):
        for family in svc.FAMILIES:
            with gr.Column(elem_classes="compare-col", elem_id=f"compare-{family}", min_width=240):
                gr.Markdown(f"### {t(f'compare.family.{family}')}")
                choices = family_choices(ctx, family)
                pickers[family] = _picker(t("compare.model"), choices, default_choice(family, choices),
                                          f"compare-{family}-model")
                if family == "vae":
                    classifiers = family_choices(ctx, "classifier")
                    classifier = _picker(t("compare.classifier"), classifiers, default_choice("classifier", classifiers),
                                         "compare-classifier")
                    gr.Markdown(t("compare.vae_note"), elem_classes="avail-note")
                image = gr.Image(label=t(f"compare.family.{family}"), show_label=False, type="filepath",
                                 elem_id=f"compare-{family}-out")
                info = gr.HTML(elem_id=f"compare-{family}-info", elem_classes="compare-info")
                outputs += [image, info]
    data = gr.JSON(visible=False)
    for family, picker in [*pickers.items(), ("classifier", classifier)]:
        ctx.register_picker(picker, lambda family=family: family_choices(ctx, family))
    share_slot = gr.Column()
    inputs = [which, per_digit, seed, pickers["gan"], pickers["diffusion"], pickers["vae"], classifier]
    event = go.click(next_seed, [seed, randomize], seed, api_visibility="private").then(
        compare_digits, inputs, [*outputs, data], api_name="compare_digits", concurrency_id="compare_digits",
        concurrency_limit=1)  # one comparison at a time: each column's time is the model's own
    params = {"digits": which, "per_digit": per_digit, "seed": seed, "gan": pickers["gan"],
              "diffusion": pickers["diffusion"], "vae": pickers["vae"]}
    runner = share.Runner(compare_digits, inputs, [*outputs, data],
                          {"concurrency_id": "compare_digits", "concurrency_limit": 1}, capture=params)
    return params, runner, event, share_slot, randomize


def build_compare_tab(ctx: AppContext) -> None:
    build_lead("compare")
    with gr.Tabs(overflow_behavior="wrap") as parts:
        with gr.Tab(t("compare.digits_part"), id="compare-digits"):
            digit_params, digit_runner, digit_event, digit_slot, digit_random = build_digits_part(ctx)
        with gr.Tab(t("compare.text_part"), id="compare-text"):
            text = build_text_part(ctx)

    def open_part(values: dict[str, Any]) -> dict[Any, Any]:
        part = values.get("part", "digits")
        updates: dict[Any, Any] = {parts: gr.Tabs(selected=f"compare-{part}")}
        if "seed" in values:  # a link's seed is used as it is
            updates[digit_random if part == "digits" else text.randomize] = False
        return updates

    models = {name: (lambda family=name: family_choices(ctx, family)) for name in ("gan", "diffusion", "vae")}
    models.update({name: text.choices for name in ("model_a", "model_b", "model_c")})
    link = share.target(ctx, "compare", {}, parts={"digits": digit_params, "text": text.params}, part_param="part",
                        default_part="digits", models=models, extra=open_part, extra_outputs=[parts, digit_random, text.randomize])
    link.runners["digits"] = digit_runner
    link.runners["text"] = text.runner
    link.capture(digit_event, digit_params, "digits")
    link.capture(text.event, text.params, "text")
    with digit_slot:
        share.share_button(link, "digits")
    with text.share_slot:
        share.share_button(link, "text")

