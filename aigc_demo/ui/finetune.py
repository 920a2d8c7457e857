"""The Fine-tune tab: pick a model, give it data, press Start, watch it learn, keep the result.

All the work is in services/finetune.py (a job manager with one process per job); this module
only lays out widgets and turns their values into service calls. A gr.Timer polls the manager,
so reloading the page re-attaches to the visitor's job with its whole history.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import gradio as gr

from aigc_demo.catalog import build_catalog
from aigc_demo.services import finetune as svc
from aigc_demo.services.finetune_data import BUILTIN, DATASET_TITLES
from aigc_demo.training.finetune import FinetuneSettings, default_settings
from aigc_demo.ui import model_refs, sessions
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.digits import digit_sketchpad
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.files import serve_file, uploaded, uploaded_list
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.strings import t

POLL_S = 1.0
SOURCES = ("text", "images", "sketches", "builtin")
NO_DIGIT = -1


def _manager() -> svc.FinetuneManager:
    return svc.get_manager()


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


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "…"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def status_markdown(view: svc.JobView | None) -> str:
    """Progress as text: status, step, ETA, speed, device, queue position, errors."""
    if view is None:
        return t("finetune.no_job")
    lines = [t("finetune.status_line", status=t(f"finetune.status.{view.status}"), message=view.message,
               job=view.id)]
    if view.step or view.status in ("running", "stopping"):
        percent = 100.0 * view.step / max(view.total_steps, 1)
        unit = t("finetune.tokens") if view.family in ("gpt", "lora") else t("finetune.samples")
        lines.append(t("finetune.progress_line", step=view.step, total=view.total_steps, percent=percent,
                       eta=_duration(view.eta_s) if view.status == "running" else "-",
                       sps=view.steps_per_s, ips=view.items_per_s, unit=unit,
                       device=view.device or "?"))
        lines.append(f'<progress value="{view.step}" max="{max(view.total_steps, 1)}" style="width:100%"></progress>')
    if view.losses:
        lines.append(t("finetune.losses_line", losses=", ".join(
            f"{k} {v:.4f}" for k, v in view.losses.items() if k != "lr" and math.isfinite(v))))
    if view.queue_position:
        lines.append(t("finetune.queue_line", position=view.queue_position))
    if view.error:
        lines.append(t("finetune.error_line", error=view.error))
    if view.saved:
        lines.append(t("finetune.saved_line", names=", ".join(Path(p).name for p in view.saved)))
    lines.append(t("finetune.data_line", data=view.data, base=view.base_title))
    return "\n\n".join(lines)


def _png(data: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(data))


def _number(value: Any, name: str, kind: type = float) -> Any:
    if value is None or value == "":
        raise ValueError(t("finetune.missing_number", name=name))
    number = float(value)
    if kind is int:
        if not math.isfinite(number) or number != int(number):
            raise ValueError(t("finetune.whole_number", name=name, value=value))
        return int(number)
    return number


def settings_from(steps: Any, batch: Any, lr: Any, optimizer: str, gan_loss: str, kl_weight: Any, seed: Any,
                  sample_every: Any, block_size: Any, lora_rank: Any, digit: Any) -> FinetuneSettings:
    return FinetuneSettings(
        steps=_number(steps, t("finetune.steps"), int), batch_size=_number(batch, t("finetune.batch"), int),
        lr=_number(lr, t("finetune.lr")), optimizer=optimizer or "adam", seed=_number(seed, t("finetune.seed"), int),
        gan_loss=gan_loss or "nsgan", kl_weight=_number(kl_weight, t("finetune.kl_weight")),
        sample_every=_number(sample_every, t("finetune.sample_every"), int),
        block_size=_number(block_size, t("finetune.block_size"), int),
        lora_rank=_number(lora_rank, t("finetune.lora_rank"), int),
        unlabelled_digit=max(0, int(digit)) if digit not in (None, "") else 0)


def build_finetune_tab(ctx: AppContext) -> None:
    manager = _manager()
    limits = manager.config.limits()
    choices = model_choices(ctx)
    first = choices[0][1] if choices else None
    defaults = default_settings(_family(first) or "gan")

    build_lead("finetune", max_steps=manager.config.max_steps,
               max_mb=int(manager.config.max_upload_mb), jobs=manager.config.max_concurrent)
    job_id = gr.State(None)
    seen = gr.State(None)
    with gr.Row():
        model = gr.Dropdown(choices, value=first, label=t("finetune.model"), info=t("finetune.model_info"),
                            elem_id="finetune-model", scale=3, allow_custom_value=True)  # checked in start_job
        source = gr.Radio([(t(f"finetune.source.{s}"), s) for s in SOURCES],
                          value="text" if _family(first) in ("gpt", "lora") else "images",
                          label=t("finetune.source"), elem_id="finetune-source", scale=2)
    ctx.register_picker(model, lambda: model_choices(ctx))

    with gr.Tabs():
        with gr.Tab(t("finetune.data_text"), id="finetune-text"):
            with gr.Row():
                text = gr.Textbox(lines=6, max_lines=12, label=t("finetune.text"),
                                  placeholder=t("finetune.text_placeholder"), elem_id="finetune-text-box")
                text_file = gr.File(label=t("finetune.text_file"), file_types=[".txt"], type="filepath",
                                    elem_id="finetune-text-file")
        with gr.Tab(t("finetune.data_images"), id="finetune-images"):
            gr.Markdown(t("finetune.images_help", max_mb=int(manager.config.max_upload_mb)))
            with gr.Row():
                image_files = gr.File(label=t("finetune.image_files"), file_count="multiple", type="filepath",
                                      file_types=["image", ".zip"], elem_id="finetune-image-files")
                with gr.Column():
                    images_preview = gr.Image(label=t("finetune.images_preview"), type="pil", interactive=False,
                                              height=260, elem_id="finetune-images-preview")
                    images_summary = gr.Markdown(elem_id="finetune-images-summary")
        with gr.Tab(t("finetune.data_draw"), id="finetune-draw"):
            gr.Markdown(t("finetune.draw_help"))
            with gr.Row():
                sketch = digit_sketchpad(t("finetune.sketch"), "finetune-sketch")
                with gr.Column():
                    sketch_digit = gr.Dropdown([(t("finetune.no_digit"), NO_DIGIT)] + [(str(d), d) for d in range(10)],
                                               value=NO_DIGIT, label=t("finetune.sketch_digit"))
                    add_sketch = gr.Button(t("finetune.add_sketch"), variant="primary", elem_id="finetune-add-sketch")
                    clear_sketches = gr.Button(t("finetune.clear_sketches"), size="sm")
                    sketches_summary = gr.Markdown(t("finetune.sketches_none"), elem_id="finetune-sketch-count")
                sketches_preview = gr.Image(label=t("finetune.images_preview"), type="pil", interactive=False,
                                            height=260)
        with gr.Tab(t("finetune.data_builtin"), id="finetune-builtin"):
            gr.Markdown(t("finetune.builtin_help"))
            with gr.Row():
                dataset = gr.Radio([(DATASET_TITLES[d], d) for d in BUILTIN], value="mnist",
                                   label=t("finetune.dataset"), elem_id="finetune-dataset")
                builtin_button = gr.Button(t("finetune.builtin_check"), size="sm")
            with gr.Row():
                builtin_preview = gr.Image(label=t("finetune.images_preview"), type="pil", interactive=False, height=260)
                builtin_summary = gr.Markdown()

    with gr.Accordion(t("finetune.settings"), open=True):
        with gr.Row():
            steps = gr.Number(defaults.steps, precision=0, minimum=1, maximum=manager.config.max_steps,
                              label=t("finetune.steps"), elem_id="finetune-steps")
            batch = gr.Number(defaults.batch_size, precision=0, minimum=1, label=t("finetune.batch"),
                              elem_id="finetune-batch")
            lr = gr.Number(defaults.lr, label=t("finetune.lr"), info=t("finetune.lr_info"), elem_id="finetune-lr")
            optimizer = gr.Radio([("Adam", "adam"), ("RMSprop", "rmsprop"), ("SGD", "sgd")], value="adam",
                                 label=t("finetune.optimizer"))
            seed = gr.Number(0, precision=0, minimum=0, label=t("finetune.seed"))
        with gr.Row():
            gan_loss = gr.Radio([(t("finetune.loss.nsgan"), "nsgan"), (t("finetune.loss.hinge"), "hinge"),
                                 (t("finetune.loss.wgan-gp"), "wgan-gp")], value="nsgan", label=t("finetune.gan_loss"))
            kl_weight = gr.Slider(0.0, 4.0, value=1.0, step=0.05, label=t("finetune.kl_weight"),
                                  info=t("finetune.kl_info"))
            unlabelled = gr.Dropdown(list(range(10)), value=0, label=t("finetune.unlabelled_digit"),
                                     info=t("finetune.unlabelled_info"))
        with gr.Row():
            sample_every = gr.Number(defaults.sample_every, precision=0, minimum=0, label=t("finetune.sample_every"))
            block_size = gr.Number(defaults.block_size, precision=0, minimum=8, label=t("finetune.block_size"))
            lora_rank = gr.Number(defaults.lora_rank, precision=0, minimum=1, label=t("finetune.lora_rank"))

    with gr.Row():
        start = gr.Button(t("finetune.start"), variant="primary", elem_id="finetune-start")
        stop = gr.Button(t("finetune.stop"), variant="stop", interactive=False, elem_id="finetune-stop")
        resume = gr.Button(t("finetune.resume"), interactive=False, elem_id="finetune-resume")
    status = gr.Markdown(t("finetune.no_job"), elem_id="finetune-status")
    log_scale = gr.Checkbox(False, label=t("finetune.log_scale"), elem_id="finetune-log")
    plot = gr.Image(label=t("finetune.plot"), type="pil", interactive=False, elem_id="finetune-plot", format="png")
    with gr.Row():
        preview = gr.Image(label=t("finetune.preview"), type="pil", interactive=False, height=300,
                           elem_id="finetune-preview")
        preview_text = gr.Textbox(label=t("finetune.preview_text"), lines=8, interactive=False,
                                  elem_id="finetune-preview-text")
    history = gr.Gallery(label=t("finetune.preview_history"), columns=8, height=180, object_fit="contain",
                         elem_id="finetune-history")

    with gr.Accordion(t("finetune.keep"), open=True):
        with gr.Row():
            name = gr.Textbox(label=t("finetune.name"), placeholder="my-model", elem_id="finetune-name", scale=2)
            save = gr.Button(t("finetune.save"), interactive=False, elem_id="finetune-save")
            download = gr.Button(t("finetune.download"), interactive=False, elem_id="finetune-download")
        saved_note = gr.Markdown(elem_id="finetune-saved")
        zip_file = gr.File(label=t("finetune.zip"), interactive=False, elem_id="finetune-zip")
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
            return (gr.skip(),) * 9
        d = default_settings(family)
        wants_text = family in ("gpt", "lora")
        return (gr.Radio(value="text" if wants_text else "images"), d.steps, d.batch_size, d.lr, d.sample_every,
                gr.Radio(visible=family == "gan"), gr.Slider(visible=family == "vae"),
                gr.Number(visible=wants_text), gr.Number(visible=family == "lora"))

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
        images = manager.add_sketch(session, drawing, None if digit in (None, NO_DIGIT) else int(digit))
        return images.preview(), t("finetune.sketches_count", count=len(images)), None

    @user_errors
    def clear_drawings(request: gr.Request) -> tuple[Any, str]:
        manager.clear_sketches(session_of(request))
        return None, t("finetune.sketches_none")

    @user_errors
    def check_builtin(name: str) -> tuple[Any, str]:
        from aigc_demo.services.finetune_data import builtin_folder, builtin_preview

        folder = builtin_folder(name, manager.config.allow_download)
        return builtin_preview(folder, name)

    def prepare(session: str, kind: str, text_value: str, text_path: Any, files: Any, dataset_name: str) -> svc.PreparedData:
        if kind == "text":
            return svc.prepare_text(text_value, uploaded(text_path), limits)
        if kind == "images":
            return svc.prepare_images(uploaded_list(files), limits)
        if kind == "sketches":
            return manager.prepare_sketches(session)
        if kind == "builtin":
            return svc.prepare_builtin(dataset_name, manager.config.allow_download)
        raise ValueError(t("finetune.pick_source"))

    @user_errors
    def start_job(model_ref: str, source_kind: str, text_value: str, text_path: Any, files: Any, dataset_name: str,
                  steps_n: Any, batch_size: Any, learning_rate: Any, optimizer_name: str, gan_loss_name: str,
                  kl: Any, seed_n: Any, sample_every_n: Any, block: Any, rank: Any, unlabelled_digit: Any,
                  request: gr.Request) -> tuple[str, str]:
        """Start fine-tuning `ref` on the chosen data; returns the job id and its status."""
        session = session_of(request)
        if model_ref not in [value for _, value in model_choices(ctx)] and not ctx.settings.public.allow_local_paths:
            raise ValueError(t("finetune.pick_model"))  # the same text whatever was sent
        base = svc.base_model(model_refs.resolve(model_ref))
        settings = settings_from(steps_n, batch_size, learning_rate, optimizer_name, gan_loss_name, kl, seed_n,
                                 sample_every_n, block, rank, unlabelled_digit)
        settings.check(manager.config.max_steps)
        data = prepare(session, source_kind, text_value, text_path, files, dataset_name)
        new_id = manager.start(session, base, data, settings)
        return new_id, status_markdown(manager.view(session, new_id))

    @user_errors
    def stop_job(current: str | None, request: gr.Request) -> str:
        """Stop the job: it keeps what it learned (checkpoint and model)."""
        if not current:
            raise ValueError(t("finetune.no_job"))
        return manager.stop(session_of(request), current)

    @user_errors
    def resume_job(current: str | None, request: gr.Request) -> str:
        """Resume a stopped job from its checkpoint."""
        if not current:
            raise ValueError(t("finetune.no_job"))
        return manager.resume(session_of(request), current)

    @user_errors
    def save_model(current: str | None, model_name: str, changed: int,
                   request: gr.Request) -> tuple[str, int]:
        """Save the job's model under `model_name` for this session (gallery and pickers)."""
        if not current:
            raise ValueError(t("finetune.no_job"))
        shipped = tuple(p.name for p in Path(ctx.settings.weights_dir).iterdir() if p.is_dir()) \
            if Path(ctx.settings.weights_dir).is_dir() else ()
        folder = manager.save(session_of(request), current, model_name, shipped)
        return t("finetune.saved", name=folder.name), (changed or 0) + 1

    @user_errors
    def download_model(current: str | None, request: gr.Request) -> str:
        """A zip of the model in Hugging Face layout."""
        if not current:
            raise ValueError(t("finetune.no_job"))
        import tempfile

        with tempfile.TemporaryDirectory(prefix="aigc-finetune-") as folder:  # gone once copied out
            return serve_file(manager.zip_model(session_of(request), current, dest=folder))

    @user_errors
    def push_model(current: str | None, repo_id: str, token_v: str, private_v: bool,
                   request: gr.Request) -> str:
        session = session_of(request)
        view = manager.view(session, current) if current else None
        if view is None or not view.saved:
            raise ValueError(t("finetune.save_first"))
        url = svc.push_to_hub(view.saved[-1], repo_id, token_v, private_v)
        return t("finetune.pushed", url=url)

    def poll(current: str | None, last_seen: Any, log: bool, request: gr.Request) -> tuple[Any, ...]:
        """Timer tick: redraw only what changed since the last tick."""
        skip = (gr.skip(),) * 11
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
        from aigc_demo.services.finetune_plots import loss_plot

        images = [(_png(p["png"]), t("finetune.step", step=p["step"])) for p in view.previews if "png" in p]
        texts = [p for p in view.previews if "text" in p]
        latest_text = (t("finetune.sample_at", step=texts[-1]["step"]) + "\n" + texts[-1]["text"]) if texts else ""
        return (view.id, key, status_markdown(view), loss_plot(view.history, view.family, bool(log)),
                images[-1][0] if images else None, latest_text, images,
                gr.Button(interactive=view.can_stop), gr.Button(interactive=view.can_resume),
                gr.Button(interactive=view.can_save), gr.Button(interactive=view.can_save or bool(view.saved)))

    # ---------------------------------------------------------------- wiring
    settings_inputs = [steps, batch, lr, optimizer, gan_loss, kl_weight, seed, sample_every, block_size, lora_rank,
                       unlabelled]
    model.change(pick_model, model, [source, steps, batch, lr, sample_every, gan_loss, kl_weight, block_size,
                                     lora_rank], api_visibility="private")
    image_files.change(check_images, image_files, [images_preview, images_summary], api_visibility="private")
    add_sketch.click(add_drawing, [sketch, sketch_digit], [sketches_preview, sketches_summary, sketch],
                     api_name="finetune_add_sketch")
    clear_sketches.click(clear_drawings, None, [sketches_preview, sketches_summary], api_visibility="private")
    builtin_button.click(check_builtin, dataset, [builtin_preview, builtin_summary], api_visibility="private")
    start.click(start_job, [model, source, text, text_file, image_files, dataset, *settings_inputs],
                [job_id, status], api_name="finetune_start")
    stop.click(stop_job, [job_id], [saved_note], api_name="finetune_stop")
    resume.click(resume_job, [job_id], [saved_note], api_name="finetune_resume")
    save.click(save_model, [job_id, name, ctx.models_changed], [saved_note, ctx.models_changed],
               api_name="finetune_save")
    download.click(download_model, [job_id], [zip_file], api_name="finetune_download")
    push.click(push_model, [job_id, repo, token, private], [push_note], api_name="finetune_push")
    gr.api(job_status_api(manager), api_name="finetune_status")
    poll_outputs = [job_id, seen, status, plot, preview, preview_text, history, stop, resume, save, download]
    timer.tick(poll, [job_id, seen, log_scale], poll_outputs, show_progress="hidden",
               api_visibility="private", queue=False)
    log_scale.change(poll, [job_id, seen, log_scale], poll_outputs, show_progress="hidden",
                     api_visibility="private")


def job_status_api(manager: svc.FinetuneManager) -> Any:
    @user_errors
    def finetune_status(job_id: str = "") -> dict[str, Any]:
        """A fine-tuning job's progress as JSON: status, step, losses history, ETA, steps/s, device, queue position."""
        from gradio.context import (
            LocalContext,  # gr.api injects no gr.Request; the context has it
        )

        session = sessions.resolve(None, LocalContext.request.get(None))
        view = manager.view(session, job_id) if job_id else manager.latest(session)
        if view is None:
            raise ValueError(t("finetune.no_job"))
        return view.public()
    return finetune_status
