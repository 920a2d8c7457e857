"""The Digits tab's diffusion part: "Diffusion: from noise to a digit".

Two results from one set of controls: a grid of digits (`digits_diffusion`, batched across
visitors like the GAN's grid), and 'watch it denoise' (`digits_denoise`): every sampler step as a
strip and an animation, with one sentence per step made from measured values (the noise left by
the schedule, what the classifier reads in the model's predicted clean digit, how far that guess
moved). Services: services/digits_diffusion.py.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gradio as gr

from aigc_demo.data.png import encode_pngs
from aigc_demo.errors import UserError
from aigc_demo.services import digits as svc
from aigc_demo.services import digits_diffusion as diff
from aigc_demo.services.gallery import models_for_tab
from aigc_demo.services.validate import identifier
from aigc_demo.ui import model_refs, sessions, share
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.files import serve_bytes
from aigc_demo.ui.lead import build_help
from aigc_demo.ui.strings import t

BATCH = 8  # requests Gradio groups into one sampling run
TAB_ID = "digits-diffusion"
PARTS = ("diffusion", "denoise")  # share-link parts this section answers
FAMILY_PART = {"diffusion": TAB_ID, "gan": "digits-grid"}  # a gallery card's family -> the part it opens


def diffusion_models(ctx: AppContext) -> list[tuple[str, str]]:
    """The diffusion picker's choices from the catalog: shipped folders and the visitor's own."""
    return models_for_tab(ctx.settings.weights_dir, "digits", ctx.user_dirs, families=("diffusion",))


def _folder(ref: Any, role: str = "digits.diffusion.model", *session: str | None) -> str:
    """The folder of a picked id (only ids the pickers list), for the current visitor or the given one;
    `role` is the string key naming the picker."""
    ref = identifier(ref, t(role), required=False)
    if not ref:
        raise UserError(t("digits.no_model", role=t(role)))
    return model_refs.resolve(ref, *session)


def model_settings(ref: str | None) -> tuple[Any, Any]:
    """The picked model's own sampler steps and guidance, set when the visitor picks it."""
    steps, guidance = diff.model_defaults(model_refs.resolve_or_none(ref))
    return gr.Slider(value=steps), gr.Slider(value=guidance)


def _download_stem(kind: str, digits: Any, seed: Any, steps: int) -> str:
    return svc.download_name(kind, digits, f"seed{int(seed)}", f"{int(steps)}steps", suffix="")


@user_errors
def diffusion_batched(digits: list, counts: list, seeds: list, steps: list, guidances: list,
                      models: list) -> tuple[list, list]:
    """Gradio batch handler: the requests for the same model, steps and guidance share one
    sampling run; each request's digits come from its own seed, so batching changes nothing.

    A request that fails (its checks, or its model failing to load) gets its message when it came
    alone; batched with others (rare: a direct API call with a bad value) it gets an empty result,
    and the others still run.
    """
    images: list[Any] = [None] * len(digits)
    notes: list[str] = [""] * len(digits)
    groups: dict[tuple[str, int, float], list[int]] = {}
    owners = sessions.batch_sessions(len(models))  # each request's own visitor, for `yours/<name>`
    errors: list[UserError] = []
    for index, ref in enumerate(models):
        try:
            key = (_folder(ref, "digits.diffusion.model", owners[index]), diff.check_steps(steps[index]),
                   diff.check_guidance(guidances[index]))
            diff.grid_request(digits[index] or None, counts[index], seeds[index])
        except UserError as err:
            errors.append(err)
            continue
        groups.setdefault(key, []).append(index)
    for (folder, n_steps, guidance), indices in groups.items():
        try:  # a model that cannot load fails its own requests only
            svc.load_diffusion(folder)  # loaded once (registry): the time below is sampling only
            started = time.perf_counter()
            grids = diff.diffusion_grid_batched([digits[i] or None for i in indices], [counts[i] for i in indices],
                                                [seeds[i] for i in indices], n_steps, guidance, folder)
        except UserError as err:
            errors.append(err)
            continue
        sizes = [svc.clamp_count(counts[i]) for i in indices]
        per_digit = (time.perf_counter() - started) / sum(sizes)  # the batch's time, shared by its digits
        for i, n, png in zip(indices, sizes, encode_pngs(grids)):
            which = "".join(str(d) for d in svc.parse_digit_choice(digits[i]) or [])
            images[i] = serve_bytes(png, _download_stem("diffusion-grid", which, seeds[i], n_steps) + ".png")
            notes[i] = t("digits.diffusion.timing", n=n, seconds=per_digit * n, steps=n_steps,
                         calls=1 if guidance == 1.0 else 2, ms=1000 * per_digit)
    if errors and all(image is None for image in images):
        raise errors[0]
    return images, notes


def diffusion_single(digits: Any, count: Any, seed: Any, steps: Any, guidance: Any, model: Any) -> Any:
    """One grid and its timing (what a share link's run=1 asks for), through the batch handler."""
    images, notes = diffusion_batched([digits], [count], [seed], [steps], [guidance], [model])
    return images[0], notes[0]


def _percent(value: float) -> float:
    return round(100 * value, 1)


def verdict(reading: diff.Reading) -> str:
    """What the classifier reads in the model's guess at one step, against the digits asked for."""
    if len(reading.asked) == 1:
        read, asked, p = reading.read_as[0], reading.asked[0], _percent(reading.confidence[0])
        done = reading.step > reading.steps  # the finished digit: no "already", no "not yet"
        if read == asked:
            return t("digits.diffusion.reads_final" if done else "digits.diffusion.reads_ok", digit=asked, p=p)
        return t("digits.diffusion.reads_not" if done else "digits.diffusion.reads_other", read=read, p=p,
                 digit=asked, asked=_percent(reading.asked_probability[0]))
    mean = _percent(sum(reading.confidence) / len(reading.confidence))
    return t("digits.diffusion.reads_row", read=" ".join(str(d) for d in reading.read_as), ok=reading.matches,
             n=len(reading.asked), p=mean)


def step_sentence(reading: diff.Reading) -> str:
    """One sentence for one sampler step (or the finished digits), from its measured values."""
    if reading.step > reading.steps:
        return t("digits.diffusion.done", verdict=verdict(reading))
    text = t("digits.diffusion.step", step=reading.step, steps=reading.steps, noise=_percent(reading.noise_share),
             verdict=verdict(reading))
    if reading.change is not None:
        text += " " + t("digits.diffusion.moved", change=_percent(reading.change))
    return text


def steps_markdown(result: diff.DenoiseResult) -> str:
    """A headline (from which step the guess reads as asked), then one numbered line per step."""
    first = result.first_read
    head = (t("digits.diffusion.first_read", step=first, steps=result.steps) if first is not None
            else t("digits.diffusion.never_read", steps=result.steps))
    timing = t("digits.diffusion.watch_timing", n=len(result.labels), seconds=result.seconds, steps=result.steps,
               calls=1 if result.guidance == 1.0 else 2)
    lines = [f"{i}. {step_sentence(r)}" for i, r in enumerate(result.readings, start=1)]
    return timing + " " + head + "\n\n" + "\n".join(lines)


@user_errors
def watch_denoise(watch: Any, seed: Any, steps: Any, guidance: Any, model: Any,
                  classifier: Any) -> tuple[Any, Any, str]:
    """'Watch it denoise': the strip (PNG), the animation (GIF) and the step sentences."""
    result = diff.denoise(watch, seed, diff.check_steps(steps), diff.check_guidance(guidance),
                          folder=_folder(model), classifier_folder=_folder(classifier, "digits.role.classifier"))
    stem = _download_stem("diffusion-denoise", "".join(map(str, result.labels)), result.seed, result.steps)
    strip = io.BytesIO()
    result.strip.save(strip, format="PNG")
    return (serve_bytes(strip.getvalue(), stem + "-strip.png"), serve_bytes(result.gif, stem + ".gif"),
            steps_markdown(result))


@dataclass
class DiffusionPart:
    """What ui/digits.py needs to give this section share links."""

    params: dict[str, dict[str, Any]]  # share-link part -> URL parameter -> component
    runners: dict[str, share.Runner]
    events: list[tuple[Any, str]]  # (result event, part) for link.capture
    randomize: Any  # the 'new random seed' box a link's seed unticks
    slots: dict[str, Any] = field(default_factory=dict)  # part -> the column for its Share button
    choices: Callable[[], list[tuple[str, str]]] = list


def build_diffusion_part(ctx: AppContext, classifier: Any, next_seed: Callable[..., int]) -> DiffusionPart:
    """The sub-tab, inside the Digits tab's gr.Tabs; `classifier` is the tab's classifier picker."""
    choices = diffusion_models(ctx)
    first = choices[0][1] if choices else None
    steps_default, guidance_default = diff.model_defaults(model_refs.resolve_or_none(first) if first else None)
    with gr.Tab(t("digits.diffusion.tab"), id=TAB_ID):
        build_help("digits.diffusion.lead", "digits.diffusion.help", TAB_ID)
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Dropdown(choices, value=first, label=t("digits.diffusion.model"),
                                    elem_id="digits-diffusion-model", allow_custom_value=True)
                chosen = gr.CheckboxGroup([str(d) for d in range(10)], label=t("digits.which"),
                                          info=t("digits.which_info"), elem_id="digits-diffusion-which")
                count = gr.Slider(1, svc.MAX_GRID, value=16, step=1, label=t("digits.count"),
                                  info=t("digits.count_info", max=svc.MAX_GRID))
                steps = gr.Slider(*diff.STEPS_RANGE, value=steps_default, step=1,
                                  label=t("digits.diffusion.steps"), info=t("digits.diffusion.steps_info"),
                                  elem_id="digits-diffusion-steps")
                guidance = gr.Slider(*diff.GUIDANCE_RANGE, value=guidance_default, step=0.1,
                                     label=t("digits.diffusion.guidance"), info=t("digits.diffusion.guidance_info"),
                                     elem_id="digits-diffusion-guidance")
                with gr.Row():
                    seed = gr.Number(0, precision=0, minimum=0, maximum=svc.MAX_SEED, label=t("digits.seed"),
                                     elem_id="digits-diffusion-seed")
                    randomize = gr.Checkbox(True, label=t("digits.random_seed"), info=t("digits.random_seed_info"),
                                            elem_id="digits-diffusion-random")
                generate = gr.Button(t("digits.generate"), variant="primary", elem_id="digits-diffusion-generate")
            with gr.Column(scale=2):
                grid = gr.Image(label=t("digits.diffusion.grid_out"), type="pil", format="png", height=420,
                                elem_id="digits-diffusion-out", elem_classes=["aigc-out"])
                timing = gr.Markdown(elem_id="digits-diffusion-info")
                grid_slot = gr.Column()
        gr.Markdown(t("digits.diffusion.watch_title"), elem_id="digits-denoise-title")
        with gr.Row():
            with gr.Column(scale=1):
                watch = gr.Textbox("7", label=t("digits.diffusion.watch"), info=t("digits.diffusion.watch_info",
                                   max=diff.MAX_WATCH), max_length=4 * diff.MAX_WATCH, elem_id="digits-denoise-digits")
                go = gr.Button(t("digits.diffusion.watch_button"), variant="primary", elem_id="digits-denoise-go")
            with gr.Column(scale=2):
                gif = gr.Image(label=t("digits.diffusion.gif"), type="filepath", elem_id="digits-denoise-gif",
                               elem_classes=["aigc-out"])
        strip = gr.Image(label=t("digits.diffusion.strip"), type="pil", format="png", elem_id="digits-denoise-strip",
                         elem_classes=["aigc-out"])
        gr.Markdown(t("digits.diffusion.strip_caption"), elem_classes="aigc-caption")
        sentences = gr.Markdown(elem_id="digits-denoise-steps")
        denoise_slot = gr.Column()

    ctx.register_picker(model, lambda: diffusion_models(ctx))
    model.input(model_settings, model, [steps, guidance], queue=False, show_progress="hidden",
                api_visibility="private")  # a picked model brings its own defaults (a link's values stay)
    grid_inputs = [chosen, count, seed, steps, guidance, model]
    grid_event = generate.click(next_seed, [seed, randomize], seed, api_visibility="private").then(
        diffusion_batched, grid_inputs, [grid, timing], batch=True, max_batch_size=BATCH, api_name="digits_diffusion",
        concurrency_limit=1)  # one group at a time, so waiting requests share a sampling run
    watch_inputs = [watch, seed, steps, guidance, model, classifier]
    watch_outputs = [strip, gif, sentences]
    watch_events = [
        go.click(next_seed, [seed, randomize], seed, api_visibility="private").then(
            watch_denoise, watch_inputs, watch_outputs, api_name="digits_denoise"),
        watch.submit(next_seed, [seed, randomize], seed, api_visibility="private").then(
            watch_denoise, watch_inputs, watch_outputs, api_visibility="private")]

    common = {"seed": seed, "sampler_steps": steps, "guidance": guidance, "diffusion": model}
    params = {"diffusion": {"digits": chosen, "count": count, **common}, "denoise": {"watch": watch, **common}}
    runners = {"diffusion": share.Runner(diffusion_single, grid_inputs, [grid, timing], {"concurrency_limit": 1},
                                         capture=params["diffusion"]),
               "denoise": share.Runner(watch_denoise, watch_inputs, watch_outputs, capture=params["denoise"])}
    events = [(grid_event, "diffusion")] + [(event, "denoise") for event in watch_events]
    return DiffusionPart(params, runners, events, randomize, {"diffusion": grid_slot, "denoise": denoise_slot},
                         lambda: diffusion_models(ctx))


def open_from_card(event: gr.EventData) -> Any:
    """A gallery card's Open button for a digit model: its part of the Digits tab."""
    data = getattr(event, "_data", None) or {}
    part = FAMILY_PART.get(data.get("part", "")) if data.get("tab") == "digits" else None
    return gr.Tabs(selected=part) if part else gr.skip()
