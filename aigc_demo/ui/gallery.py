"""The Gallery tab: a card per model, filtered by task and source, each opening its tab."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from aigc_demo.catalog import SOURCES, TASKS, Metric, ModelSpec, hub_entry
from aigc_demo.services.gallery import ALL, format_parameters, list_models, public_model
from aigc_demo.ui import share
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.strings import t


def _metric_badge(metric: Metric) -> str:
    arrow = {True: " ↓", False: " ↑", None: ""}[metric.lower_is_better]
    value = f"{metric.value:.4g}"
    title = html.escape(metric.note or ("lower is better" if metric.lower_is_better else ""), quote=True)
    unit = f" {html.escape(metric.unit)}" if metric.unit else ""
    return (f'<span class="metric-badge" title="{title}">{html.escape(metric.name)} '
            f"<b>{value}</b>{unit}{arrow}</span>")


def hub_needs(spec: ModelSpec) -> list[str]:
    """What a hub model asks of this machine: memory, the device it suits, its download size
    (from the catalog entry)."""
    entry = hub_entry(spec.id)
    download = getattr(spec, "download_gb", None) or (entry.download_gb if entry else None)
    parts = [t("gallery.memory", memory=spec.memory_gb)] if spec.memory_gb else []
    parts.append(t(f"gallery.suits.{spec.suits}") if spec.suits in ("any", "cuda") else spec.suits)
    if download:
        parts.append(t("gallery.download", download=download))
    return parts


def card_header(spec: ModelSpec) -> str:
    """The card's text (title, task, origin, size, license) as Markdown."""
    origin = t(f"gallery.source.{spec.source}")
    if spec.source == "hub":
        origin += " · " + (t("gallery.cached") if spec.cached else t("gallery.not_cached"))
        if spec.device_map_auto:
            origin += " · " + t("gallery.device_map_auto")
        size = " · ".join([t("gallery.params_published", params=format_parameters(spec.parameters)),
                           *hub_needs(spec)])
    else:
        size = t("gallery.params", params=format_parameters(spec.parameters))
        if spec.size_mb is not None:
            size += " · " + t("gallery.size", size=spec.size_mb)
    lines = [f"### {spec.title}", f"`{t(f'task.{spec.task}') if spec.task in TASKS else spec.task_label}` · `{spec.family}` · {origin}"]
    if spec.error is None:
        lines.append(size + (" · " + t("gallery.license", license=f"`{spec.license}`") if spec.license else ""))
    if spec.description:
        lines.append(spec.description)
    return "\n\n".join(lines)


def metrics_html(spec: ModelSpec) -> str:
    if not spec.metrics:
        return f"<i>{t('gallery.no_metrics')}</i>" if spec.source != "hub" else ""
    return "".join(_metric_badge(m) for m in spec.metrics)


def _open_image(path: str) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy()


def _render_card(spec: ModelSpec, ctx: AppContext) -> None:
    with gr.Column(min_width=300, elem_classes="model-card"):
        gr.Markdown(card_header(spec))
        if spec.error:
            gr.Markdown(t("gallery.card_error", error=spec.error), elem_classes="card-error")
            return
        if spec.sample_image:
            # a visitor's own model: its image goes out as a copy, its folder is never served
            gr.Image(spec.sample_image if spec.source == "shipped" else _open_image(spec.sample_image),
                     show_label=False, height=220, interactive=False,
                     buttons=[], container=False)
        if spec.sample_text:
            gr.Code(spec.sample_text, language="python" if spec.task == "code-generation" else None,
                    interactive=False, show_label=False, max_lines=8)
        badges = metrics_html(spec)
        if badges:
            gr.HTML(badges)
        if spec.tab and spec.tab in ctx.tab_ids:
            button = gr.Button(t("gallery.open", tab=t(f"tab.{spec.tab}")), size="sm",
                               variant="primary")
            button.click(lambda tab=spec.tab: gr.Tabs(selected=tab), outputs=ctx.tabs)
        elif spec.tab:
            gr.Markdown(f"*{t('gallery.no_tab', tab=t(f'tab.{spec.tab}'))}*")


def build_gallery_tab(ctx: AppContext) -> None:
    gr.Markdown(t("gallery.intro"))
    with gr.Row():
        task = gr.Dropdown([(t("gallery.all"), ALL), *[(t(f"task.{key}"), key) for key in TASKS]],
                           value=ALL, label=t("gallery.filter_task"), elem_id="gallery-task")
        source = gr.Radio([(t("gallery.all"), ALL), *[(t(f"gallery.source.{s}"), s) for s in SOURCES]],
                          value=ALL, label=t("gallery.filter_source"), elem_id="gallery-source")
        refresh = gr.Button(t("gallery.refresh"), size="sm", scale=0)

    share.target(ctx, "gallery", {"task": task, "source": source})  # ?tab=gallery&task=…&source=…
    refreshes = gr.State(0)
    refresh.click(lambda n: n + 1, refreshes, refreshes, show_progress="hidden")

    watched = [task, source, refreshes] + ([ctx.models_changed] if ctx.models_changed is not None else [])

    @gr.render(inputs=watched)  # re-rendered on load, on each change and when a visitor saves a model
    def cards(task_value: str, source_value: str, *_changes: int) -> None:
        specs = list_models(ctx.settings.weights_dir, task_value, source_value, ctx.user_dirs)
        gr.Markdown(t("gallery.count", count=len(specs)) if specs else t("gallery.empty"),
                    elem_id="gallery-count")
        with gr.Row(equal_height=False, elem_id="gallery-cards"):
            for spec in specs:
                _render_card(spec, ctx)

    @user_errors
    def models_api(task: str = ALL, source: str = ALL) -> list[dict[str, Any]]:
        """The gallery as JSON: one dict per model (task and source filters as in the page)."""
        session = getattr(ctx.user_dirs, "session", None)
        return [public_model(s, session) for s in list_models(ctx.settings.weights_dir, task, source, ctx.user_dirs)]

    gr.api(models_api, api_name="models")
