"""What the Lab tab writes and plots about a lab: status, estimate, curves, sentences. No widgets.

The sentences at the end are built from the measured values in the lab's view (services/lab.py):
each run's last metric, where it started, and where a run diverged; nothing here is made up.
"""

from __future__ import annotations

import math
from typing import Any

from aigc_demo.training.lab_spec import NUMBER_RANGES
from aigc_demo.ui.finetune_status import duration
from aigc_demo.ui.strings import t


def values_info(axis: str, choices: tuple[str, ...] | None) -> str:
    """The hint under the values box: the choices of `axis`, or its range."""
    if choices:
        return t("lab.values_choices", choices=", ".join(choices))
    low, high = NUMBER_RANGES[axis]
    return t("lab.values_numbers", low=f"{low:g}", high=f"{high:g}")


def estimate_markdown(figures: dict[str, Any]) -> str:
    return t("lab.estimate", total=duration(figures["total_s"]), startup=duration(figures["startup_s"]),
             steps=figures["steps"], per_round=figures["seconds_per_round"], runs=figures["runs"],
             reports=figures["reports"], report=figures["report_s"], mb=figures["peak_mb"],
             timed=figures["rounds_timed"])


def status_markdown(view: dict[str, Any] | None) -> str:
    """Status, place in line, progress bar, the lock-step promise, errors."""
    if view is None:
        return t("lab.no_lab")
    what = t(f"lab.family.{view['family']}") + " · " + t(f"lab.axis.{view['vary']}") + ": " + \
        ", ".join(run["label"] for run in view["runs"])
    lines = [t("lab.status_line", status=t(f"lab.status.{view['status']}"), lab=view["id"], what=what)]
    if view["queue_position"]:
        lines.append(t("lab.queue_line", position=view["queue_position"]))
    if view["step"] or view["status"] == "running":
        total = max(int(view["total_steps"]), 1)
        lines.append(t("lab.progress_line", step=view["step"], total=total, sps=view["steps_per_s"],
                       eta=duration(view["eta_s"]) if view["status"] == "running" else "-",
                       device=view["device"] or "?"))
        lines.append(f'<progress class="aigc-progress" value="{view["step"]}" max="{total}">'
                     f'{100 * view["step"] / total:.0f}%</progress>')
    lines.append(t("lab.same_start", seed=view["seed"], axis=t(f"lab.axis.{view['vary']}")))
    if view["error"]:
        lines.append(t("lab.error_line", error=view["error"]))
    return "\n\n".join(lines)


def curves(view: dict[str, Any] | None, key: str) -> Any:
    """A long table (step, value, run) of every run's `key` points ("loss" or "metric"), for a LinePlot."""
    import pandas as pd

    rows = []
    for run in (view or {}).get("runs", []):
        rows += [{"step": p["step"], "value": p["value"], "run": run["label"]} for p in run[key]
                 if isinstance(p["value"], (int, float)) and math.isfinite(p["value"])]
    return pd.DataFrame(rows, columns=["step", "value", "run"])


def summary_markdown(view: dict[str, Any] | None) -> str:
    """After the lab: one sentence per run from its measured values, the best run, the explanation."""
    if view is None or view["status"] not in ("done", "stopped"):
        return ""
    name, higher = view["metric_name"], view["metric_higher_is_better"]
    lines, scored = [], []
    for run in view["runs"]:
        if run["diverged_at"] is not None:
            lines.append(t("lab.sentence.diverged", label=run["label"], step=run["diverged_at"]))
            continue
        points = run["metric"]
        if len(points) < 2:
            continue
        lines.append(t(f"lab.sentence.{name}", label=run["label"], value=points[-1]["value"],
                       steps=points[-1]["step"], start=points[0]["value"]))
        scored.append((points[-1]["value"], run["label"]))
    if len(scored) > 1:
        best = max(scored) if higher else min(scored)
        lines.append(t("lab.best", label=best[1]))
    if not lines:
        return ""
    body = "\n".join(f"- {line}" for line in lines)
    return f"### {t('lab.summary_title')}\n\n{body}\n\n{t('lab.explain.' + view['vary'])}"
