"""The Fine-tune tab: pick a model, give it data, press Start, watch it learn, keep the result.

All the work is in the services (services/finetune.py checks the model, data and settings;
services/jobs.py runs each job in its own process; services/user_models.py keeps the result);
this module only lays out widgets and turns their values into service calls. A gr.Timer polls the manager,
so reloading the page re-attaches to the visitor's job with its whole history.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import Context

from aigc_demo.catalog import build_catalog
from aigc_demo.data.images import read_image
from aigc_demo.errors import UserError
from aigc_demo.services import finetune as svc
from aigc_demo.services import finetune_data
from aigc_demo.services import finetune_probe as probe
from aigc_demo.services import validate
from aigc_demo.services.finetune_data import BUILTIN, DATASET_TITLES
from aigc_demo.services.finetune_plots import loss_plot
from aigc_demo.services.job_config import job_on_cpu
from aigc_demo.services.jobs import FinetuneManager, get_manager
from aigc_demo.services.user_models import push_to_hub
from aigc_demo.training.finetune_request import BLOCK_RANGE, MAX_BATCH, MAX_LORA_RANK, MAX_LR, MAX_SEED
from aigc_demo.ui import model_refs, sessions
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.sketchpad import digit_sketchpad, gate
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.finetune_api import estimate_api, job_status_api
from aigc_demo.ui.finetune_diffusion import diffusion_settings, sampler_default
from aigc_demo.ui.finetune_status import TEXT_FAMILIES, estimate_markdown, status_markdown
from aigc_demo.ui.files import serve_file, uploaded, uploaded_list
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.strings import t

POLL_S = 1.0
SOURCES = ("text", "images", "sketches", "builtin")
IMAGE_SOURCES = ("images", "sketches", "builtin")
NO_DIGIT = -1  # the "not a digit" choice of the drawing and diffusion dropdowns


def _manager() -> FinetuneManager:
    return get_manager()


def model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """The models a visitor can fine-tune: shipped, their own saved ones, and causal LMs (LoRA)."""
    return svc.finetunable(build_catalog(ctx.settings.weights_dir, ctx.user_dirs), sessions.current_session())


def _family(ref: str | None) -> str | None:
    folder = model_refs.resolve_or_none(ref) if ref else None
    if not folder:
        return None
    try:
        return svc.base_model(folder).family
    except ValueError:
        return None


def _number(value: Any, name: str, kind: type = float) -> Any:
    if value is None or value == "":
        raise UserError(t("finetune.missing_number", name=name))
    number = validate.number(value, name)
    if kind is int:
        if number != int(number):
            raise UserError(t("finetune.whole_number", name=name, value=value))
        return int(number)
    return number


def settings_from(steps: Any, batch: Any, lr: Any, optimizer: str, gan_loss: str, kl_weight: Any, seed: Any,
                  sample_every: Any, block_size: Any, lora_rank: Any, digit: Any, sampler_steps: Any = 0,
                  diffusion_digit: Any = NO_DIGIT, family: str | None = None) -> dict[str, Any]:
    """The settings fields as plain values, each checked and named in the visitor's language (the
    class of unlabelled images from the GAN's or the diffusion model's own control)."""
    if family == "diffusion":
        unlabelled = validate.integer(diffusion_digit, t("finetune.diffusion.unlabelled"), low=NO_DIGIT, high=9,
                                      default=NO_DIGIT)
    else:
        unlabelled = max(0, validate.integer(digit, t("finetune.unlabelled_digit"), default=0))
    return dict(
        steps=_number(steps, t("finetune.steps"), int), batch_size=_number(batch, t("finetune.batch"), int),
        lr=_number(lr, t("finetune.lr")), optimizer=validate.text(optimizer, t("finetune.optimizer"), max_chars=64) or "adam",
        seed=_number(seed, t("finetune.seed"), int),
        gan_loss=validate.text(gan_loss, t("finetune.gan_loss"), max_chars=64) or "nsgan",
        kl_weight=_number(kl_weight, t("finetune.kl_weight")),
        sample_every=_number(sample_every, t("finetune.sample_every"), int),
        block_size=_number(block_size, t("finetune.block_size"), int),
        lora_rank=_number(lora_rank, t("finetune.lora_rank"), int), unlabelled_digit=unlabelled,
        sampler_steps=_number(sampler_steps or 0, t("finetune.diffusion.sampler_steps"), int))


def source_choices(family: str | None) -> list[tuple[str, str]]:
    """The data a family learns from: text for language models, images (three ways) for the rest
    (every kind when the family is unknown)."""
    kinds = SOURCES if family is None else ("text",) if family in TEXT_FAMILIES else IMAGE_SOURCES
    return [(t(f"finetune.source.{s}"), s) for s in kinds]


def narrow_sources(ref: str | None) -> Any:
    """The "Train on" choices of the picked model's family, shown when the tab opens. The control is
    built with every kind, so an API caller (a session whose page never picked a model) may send
    any; a kind the model cannot learn from is refused by the service with a clear message."""
    return gr.Radio(choices=source_choices(_family(ref))) if ref else gr.skip()


def default_source(family: str | None) -> str:
    return "text" if family in TEXT_FAMILIES else "images"


def show_source(kind: str | None) -> tuple[Any, ...]:
    """One data picker: only the inputs of the chosen kind of data are shown."""
    return tuple(gr.Column(visible=kind == s) for s in SOURCES)


def family_view(family: str | None) -> tuple[Any, ...]:
    """Only the settings and sample panes of `family`: GAN loss and digit, KL weight, context, rank,
    the diffusion model's sampler steps and class for unlabelled images."""
    text = family in TEXT_FAMILIES
    return (gr.Column(visible=family == "gan"), gr.Column(visible=family == "vae"), gr.Column(visible=text),
            gr.Column(visible=family == "lora"), gr.Column(visible=family == "diffusion"),
            gr.Column(visible=not text), gr.Column(visible=text))


def build_finetune_tab(ctx: AppContext) -> None:
    this_tab = Context.block  # the Fine-tune tab itself: its estimate is measured when it is opened
    manager = _manager()
    limits = manager.config.limits()
    choices = model_choices(ctx)
    first = choices[0][1] if choices else None
    first_family = _family(first)
    defaults = svc.default_settings(first_family or "gan")

    build_lead("finetune", max_steps=manager.config.max_steps,
               max_mb=int(manager.config.max_upload_mb), jobs=manager.config.max_concurrent)
    job_id = gr.State(None)
    seen = gr.State(None)
    with gr.Row():
        model = gr.Dropdown(choices, value=first, label=t("finetune.model"), info=t("finetune.model_info"),
                            elem_id="finetune-model", scale=3, allow_custom_value=True)  # checked in start_job
        source = gr.Radio(source_choices(None), value=default_source(first_family),
                          label=t("finetune.source"), info=t("finetune.source_info"), elem_id="finetune-source",
                          scale=2)
    ctx.register_picker(model, lambda: model_choices(ctx))

    first_source = default_source(first_family)
    with gr.Column(visible=first_source == "text", elem_id="finetune-data-text") as text_box:
        with gr.Row():
            text = gr.Textbox(lines=6, max_lines=12, label=t("finetune.text"),
                              placeholder=t("finetune.text_placeholder"), elem_id="finetune-text-box")
            text_file = gr.File(label=t("finetune.text_file"), file_types=[".txt"], type="filepath",
                                elem_id="finetune-text-file")
    with gr.Column(visible=first_source == "images", elem_id="finetune-data-images") as images_box:
        gr.Markdown(t("finetune.images_help", max_mb=int(manager.config.max_upload_mb)))
        with gr.Row():
            image_files = gr.File(label=t("finetune.image_files"), file_count="multiple", type="filepath",
                                  file_types=["image", ".zip"], elem_id="finetune-image-files")
            with gr.Column():
                images_preview = gr.Image(label=t("finetune.images_preview"), type="pil", interactive=False,
                                          height=260, elem_id="finetune-images-preview", elem_classes=["aigc-out"])
                images_summary = gr.Markdown(elem_id="finetune-images-summary")
    with gr.Column(visible=first_source == "sketches", elem_id="finetune-data-sketches") as draw_box:
        gr.Markdown(t("finetune.draw_help"))
        with gr.Row():
            sketch = digit_sketchpad("finetune.sketch", "finetune-sketch")
            with gr.Column():
                sketch_digit = gr.Dropdown([(t("finetune.no_digit"), NO_DIGIT)] + [(str(d), d) for d in range(10)],
                                           value=NO_DIGIT, label=t("finetune.sketch_digit"))
                add_sketch = gr.Button(t("finetune.add_sketch"), variant="primary", elem_id="finetune-add-sketch",
                                       interactive=False)
                clear_sketches = gr.Button(t("finetune.clear_sketches"), size="sm")
                sketches_summary = gr.Markdown(t("finetune.sketches_none"), elem_id="finetune-sketch-count")
            sketches_preview = gr.Image(label=t("finetune.images_preview"), type="pil", interactive=False,
                                        height=260, elem_classes=["aigc-out"])
    with gr.Column(visible=first_source == "builtin", elem_id="finetune-data-builtin") as builtin_box:
        gr.Markdown(t("finetune.builtin_help"))
        with gr.Row():
            dataset = gr.Radio([(DATASET_TITLES[d], d) for d in BUILTIN], value="mnist",
                               label=t("finetune.dataset"), elem_id="finetune-dataset")
            builtin_button = gr.Button(t("finetune.builtin_check"), size="sm")
        with gr.Row():
            builtin_preview = gr.Image(label=t("finetune.images_preview"), type="pil", interactive=False, height=260,
                                       elem_classes=["aigc-out"])
            builtin_summary = gr.Markdown()

    with gr.Accordion(t("finetune.settings"), open=True):
        with gr.Row():
            steps = gr.Number(defaults.steps, precision=0, minimum=1, maximum=manager.config.max_steps,
                              label=t("finetune.steps"), elem_id="finetune-steps")
            batch = gr.Number(defaults.batch_size, precision=0, minimum=1, maximum=MAX_BATCH,
                              label=t("finetune.batch"), elem_id="finetune-batch")
            lr = gr.Number(defaults.lr, minimum=0, maximum=MAX_LR, label=t("finetune.lr"), info=t("finetune.lr_info"),
                           elem_id="finetune-lr")
            optimizer = gr.Radio([("Adam", "adam"), ("RMSprop", "rmsprop"), ("SGD", "sgd")], value="adam",
                                 label=t("finetune.optimizer"))
            seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label=t("finetune.seed"))
            sample_every = gr.Number(defaults.sample_every, precision=0, minimum=0, maximum=manager.config.max_steps,
                                     label=t("finetune.sample_every"))
        with gr.Row():
            with gr.Column(visible=first_family == "gan", elem_id="finetune-gan-settings") as gan_box:
                gan_loss = gr.Radio([(t("finetune.loss.nsgan"), "nsgan"), (t("finetune.loss.hinge"), "hinge"),
                                     (t("finetune.loss.wgan-gp"), "wgan-gp")], value="nsgan",
                                    label=t("finetune.gan_loss"))
                unlabelled = gr.Dropdown(list(range(10)), value=0, label=t("finetune.unlabelled_digit"),
                                         info=t("finetune.unlabelled_info"), elem_id="finetune-unlabelled")
            with gr.Column(visible=first_family == "vae", elem_id="finetune-vae-settings") as vae_box:
                kl_weight = gr.Slider(0.0, 4.0, value=1.0, step=0.05, label=t("finetune.kl_weight"),
                                      info=t("finetune.kl_info"))
            with gr.Column(visible=first_family in TEXT_FAMILIES, elem_id="finetune-text-settings") as lm_box:
                block_size = gr.Number(defaults.block_size, precision=0, minimum=BLOCK_RANGE[0],
                                       maximum=BLOCK_RANGE[1], label=t("finetune.block_size"),
                                       elem_id="finetune-block")
            with gr.Column(visible=first_family == "lora", elem_id="finetune-lora-settings") as lora_box:
                lora_rank = gr.Number(defaults.lora_rank, precision=0, minimum=1, maximum=MAX_LORA_RANK,
                                      label=t("finetune.lora_rank"))
            with gr.Column(visible=first_family == "diffusion", elem_id="finetune-diffusion-settings") as diffusion_box:
                sampler_steps, diffusion_unlabelled = diffusion_settings(first, first_family)

    estimate = gr.Markdown(t("finetune.estimate_pending"), elem_id="finetune-estimate")
    with gr.Row():
        start = gr.Button(t("finetune.start"), variant="primary", elem_id="finetune-start")
        stop = gr.Button(t("finetune.stop"), variant="stop", interactive=False, elem_id="finetune-stop")
        resume = gr.Button(t("finetune.resume"), interactive=False, elem_id="finetune-resume")
    status = gr.Markdown(t("finetune.no_job"), elem_id="finetune-status")
    log_scale = gr.Checkbox(False, label=t("finetune.log_scale"), elem_id="finetune-log")
    plot = gr.Image(label=t("finetune.plot"), type="pil", interactive=False, elem_id="finetune-plot", format="png",
                    show_label=False)
    with gr.Column(visible=first_family not in TEXT_FAMILIES, elem_id="finetune-image-samples") as image_panes:
        with gr.Row():
            preview = gr.Image(label=t("finetune.preview"), type="pil", interactive=False, height=300,
                               elem_id="finetune-preview", elem_classes=["aigc-out"])
            history = gr.Gallery(label=t("finetune.preview_history"), columns=8, height=300, object_fit="contain",
                                 elem_id="finetune-history")
    with gr.Column(visible=first_family in TEXT_FAMILIES, elem_id="finetune-text-samples") as text_panes:
        preview_text = gr.Textbox(label=t("finetune.preview_text"), lines=8, interactive=False,
                                  elem_id="finetune-preview-text")

    with gr.Accordion(t("finetune.keep"), open=True, visible=False, elem_id="finetune-keep") as keep:
        with gr.Row():
            name = gr.Textbox(label=t("finetune.name"), placeholder="my-model", elem_id="finetune-name", scale=2)
            save = gr.Button(t("finetune.save"), interactive=False, elem_id="finetune-save")
            download = gr.Button(t("finetune.download"), interactive=False, elem_id="finetune-download")
        saved_note = gr.Markdown(elem_id="finetune-saved")
        zip_file = gr.File(label=t("finetune.zip"), interactive=False, elem_id="finetune-zip", visible=False)
        with gr.Accordion(t("finetune.push"), open=False):
            with gr.Row():
                repo = gr.Textbox(label=t("finetune.repo"), placeholder="your-name/my-model")
                token = gr.Textbox(label=t("finetune.token"), type="password")
                private = gr.Checkbox(True, label=t("finetune.private"))
                push = gr.Button(t("finetune.push_button"))
            push_note = gr.Markdown()

    timer = gr.Timer(POLL_S)

    # ---------------------------------------------------------------- handlers
    def session_of(request: gr.Request | None) -> str:
        return sessions.resolve(None, request)

    @user_errors
    def pick_model(ref: str | None) -> tuple[Any, ...]:
        family = _family(ref)
        if family is None:
            return (gr.skip(),) * 14
        d = svc.default_settings(family)
        return (gr.Radio(choices=source_choices(family), value=default_source(family)), d.steps, d.batch_size,
                d.lr, d.sample_every, d.block_size, sampler_default(ref, family), *family_view(family))

    def measure(model_ref: str | None, steps_n: Any, batch_size: Any, learning_rate: Any, optimizer_name: str,
                gan_loss_name: str, kl: Any, seed_n: Any, sample_every_n: Any, block: Any, rank: Any,
                unlabelled_digit: Any, sampler_steps_n: Any = 0, diffusion_digit: Any = NO_DIGIT) -> str:
        """The pre-flight estimate: a few real steps of these settings on this machine (cached)."""
        try:
            base = svc.base_model(model_refs.resolve(model_ref or ""))
            settings = svc.make_settings(settings_from(steps_n, batch_size, learning_rate, optimizer_name,
                                                       gan_loss_name, kl, seed_n, sample_every_n, block, rank,
                                                       unlabelled_digit, sampler_steps_n, diffusion_digit,
                                                       base.family), manager.config.max_steps, base.family)
            return estimate_markdown(probe.estimate(probe.get_prober(), base, settings, manager.config.threads(),
                                                    job_on_cpu(), measure_now=manager.active_jobs() == 0))
        except LookupError:
            return t("finetune.estimate_busy")
        except ValueError as err:
            return t("finetune.estimate_failed", problem=str(err))

    def measuring(model_ref: str | None) -> str:
        return t("finetune.estimate_measuring") if model_ref else t("finetune.estimate_pending")

    @user_errors
    def check_images(files: Any) -> tuple[Any, str]:
        if not files:
            return None, ""
        data = svc.prepare_images(uploaded_list(files), limits)
        assert data.images is not None
        return data.images.preview(), data.summary

    @user_errors
    def add_drawing(drawing: Any, digit: Any, request: gr.Request) -> tuple[Any, str, Any]:
        session = session_of(request)
        digit = validate.integer(digit, t("finetune.sketch_digit"), low=-1, high=9, default=NO_DIGIT)
        images = manager.add_sketch(session, drawing, None if digit == NO_DIGIT else digit)
        return images.preview(), t("finetune.sketches_count", count=len(images)), ""

    @user_errors
    def clear_drawings(request: gr.Request) -> tuple[Any, str]:
        manager.clear_sketches(session_of(request))
        return None, t("finetune.sketches_none")

    @user_errors
    def check_builtin(name: str) -> tuple[Any, str]:
        folder = finetune_data.builtin_folder(name, manager.config.allow_download)
        return finetune_data.builtin_preview(folder, name)

    def prepare(session: str, kind: str, text_value: str, text_path: Any, files: Any, dataset_name: str) -> svc.PreparedData:
        if kind == "text":
            return svc.prepare_text(text_value, uploaded(text_path), limits)
        if kind == "images":
            return svc.prepare_images(uploaded_list(files), limits)
        if kind == "sketches":
            return manager.prepare_sketches(session)
        if kind == "builtin":
            return svc.prepare_builtin(dataset_name, manager.config.allow_download)
        raise UserError(t("finetune.pick_source"))

    def starting() -> str:
        return t("finetune.stage_checking")

    @user_errors
    def start_job(model_ref: str, source_kind: str, text_value: str, text_path: Any, files: Any, dataset_name: str,
                  steps_n: Any, batch_size: Any, learning_rate: Any, optimizer_name: str, gan_loss_name: str,
                  kl: Any, seed_n: Any, sample_every_n: Any, block: Any, rank: Any, unlabelled_digit: Any,
                  sampler_steps_n: Any, diffusion_digit: Any, request: gr.Request) -> tuple[str, str]:
        """Start fine-tuning `ref` on the chosen data; returns the job id and its status."""
        session = session_of(request)
        if model_ref not in [value for _, value in model_choices(ctx)] and not ctx.settings.public.allow_local_paths:
            raise UserError(t("finetune.pick_model"))  # the same text whatever was sent
        base = svc.base_model(model_refs.resolve(model_ref))
        settings = svc.make_settings(settings_from(steps_n, batch_size, learning_rate, optimizer_name, gan_loss_name,
                                                   kl, seed_n, sample_every_n, block, rank, unlabelled_digit,
                                                   sampler_steps_n, diffusion_digit, base.family),
                                     manager.config.max_steps, base.family)
        data = prepare(session, source_kind, text_value, text_path, files, dataset_name)
        probe.get_prober().cancel()  # the job gets the CPU; a cancelled estimate is measured again later
        new_id = manager.start(session, base, data, settings, client=sessions.client_address(request))
        return new_id, status_markdown(manager.view(session, new_id))

    @user_errors
    def stop_job(current: str | None, request: gr.Request) -> str:
        """Stop the job: it keeps what it learned (checkpoint and model)."""
        if not current:
            raise UserError(t("finetune.no_job"))
        return manager.stop(session_of(request), current)

    @user_errors
    def resume_job(current: str | None, request: gr.Request) -> str:
        """Resume a stopped job from its checkpoint."""
        if not current:
            raise UserError(t("finetune.no_job"))
        return manager.resume(session_of(request), current)

    @user_errors
    def save_model(current: str | None, model_name: str, changed: int,
                   request: gr.Request) -> tuple[str, int]:
        """Save the job's model under `model_name` for this session (gallery and pickers)."""
        if not current:
            raise UserError(t("finetune.no_job"))
        shipped = tuple(p.name for p in Path(ctx.settings.weights_dir).iterdir() if p.is_dir()) \
            if Path(ctx.settings.weights_dir).is_dir() else ()
        folder = manager.save(session_of(request), current, model_name, shipped)
        return t("finetune.saved", name=folder.name), (changed or 0) + 1

    @user_errors
    def download_model(current: str | None, request: gr.Request) -> Any:
        """A zip of the model in Hugging Face layout."""
        if not current:
            raise UserError(t("finetune.no_job"))
        with tempfile.TemporaryDirectory(prefix="aigc-finetune-") as folder:  # gone once copied out
            return gr.File(value=serve_file(manager.zip_model(session_of(request), current, dest=folder)),
                           visible=True)

    @user_errors
    def push_model(current: str | None, repo_id: str, token_v: str, private_v: bool,
                   request: gr.Request) -> str:
        session = session_of(request)
        view = manager.view(session, current) if current else None
        if view is None or not view.saved:
            raise UserError(t("finetune.save_first"))
        url = push_to_hub(view.saved[-1], repo_id, token_v, private_v)
        return t("finetune.pushed", url=url)

    def poll(current: str | None, last_seen: Any, log: bool, request: gr.Request) -> tuple[Any, ...]:
        """Timer tick: redraw only what changed since the last tick."""
        skip = (gr.skip(),) * 12
        try:
            session = session_of(request)
            view = manager.view(session, current) if current else manager.latest(session)
        except ValueError:
            return skip
        if view is None:
            return skip
        key = [view.id, view.version, bool(log)]
        if last_seen == key:
            return skip
        samples = [(read_image(p["image"]), t("finetune.step", step=p["step"])) for p in view.previews if "image" in p]
        images = [(image, caption) for image, caption in samples if image is not None]
        texts = [p for p in view.previews if "text" in p]
        latest_text = (t("finetune.sample_at", step=texts[-1]["step"]) + "\n" + texts[-1]["text"]) if texts else ""
        learned = view.can_save or bool(view.saved)
        return (view.id, key, status_markdown(view),
                loss_plot(view.history, view.family, bool(log), total_steps=view.total_steps),
                images[-1][0] if images else None, latest_text, images,
                gr.Button(interactive=view.can_stop), gr.Button(interactive=view.can_resume),
                gr.Button(interactive=view.can_save), gr.Button(interactive=learned), gr.Accordion(visible=learned))

    # ---------------------------------------------------------------- wiring
    settings_inputs = [steps, batch, lr, optimizer, gan_loss, kl_weight, seed, sample_every, block_size, lora_rank,
                       unlabelled, sampler_steps, diffusion_unlabelled]
    view_outputs = [gan_box, vae_box, lm_box, lora_box, diffusion_box, image_panes, text_panes]
    estimate_inputs = [model, *settings_inputs]
    probe_run = dict(fn=measure, inputs=estimate_inputs, outputs=estimate, show_progress="hidden",
                     trigger_mode="always_last", concurrency_limit=1, concurrency_id="finetune-probe",
                     api_visibility="private")
    in_order = dict(concurrency_id="finetune-pick", concurrency_limit=1)  # a pick's choices win over the tab's
    model.change(pick_model, model, [source, steps, batch, lr, sample_every, block_size, sampler_steps, *view_outputs],
                 api_visibility="private", **in_order).then(measuring, model, estimate, queue=False,
                                                api_visibility="private").then(**probe_run)
    gr.on([steps.input, batch.input, sample_every.input, block_size.input, lora_rank.input, gan_loss.input,
           optimizer.input, sampler_steps.input], **probe_run)
    if this_tab is not None and hasattr(this_tab, "select"):
        this_tab.select(narrow_sources, model, source, show_progress="hidden", api_visibility="private", **in_order)
        this_tab.select(measuring, model, estimate, queue=False, api_visibility="private").then(**probe_run)
    gr.api(estimate_api(manager), api_name="finetune_estimate")
    source.change(show_source, source, [text_box, images_box, draw_box, builtin_box], queue=False,
                  api_visibility="private")
    image_files.change(check_images, image_files, [images_preview, images_summary], api_visibility="private")
    sketch.change(gate, sketch, add_sketch, queue=False, show_progress="hidden", api_visibility="private")
    add_sketch.click(add_drawing, [sketch, sketch_digit], [sketches_preview, sketches_summary, sketch],
                     api_name="finetune_add_sketch")
    clear_sketches.click(clear_drawings, None, [sketches_preview, sketches_summary], api_visibility="private")
    builtin_button.click(check_builtin, dataset, [builtin_preview, builtin_summary], api_visibility="private")
    start.click(starting, None, status, queue=False, api_visibility="private").then(
        start_job, [model, source, text, text_file, image_files, dataset, *settings_inputs],
        [job_id, status], api_name="finetune_start", concurrency_limit=None)
    stop.click(stop_job, [job_id], [saved_note], api_name="finetune_stop", concurrency_limit=None)
    resume.click(resume_job, [job_id], [saved_note], api_name="finetune_resume")
    save.click(save_model, [job_id, name, ctx.models_changed], [saved_note, ctx.models_changed],
               api_name="finetune_save")
    download.click(download_model, [job_id], [zip_file], api_name="finetune_download")
    push.click(push_model, [job_id, repo, token, private], [push_note], api_name="finetune_push")
    gr.api(job_status_api(manager), api_name="finetune_status")
    poll_outputs = [job_id, seen, status, plot, preview, preview_text, history, stop, resume, save, download, keep]
    timer.tick(poll, [job_id, seen, log_scale], poll_outputs, show_progress="hidden",
               api_visibility="private", queue=False)
    log_scale.change(poll, [job_id, seen, log_scale], poll_outputs, show_progress="hidden",
                     api_visibility="private")
