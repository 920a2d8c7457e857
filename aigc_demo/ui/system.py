"""The System tab: device, libraries, loaded models (with unload) and hub reachability."""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.services import validate
from aigc_demo.errors import UserError
from aigc_demo.services.system import admin_enabled, check_admin, device_summary, system_report, unload_model
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t


def describe_device(device: dict[str, Any]) -> str:
    """'NVIDIA H200 (139 GB, bfloat16)', 'Apple MPS (float32)' or 'CPU (2 threads, float32)'."""
    if device["device"] == "cuda":
        return t("system.cuda_desc", gpu=device["gpu_name"], count=device["gpu_count"],
                 total=device["memory_total_gb"], free=device["memory_free_gb"], dtype=device["dtype"])
    if device["device"] == "mps":
        return f"Apple MPS ({device['dtype']})"
    return t("system.cpu_desc", threads=device["cpu_threads"], dtype=device["dtype"])


def device_badge() -> str:
    return t("app.device_badge", device=describe_device(device_summary()))


def _hub_line(hub: dict[str, Any]) -> str:
    if hub["reachable"] is None:
        detail = localize(hub["detail"])
        return t("system.hub_user", detail=detail) if hub["offline_mode"] else t("system.hub_online_user")
    return t("system.hub_reachable") if hub["reachable"] else t("system.hub_offline", detail=localize(hub["detail"]))


def report_markdown(report: dict[str, Any]) -> str:
    """Device, machine and hub reachability."""
    device = report["device"]
    return "\n".join([
        f"### {t('system.device')}", f"**{describe_device(device)}**", "",
        t("system.machine", python=report["python"], platform=f"`{report['platform']}`", cpus=report["cpu_count"],
          memory=report["process_memory_mb"], processes=report["model_processes"],
          budget=report["memory_budget_mb"]),
        "", f"### {t('system.hub')}", _hub_line(report["hub"]),
    ])


def libraries_markdown(report: dict[str, Any]) -> str:
    lines = [f"### {t('system.libraries')}", f"| {t('system.col_library')} | {t('system.col_version')} |",
             "| --- | --- |"]
    lines += [f"| {name} | {version} |" for name, version in report["libraries"].items()]
    return "\n".join(lines)


def loaded_headers() -> list[str]:
    return [t(f"system.col_{name}") for name in ("model", "device", "memory", "load_time", "idle")]


def loaded_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [[m["key"], m["device"], m["memory_mb"], m["load_seconds"], m["idle_seconds"]]
            for m in report["loaded_models"]]


def build_system_tab(ctx: AppContext) -> None:
    build_lead("system")
    refresh = gr.Button(t("system.refresh"), size="sm")
    with gr.Row():
        summary = gr.Markdown(elem_id="system-summary")
        libraries = gr.Markdown(elem_id="system-libraries")
    gr.Markdown(f"### {t('system.loaded')}")
    none_loaded = gr.Markdown(t("system.none_loaded"), visible=False)
    loaded = gr.Dataframe(headers=loaded_headers(),
                          interactive=False, elem_id="system-loaded")
    admin = admin_enabled()  # without a token the admin controls are not shown
    with gr.Row(visible=admin, elem_id="system-admin"):
        token = gr.Textbox(label=t("system.admin_token"), type="password", scale=2,
                           elem_id="system-admin-token")
        pick = gr.Dropdown([], label=t("system.unload_pick"), scale=3)
        unload = gr.Button(t("system.unload"), scale=1)
        unload_all = gr.Button(t("system.unload_all"), variant="stop", scale=1)

    def refresh_view() -> tuple[Any, ...]:
        report = system_report()
        keys = [m["key"] for m in report["loaded_models"]]
        return (report_markdown(report), libraries_markdown(report),
                gr.Dataframe(value=loaded_rows(report), headers=loaded_headers()),
                gr.Markdown(visible=not keys), gr.Dropdown(choices=keys, value=None))

    @user_errors
    def unload_one(key: Any, admin_token: Any) -> tuple[Any, ...]:
        """Unload one loaded model (operator only: needs the admin token)."""
        check_admin(admin_token)
        key = validate.identifier(key, "The model", max_chars=1000, required=False)
        if not key:
            raise UserError(t("system.nothing_to_unload"))
        gr.Info(localize(unload_model(key)))
        return refresh_view()

    @user_errors
    def unload_everything(admin_token: Any) -> tuple[Any, ...]:
        """Unload every model (operator only: needs the admin token)."""
        check_admin(admin_token)
        gr.Info(localize(unload_model("all")))
        return refresh_view()

    outputs = [summary, libraries, loaded, none_loaded, pick]
    ctx_tab = gr.context.Context.block  # the enclosing gr.Tab: refresh when it is opened
    if isinstance(ctx_tab, gr.Tab):
        ctx_tab.select(refresh_view, outputs=outputs, api_visibility="private")
    refresh.click(refresh_view, outputs=outputs, api_name="system_refresh")
    unload.click(unload_one, inputs=[pick, token], outputs=outputs, api_name="unload")
    unload_all.click(unload_everything, inputs=token, outputs=outputs, api_name="unload_all")

    def system_api() -> dict[str, Any]:
        """The System panel's data as JSON."""
        return system_report()

    gr.api(system_api, api_name="system")
