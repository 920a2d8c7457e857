"""The Lab tab: pick a family and one thing to vary, press Start, watch 2-3 runs learn side by side.

All the work is in services/lab.py (a lab is a job of the fine-tune manager) and training/lab.py
(the runs in lock-step); this module lays out widgets and turns their values into service calls.
A gr.Timer polls the lab's view: overlaid native LinePlots of the loss and of the measured
metric, the runs' latest sample grids side by side, and when it ends one sentence per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import Context, LocalContext

from aigc_demo.data.images import read_image
from aigc_demo.errors import UserError
from aigc_demo.services import finetune_probe as probe
from aigc_demo.services import validate
from aigc_demo.services.lab import LabService, get_lab_service
from aigc_demo.settings import current as current_settings
from aigc_demo.training.lab_spec import AXES, DEFAULT_VALUES, FAMILIES, MAX_RUNS, LabSpec, default_spec
from aigc_demo.ui import sessions, share
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.lab_text import curves, estimate_markdown, status_markdown, summary_markdown, values_info
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

POLL_S = 1.0
CSS = """
#lab-grids { flex-wrap: wrap; gap: 8px; }
#lab-grids > .column { min-width: min(240px, 100%) !important; }
#lab-grids img { image-rendering: pixelated; }
"""


def vary_choices(family: str) -> list[tuple[str, str]]:
    return [(t(f"lab.axis.{axis}"), axis) for axis in AXES.get(family, AXES["vae"])]


def linked_vary(values: dict[str, Any]) -> Any:
    """The Vary choices of a link's family, with the link's choice when that family has it."""
    family = values.get("family", "vae")
    chosen = values.get("vary", "optimizer")
    return gr.Radio(choices=vary_choices(family), value=chosen if chosen in AXES.get(family, {}) else "optimizer")


def spec_from(family: Any, vary: Any, values: Any, steps: Any, batch: Any, seed: Any) -> LabSpec:
    """A LabSpec from the page's (or the API's) plain values, each checked and named."""
    family = validate.choice(family, t("lab.family"), FAMILIES, default="vae")
    vary = validate.choice(vary, t("lab.vary"), tuple(AXES[family]), default="optimizer")
    text = validate.text(values, t("lab.values"), max_chars=200)
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()] or list(DEFAULT_VALUES[vary])
    spec = LabSpec(family=family, vary=vary, values=parts,
                   batch_size=validate.integer(batch, t("lab.batch"), low=0, high=128, default=0),
                   seed=validate.integer(seed, t("lab.seed"), low=0, high=2**31 - 1, default=0),
                   steps=validate.integer(steps, t("lab.steps"), low=0, high=10**6))
    return spec


def _session() -> str:
    return sessions.resolve(None, LocalContext.request.get(None))  # gr.api injects no gr.Request


def api(service: LabService) -> tuple[Any, Any, Any, Any]:
    """The JSON endpoints: /lab_start, /lab_status, /lab_stop, /lab_save."""
    @user_errors
    def lab_start(family: str = "vae", vary: str = "optimizer", values: str = "adam,sgd", steps: int = 200,
                  batch_size: int = 0, seed: int = 0) -> str:
        """Start a lab: 2-3 small models of `family` (vae, gan, gpt, diffusion) trained side by side from the
        same weights on the same batches, differing only in `vary` (optimizer, lr, or a loss setting), one
        comma-separated value per run. The defaults start the small default lab. Returns the lab id."""
        request = LocalContext.request.get(None)
        return service.start(_session(), spec_from(family, vary, values, steps, batch_size, seed),
                             client=sessions.client_address(request))

    @user_errors
    def lab_status(lab_id: str = "") -> dict[str, Any]:
        """A lab's progress as JSON: status (queued/running/done/failed/stopped), place in line, and `runs`,
        each with its label, settings, measured `loss` list and `metric` list ({step, value})."""
        session = _session()
        lab_id = validate.text(lab_id, "The lab", max_chars=64) or service.latest(session) or ""
        if not lab_id:
            raise UserError(t("lab.no_lab"))
        return service.public(service.view(session, lab_id))

    @user_errors
    def lab_stop(lab_id: str = "") -> str:
        """Stop a lab: every run keeps what it learned so far (and can be saved)."""
        session = _session()
        lab_id = validate.text(lab_id, "The lab", max_chars=64) or service.latest(session) or ""
        if not lab_id:
            raise UserError(t("lab.no_lab"))
        return service.stop(session, lab_id)

    @user_errors
    def lab_save(lab_id: str = "", run: int = 1, name: str = "") -> str:
        """Save run `run` (1-3) of a finished or stopped lab as your model `name` (listed as yours/<name>)."""
        session = _session()
        lab_id = validate.text(lab_id, "The lab", max_chars=64) or service.latest(session) or ""
        if not lab_id:
            raise UserError(t("lab.nothing_to_save"))
        index = validate.integer(run, t("lab.run"), low=1, high=MAX_RUNS) - 1
        folder = service.save(session, lab_id, index, validate.text(name, t("lab.name"), max_chars=64),
                              shipped_names())
        return t("lab.saved", name=folder.name)

    return lab_start, lab_status, lab_stop, lab_save


def shipped_names() -> tuple[str, ...]:
    root = Path(current_settings().serve.weights_dir)
    return tuple(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else ()


def build_lab_tab(ctx: AppContext) -> None:
    this_tab = Context.block
    service = get_lab_service(ctx.settings.weights_dir)
    first = default_spec()
    build_lead("lab")
    lab_id, seen = gr.State(None), gr.State(None)
    with gr.Row():
        family = gr.Dropdown([(t(f"lab.family.{f}"), f) for f in FAMILIES], value=first.family,
                             label=t("lab.family"), elem_id="lab-family")
        vary = gr.Radio(vary_choices(first.family), value=first.vary, label=t("lab.vary"), elem_id="lab-vary")
    with gr.Row():
        values = gr.Textbox(", ".join(first.values), label=t("lab.values"), info=values_info("optimizer", AXES["vae"]["optimizer"]),
                            max_lines=1, elem_id="lab-values", scale=2)
        steps = gr.Number(first.steps, precision=0, minimum=1, maximum=service.limits.max_steps,
                          label=t("lab.steps"), elem_id="lab-steps")
        batch = gr.Number(0, precision=0, minimum=0, maximum=128, label=t("lab.batch"), elem_id="lab-batch")
        seed = gr.Number(0, precision=0, minimum=0, label=t("lab.seed"), elem_id="lab-seed")
    estimate = gr.Markdown(t("lab.estimate_pending"), elem_id="lab-estimate")
    with gr.Row(elem_classes="compact-buttons"):
        start = gr.Button(t("lab.start"), variant="primary", elem_id="lab-start")
        stop = gr.Button(t("lab.stop"), variant="stop", interactive=False, elem_id="lab-stop")
    status = gr.Markdown(t("lab.no_lab"), elem_id="lab-status")
    with gr.Row():
        loss_plot = gr.LinePlot(curves(None, "loss"), x="step", y="value", color="run", label=t("lab.loss_plot", name="loss"),
                                height=260, elem_id="lab-loss-plot")
        metric_plot = gr.LinePlot(curves(None, "metric"), x="step", y="value", color="run",
                                  label=t("lab.metric.elbo"), height=260, elem_id="lab-metric-plot")
    with gr.Row(elem_id="lab-grids"):
        grids, texts, columns = [], [], []
        for index in range(MAX_RUNS):
            with gr.Column(visible=index < 2, elem_id=f"lab-run-{index}") as column:
                grids.append(gr.Image(label=f"{'ABC'[index]}", type="pil", interactive=False, height=240,
                                      elem_id=f"lab-grid-{index}", elem_classes=["aigc-out"]))
                texts.append(gr.Textbox(label=f"{'ABC'[index]}", lines=6, interactive=False, visible=False,
                                        elem_id=f"lab-text-{index}"))
            columns.append(column)
    summary = gr.Markdown(elem_id="lab-summary")
    with gr.Accordion(t("lab.keep"), open=False, elem_id="lab-keep"):
        with gr.Row():
            run_pick = gr.Dropdown([("A", 1), ("B", 2)], value=1, label=t("lab.run"), elem_id="lab-run-pick")
            name = gr.Textbox(label=t("lab.name"), placeholder="my-lab-run", max_lines=1, elem_id="lab-name")
            save = gr.Button(t("lab.save"), interactive=False, elem_id="lab-save")
        saved_note = gr.Markdown(elem_id="lab-saved")
    link = share.target(ctx, "lab", {"family": family, "vary": vary, "values": values, "steps": steps,
                                     "batch": batch, "seed": seed},
                        extra=lambda v: {vary: linked_vary(v)} if "family" in v else {}, extra_outputs=[vary])
    share.share_button(link)
    timer = gr.Timer(POLL_S)

    # ---------------------------------------------------------------- handlers
    def session_of(request: gr.Request | None) -> str:
        return sessions.resolve(None, request)

    def pick_family(family_v: str) -> tuple[Any, ...]:
        if family_v not in FAMILIES:
            return gr.skip(), gr.skip()
        return gr.Radio(choices=vary_choices(family_v), value="optimizer"), *pick_vary(family_v, "optimizer")

    def pick_vary(family_v: str, vary_v: str) -> tuple[Any, ...]:
        axes = AXES.get(family_v, {})
        if vary_v not in axes:
            return (gr.skip(),)
        return (gr.Textbox(value=", ".join(DEFAULT_VALUES[vary_v]), info=values_info(vary_v, axes[vary_v])),)

    def measure(family_v: Any, vary_v: Any, values_v: Any, steps_v: Any, batch_v: Any, seed_v: Any) -> str:
        """The pre-flight estimate: a probe builds the runs and times a few rounds here (cached)."""
        try:
            spec = spec_from(family_v, vary_v, values_v, steps_v, batch_v, seed_v)
            idle = service.manager.active_jobs() == 0
            return estimate_markdown(service.estimate(spec, probe.get_prober(), measure_now=idle))
        except LookupError:
            return t("lab.estimate_busy")
        except ValueError as err:
            return t("lab.estimate_failed", error=localize(str(err)))

    @user_errors
    def start_lab(family_v: Any, vary_v: Any, values_v: Any, steps_v: Any, batch_v: Any, seed_v: Any,
                  request: gr.Request) -> tuple[str, str]:
        spec = spec_from(family_v, vary_v, values_v, steps_v, batch_v, seed_v)
        probe.get_prober().cancel()  # the lab gets the CPU
        new_id = service.start(session_of(request), spec, client=sessions.client_address(request))
        return new_id, status_markdown(service.view(session_of(request), new_id))

    @user_errors
    def stop_lab(current: str | None, request: gr.Request) -> str:
        if not current:
            raise UserError(t("lab.no_lab"))
        return service.stop(session_of(request), current)

    @user_errors
    def save_run(current: str | None, run_v: Any, name_v: Any, changed: int, request: gr.Request) -> tuple[str, int]:
        if not current:
            raise UserError(t("lab.nothing_to_save"))
        index = validate.integer(run_v, t("lab.run"), low=1, high=MAX_RUNS) - 1
        folder = service.save(session_of(request), current, index, validate.text(name_v, t("lab.name"), max_chars=64),
                              shipped_names())
        return t("lab.saved", name=folder.name), (changed or 0) + 1

    def poll(current: str | None, last_seen: Any, request: gr.Request) -> tuple[Any, ...]:
        """Timer tick: redraw only what changed since the last tick."""
        outputs = 9 + 3 * MAX_RUNS
        try:
            session = session_of(request)
            current = current or service.latest(session)
            view = service.view(session, current) if current else None
        except ValueError:
            return (gr.skip(),) * outputs
        if view is None:
            return (gr.skip(),) * outputs
        key = [view["id"], view["version"]]
        if last_seen == key:
            return (gr.skip(),) * outputs
        runs, text_family = view["runs"], view["family"] == "gpt"
        images, shown_texts, shown = [], [], []
        for index in range(MAX_RUNS):
            run = runs[index] if index < len(runs) else None
            samples = run["samples"] if run else []
            last_text = run["texts"][-1] if run and run["texts"] else None
            label = t("lab.grid", label=run["label"], step=samples[-1]["step"] if samples else 0) if run else ""
            images.append(gr.Image(value=read_image(samples[-1]["image"]) if samples else None, label=label,
                                   visible=not text_family))
            shown_texts.append(gr.Textbox(value=last_text["text"] if last_text else "", visible=text_family,
                                          label=t("lab.grid", label=run["label"], step=last_text["step"])
                                          if run and last_text else (run["label"] if run else "")))
            shown.append(gr.Column(visible=run is not None))
        can_save = any(run["can_save"] for run in runs)
        return (view["id"], key, status_markdown(view),
                gr.LinePlot(curves(view, "loss"), label=t("lab.loss_plot", name=view["loss_name"])),
                gr.LinePlot(curves(view, "metric"), label=t(f"lab.metric.{view['metric_name']}")),
                *images, *shown_texts, *shown, summary_markdown(view),
                gr.Button(interactive=view["stage"] in ("queued", "starting", "running")),
                gr.Button(interactive=can_save),
                gr.Dropdown(choices=[(run["label"], i + 1) for i, run in enumerate(runs)]))

    # ---------------------------------------------------------------- wiring
    inputs = [family, vary, values, steps, batch, seed]
    probe_run = dict(fn=measure, inputs=inputs, outputs=estimate, show_progress="hidden", trigger_mode="always_last",
                     concurrency_limit=1, concurrency_id="finetune-probe", api_visibility="private")
    family.input(pick_family, family, [vary, values], api_visibility="private", queue=False).then(**probe_run)
    vary.input(pick_vary, [family, vary], values, api_visibility="private", queue=False).then(**probe_run)
    gr.on([values.submit, steps.input, batch.input], **probe_run)
    if this_tab is not None and hasattr(this_tab, "select"):
        this_tab.select(**probe_run)
    started = start.click(start_lab, inputs, [lab_id, status], api_visibility="private", concurrency_limit=None)
    link.capture(started, {"family": family, "vary": vary, "values": values, "steps": steps, "batch": batch,
                           "seed": seed})
    stop.click(stop_lab, lab_id, saved_note, api_visibility="private", concurrency_limit=None)
    save.click(save_run, [lab_id, run_pick, name, ctx.models_changed], [saved_note, ctx.models_changed],
               api_visibility="private")
    poll_outputs = [lab_id, seen, status, loss_plot, metric_plot, *grids, *texts, *columns, summary, stop, save,
                    run_pick]
    timer.tick(poll, [lab_id, seen], poll_outputs, show_progress="hidden", api_visibility="private", queue=False)
    for fn, api_name in zip(api(service), ("lab_start", "lab_status", "lab_stop", "lab_save")):
        gr.api(fn, api_name=api_name)
