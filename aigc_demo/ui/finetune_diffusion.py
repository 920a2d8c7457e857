"""The Fine-tune tab's settings for a diffusion base: preview sampler steps, the class of unlabelled images.

The diffusion model trains on the same data as the GAN (uploads, drawings, built-in sets); what it
adds is a "no digit" class (the one classifier-free guidance uses), which is where images without
a label go by default, and a sampler whose number of steps sets what a preview costs.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from aigc_demo.services import finetune as svc
from aigc_demo.ui import model_refs
from aigc_demo.ui.strings import t

NO_DIGIT = -1


def sampler_default(ref: str | None, family: str | None) -> int:
    """The sampler steps shown for a base: a diffusion model's own (0 for the other families, unused)."""
    if family != "diffusion" or not ref:
        return 0
    folder = model_refs.resolve_or_none(ref)
    if not folder:
        return 0
    try:
        return svc.preview_steps(svc.base_model(folder))
    except ValueError:
        return 0


def diffusion_settings(ref: str | None, family: str | None) -> tuple[Any, Any]:
    """The two controls, built where they are called (inside the diffusion settings column)."""
    sampler_steps = gr.Slider(0, svc.MAX_SAMPLER_STEPS, value=sampler_default(ref, family), step=1,
                              label=t("finetune.diffusion.sampler_steps"),
                              info=t("finetune.diffusion.sampler_info"), elem_id="finetune-sampler-steps")
    unlabelled = gr.Dropdown([(t("finetune.diffusion.no_digit"), NO_DIGIT)] + [(str(d), d) for d in range(10)],
                             value=NO_DIGIT, label=t("finetune.diffusion.unlabelled"),
                             info=t("finetune.diffusion.unlabelled_info"), elem_id="finetune-diffusion-unlabelled")
    return sampler_steps, unlabelled
