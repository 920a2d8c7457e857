"""What the Fine-tune tab writes about a job and its estimate: plain text, no widgets built here."""

from __future__ import annotations

import math
from pathlib import Path

from aigc_demo.services.finetune_probe import Estimate
from aigc_demo.services.job_records import JobView
from aigc_demo.ui.strings import t

TEXT_FAMILIES = ("gpt", "lora")


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "…"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def without_status_word(status_word: str, message: str) -> str:
    """The message minus a leading repeat of the status word ('Stopped: Stopped: ...' -> '...')."""
    text = (message or "").strip()
    word = status_word.strip().lower()
    while word and text.lower().startswith(word):
        text = text[len(word):].lstrip(" :-–—·").strip()
    return text


def status_markdown(view: JobView | None) -> str:
    """Progress as text: status, stage, step, ETA, speed, device, queue position, errors."""
    if view is None:
        return t("finetune.no_job")
    word = t(f"finetune.status.{view.status}")
    message = without_status_word(word, view.message)
    lines = [t("finetune.status_line", status=word, message=message, job=view.id) if message
             else t("finetune.status_word_line", status=word, job=view.id)]
    if view.step or view.status in ("running", "stopping"):
        percent = 100.0 * view.step / max(view.total_steps, 1)
        unit = t("finetune.tokens") if view.family in TEXT_FAMILIES else t("finetune.samples")
        lines.append(t("finetune.progress_line", step=view.step, total=view.total_steps, percent=percent,
                       eta=duration(view.eta_s) if view.status == "running" else "-",
                       sps=view.steps_per_s, ips=view.items_per_s, unit=unit,
                       device=view.device or "?"))
        lines.append(f'<progress class="aigc-progress" value="{view.step}" max="{max(view.total_steps, 1)}">'
                     f"{percent:.0f}%</progress>")
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


def estimate_markdown(estimate: Estimate) -> str:
    """'About 1 min 20 s: 2 s to start + 60 steps x 1.1 s + 4 samples x 0.5 s · peak memory 480 MB'."""
    text = t("finetune.estimate", total=duration(estimate.total_s), startup=duration(estimate.startup_s),
             steps=estimate.steps, per_step=estimate.seconds_per_step, previews=estimate.previews,
             preview=estimate.preview_s, mb=estimate.peak_mb, timed=estimate.steps_timed)
    if estimate.total_s > 120:
        text += "\n\n" + t("finetune.estimate_fit", steps=estimate.steps_in_90s)
    return text
