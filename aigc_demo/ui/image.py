"""The Image tab: text to image with any text-to-image model of the catalog (hub or local folder),
and our own digit models, which draw the digits a prompt names (services/image_models.py): the
default is the best model that runs here now, so a fresh start offline still draws a picture.

Results are PNG files (each with its settings in its metadata), so a downloaded image can be
dropped back in "Load settings from an image" to make it again.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.errors import UserError
from aigc_demo.services import validate
from aigc_demo.services.gallery import add_hub_id
from aigc_demo.services.digits_image import digit_family
from aigc_demo.services.image_models import NOT_READY, ImageModel, defaults_for, image_models, make_images
from aigc_demo.services.imagegen import (MAX_GUIDANCE, MAX_IMAGES, MAX_PROMPT_CHARS, MAX_SEED, MAX_STEPS,
                                         ImageSettings, read_image_settings)
from aigc_demo.ui import model_refs, share
from aigc_demo.ui.availability import GenerateView, generate_view, picker_label
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.files import uploaded
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.messages import localize
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.strings import t

SIZE_MIN, SIZE_MAX = 32, 1024


def model_label(model: ImageModel) -> str:
    """What the picker says: ours and what it draws, or why a hub model is not ready."""
    spec = model.spec
    if model.ours:
        return t("image.ours_label", title=spec.title)
    if spec.source != "hub" or model.rank != NOT_READY:
        return picker_label(spec)
    size = t("image.hub_size", size=model.download_gb) if model.download_gb else t("image.hub_size_unknown")
    return t("image.hub_offline" if model.why == "offline" else "image.hub_needs_gpu", title=spec.title, size=size)


def image_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """(label, reference) for every model the tab can run, best-that-runs-now first (the default)."""
    return [(model_label(m), m.ref) for m in image_models(ctx.settings.weights_dir, ctx.user_dirs)]


def is_ours(ref: str | None) -> bool:
    """One of our digit models (draws digits from number words), for a picked id."""
    return bool(ref) and digit_family(model_refs.resolve_or_none(ref)) is not None


def image_view(ref: str | None) -> GenerateView:
    """The Generate button and the note beside it; for our models the note says what they draw."""
    view = generate_view(ref, t("image.generate"))
    if is_ours(ref) and not view.note:
        return GenerateView(t("image.ours_note"), view.label, view.variant, view.interactive)
    return view


def image_state(ref: str | None) -> tuple[Any, Any]:
    view = image_view(ref)
    return (gr.Markdown(view.note, visible=bool(view.note)),
            gr.Button(view.label, variant=view.variant, interactive=view.interactive))


def placeholder(ref: str | None) -> str:
    return t("image.digits_placeholder") if is_ours(ref) else t("image.prompt_placeholder")


def _info(batch: Any) -> str:
    lines = [t("image.done", count=len(batch.images), per_image=f"{batch.seconds_per_image:.2f}",
               seed=batch.settings.seed, device=batch.device)]
    if batch.load_seconds:
        lines.append(t("image.loaded_in", seconds=f"{batch.load_seconds:.1f}"))
    lines += [f"- {localize(notice)}" for notice in batch.notices]
    return "\n\n".join(lines)


def build_image_tab(ctx: AppContext) -> None:
    build_lead("image")
    choices = image_choices(ctx)
    first = choices[0][1] if choices else None
    start = defaults_for(model_refs.resolve_or_none(first) or "") if first else {}
    with gr.Row():
        model = gr.Dropdown(choices, value=first, label=t("image.model"), scale=3, elem_id="image-model")
        with gr.Column(scale=2):
            hub_id = gr.Textbox(label=t("image.hub_id"), placeholder="owner/name", elem_id="image-hub-id")
            add_hub = gr.Button(t("image.hub_add"), size="sm")
    prompt = gr.Textbox(label=t("image.prompt"), lines=2, placeholder=placeholder(first),
                        elem_id="image-prompt")
    negative = gr.Textbox(label=t("image.negative"), lines=1, elem_id="image-negative")
    with gr.Row():
        steps = gr.Slider(1, MAX_STEPS, value=start.get("steps", 4), step=1, label=t("image.steps"),
                          elem_id="image-steps")
        guidance = gr.Slider(0, MAX_GUIDANCE, value=start.get("guidance", 0.0), step=0.5,
                             label=t("image.guidance"), info=t("image.guidance_info"), elem_id="image-guidance")
        count = gr.Slider(1, MAX_IMAGES, value=1, step=1, label=t("image.count"), elem_id="image-count")
    with gr.Row():
        width = gr.Slider(SIZE_MIN, SIZE_MAX, value=start.get("width", 512), step=8, label=t("image.width"),
                          elem_id="image-width")
        height = gr.Slider(SIZE_MIN, SIZE_MAX, value=start.get("height", 512), step=8,
                           label=t("image.height"), elem_id="image-height")
    with gr.Row(equal_height=True):
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label=t("image.seed"),
                         elem_id="image-seed", scale=2)
        random_seed = gr.Checkbox(value=True, label=t("image.random_seed"), elem_id="image-random-seed", scale=1)
        reuse = gr.Button(t("image.reuse_seed"), size="sm", scale=1, elem_id="image-reuse")
    with gr.Row(equal_height=True):
        view = image_view(first)
        generate = gr.Button(view.label, variant=view.variant, interactive=view.interactive,
                             elem_id="image-generate", scale=1, min_width=160)
        note = gr.Markdown(view.note, visible=bool(view.note), elem_id="image-model-note",
                           elem_classes="avail-note")
    info = gr.Markdown(elem_id="image-info")
    gallery = gr.Gallery(label=t("image.results"), columns=4, height="auto", format="png",
                         elem_id="image-results", interactive=False)
    share_slot = gr.Column()
    last_seed = gr.State(None)
    with gr.Accordion(t("image.load_settings"), open=False):
        upload = gr.File(label=t("image.load_settings_file"), file_types=[".png"], type="filepath",
                         elem_id="image-upload")
        loaded_info = gr.Markdown(elem_id="image-loaded-info")

    @user_errors
    def make(model_ref: str | None, prompt_text: str, negative_text: str, n_steps: float, guide: float,
             w: float, h: float, seed_value: float | None, random: bool, n_images: float,
             progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        model_ref = validate.identifier(model_ref, t("image.model"), required=False)
        if not model_ref:
            raise UserError(t("image.no_model"))
        random = validate.flag(random, t("image.random_seed"), default=True)
        settings = ImageSettings(
            prompt=validate.text(prompt_text, t("image.prompt"), max_chars=MAX_PROMPT_CHARS * 4),
            negative_prompt=validate.text(negative_text, t("image.negative"), max_chars=MAX_PROMPT_CHARS * 4),
            steps=validate.integer(n_steps, t("image.steps"), low=1, high=MAX_STEPS),
            guidance=validate.number(guide, t("image.guidance"), low=0, high=MAX_GUIDANCE),
            width=validate.integer(round(validate.number(w, t("image.width"), low=1, high=1e5)), t("image.width")),
            height=validate.integer(round(validate.number(h, t("image.height"), low=1, high=1e5)), t("image.height")),
            seed=None if random or seed_value is None else validate.integer(seed_value, t("image.seed"), low=0,
                                                                            high=MAX_SEED),
            num_images=validate.integer(n_images, t("image.count"), low=1, high=MAX_IMAGES))
        progress(0, desc=t("image.loading"))

        def on_step(done: int, total: int) -> None:
            progress((done, total), desc=t("image.step"), unit="steps")

        def on_download(p: Any) -> None:
            progress(p.fraction, desc=t("image.downloading", detail=p.text()))

        batch = make_images(model_refs.resolve(model_ref), settings, on_step=on_step, on_download=on_download,
                            record_as=model_ref)
        items = [(img.path, t("image.caption", seed=img.seed, seconds=f"{img.seconds:.2f}"))
                 for img in batch.images]
        return items, _info(batch), batch.settings.seed

    # one generation at a time: a pipeline's scheduler keeps per-call state, so calls must not overlap
    inputs = [model, prompt, negative, steps, guidance, width, height, seed, random_seed, count]
    events = [generate.click(make, inputs, [gallery, info, last_seed], api_name="generate_image",
                             concurrency_limit=1, concurrency_id="image-generate"),
              prompt.submit(make, inputs, [gallery, info, last_seed], api_visibility="private",
                            concurrency_limit=1, concurrency_id="image-generate")]
    params = {"model": model, "prompt": prompt, "negative": negative, "steps": steps, "guidance": guidance,
              "width": width, "height": height, "count": count, "seed": seed}
    link = share.target(ctx, "image", params, models={"model": lambda: image_choices(ctx)},
                        **share.untick(random_seed))
    made_with = {**params, "seed": last_seed}  # the seed actually used, not the box (random)
    link.runners[""] = share.Runner(make, inputs, [gallery, info, last_seed],
                                    {"concurrency_limit": 1, "concurrency_id": "image-generate"}, capture=made_with)
    for event in events:
        link.capture(event, made_with)
    with share_slot:
        share.share_button(link)

    def reuse_seed(value: int | None) -> tuple[Any, Any]:
        if value is None:
            raise gr.Error(t("image.no_seed_yet"))
        return gr.Number(value=value), gr.Checkbox(value=False)

    reuse.click(reuse_seed, last_seed, [seed, random_seed], api_visibility="private")

    def pick_model(model_ref: str | None) -> tuple[Any, ...]:
        d = defaults_for(model_refs.resolve_or_none(model_ref) or "")
        return d["steps"], d["guidance"], d["width"], d["height"]

    # .input, not .change: restoring settings from a PNG sets the model and must keep its values
    model.input(pick_model, model, [steps, guidance, width, height], api_visibility="private")
    model.change(lambda ref: (*image_state(ref), gr.Textbox(placeholder=placeholder(ref))), model,
                 [note, generate, prompt], api_visibility="private", show_progress="hidden", queue=False)

    @user_errors
    def add_model(repo_id: str) -> tuple[Any, ...]:
        added = add_hub_id(repo_id, "text-to-image")
        refs = image_choices(ctx)
        gr.Info(t("image.hub_added", repo=added))
        return (gr.Dropdown(choices=refs, value=added), "", *pick_model(added))

    add_hub.click(add_model, hub_id, [model, hub_id, steps, guidance, width, height],
                  api_name="add_image_model")

    def refresh_choices() -> Any:
        return gr.Dropdown(choices=image_choices(ctx))

    tab = gr.context.Context.block  # the enclosing gr.Tab: new folders and added ids show on opening
    if isinstance(tab, gr.Tab):
        tab.select(refresh_choices, outputs=model, api_visibility="private", show_progress="hidden")

    @user_errors
    def restore(path: str | None) -> tuple[Any, ...]:
        path = uploaded(path)
        if not path:
            return (gr.skip(),) * 10
        record = read_image_settings(path)
        s = record.settings
        known = {ref for _, ref in image_choices(ctx)}
        model_update = gr.Dropdown(value=record.model) if record.model in known else gr.skip()
        note = t("image.settings_loaded", model=record.model, revision=record.revision or "-")
        if record.model not in known:
            note += "\n\n" + t("image.model_not_listed", model=record.model)
        return (model_update, s.prompt, s.negative_prompt, s.steps, s.guidance, s.width, s.height,
                s.seed, False, note)

    upload.upload(restore, upload, [model, prompt, negative, steps, guidance, width, height, seed,
                                    random_seed, loaded_info], api_name="load_image_settings")
