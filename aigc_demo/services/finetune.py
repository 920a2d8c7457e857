"""What a fine-tune starts from: the base model, the visitor's data and the settings, checked.

The tab and the API pass plain values here and get plain values back; the job manager
(services/jobs.py) takes what these functions return and runs it. Everything a visitor sent
that cannot train is refused with a UserError that says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from aigc_demo.catalog import hub_entry, validate_repo_id
from aigc_demo.errors import UserError
from aigc_demo.hub import cached_snapshot, hub_offline, is_local_ref, missing_message
from aigc_demo.modelcard import GALLERY_KEY, read_card_metadata
from aigc_demo.services.finetune_data import (
    DATASET_TITLES,
    DataLimits,
    ImageSet,
    builtin_folder,
    load_images,
    load_text,
    text_summary,
)
from aigc_demo.services.model_ids import listed_id
from aigc_demo.services.validate import identifier
from aigc_demo.training import finetune as training
from aigc_demo.training.finetune import FinetuneSettings

SETTING_NAMES = tuple(f.name for f in fields(FinetuneSettings))
DEFAULT_SAMPLER_STEPS = 10  # DiffusionConfig.sampling_steps: a diffusion folder without its own
MAX_SAMPLER_STEPS = training.MAX_SAMPLER_STEPS

# ---------------------------------------------------------------- data the job trains on


@dataclass
class PreparedData:
    """A visitor's data, checked and ready to hand to a job."""

    kind: str  # images | builtin | text
    summary: str
    images: ImageSet | None = None
    text: str | None = None
    folder: str | None = None  # builtin
    dataset: str | None = None  # builtin

    def fits(self, family: str) -> None:
        wants_text = family in ("gpt", "lora")
        if wants_text and self.kind != "text":
            raise UserError("This model learns from text: paste text or upload a .txt file.")
        if not wants_text and self.kind == "text":
            raise UserError("This model learns from images: upload images, draw some, or pick a built-in set.")


def prepare_text(pasted: str | None, file: str | None, limits: DataLimits | None = None) -> PreparedData:
    text = load_text(pasted, file, limits)
    source = f"uploaded file {Path(file).name}" if file else "pasted text"
    return PreparedData("text", text_summary(text, source), text=text)


def prepare_images(files: list[str], limits: DataLimits | None = None) -> PreparedData:
    images = load_images(files, limits, source="uploaded images")
    return PreparedData("images", images.summary(), images=images)


def prepare_builtin(dataset: str, allow_download: bool = True, limit: int = 0) -> PreparedData:
    folder = builtin_folder(dataset, allow_download)
    summary = f"{DATASET_TITLES[dataset]} training split" + (f", first {limit} images" if limit else " (60,000 images)")
    return PreparedData("builtin", summary, folder=str(folder), dataset=dataset)


# ---------------------------------------------------------------- base models

@dataclass
class BaseModel:
    ref: str  # folder or hub id
    family: str  # gan | vae | gpt | lora | diffusion
    title: str


def base_model(ref: str) -> BaseModel:
    """What `ref` (a weights folder or a hub id) is, and how it fine-tunes."""
    ref = identifier(ref, "The model to fine-tune", required=False)
    if not ref:
        raise UserError("Pick a model to fine-tune first.")
    if is_local_ref(ref):
        folder = Path(ref)
        if not (folder / "config.json").is_file():
            raise UserError(f"{folder.name} is not a weights folder (config.json is missing).")
        gallery = read_card_metadata(folder).get(GALLERY_KEY) or {}
        family = str(gallery.get("family", ""))
        title = str(gallery.get("title") or folder.name)
        if family in ("gan", "vae", "gpt"):
            return BaseModel(str(folder), family, title)
        if family == "causal-lm":
            return BaseModel(str(folder), "lora", title)
        if family == "diffusion" and is_digit_diffusion(folder, gallery):
            return BaseModel(str(folder), "diffusion", title)
        raise UserError(f"{title} ({family or 'unknown family'}) cannot be fine-tuned here: pick a GAN, a VAE, "
                        "a digit diffusion model, a small GPT or a causal language model.")
    repo_id = validate_repo_id(ref)
    entry = hub_entry(repo_id)
    if entry is not None and entry.family != "causal-lm":
        raise UserError(f"{entry.title} cannot be fine-tuned here: only causal language models (LoRA).")
    if cached_snapshot(repo_id) is None and hub_offline():
        raise UserError(missing_message(repo_id, "this machine is offline and the model is not downloaded"))
    return BaseModel(repo_id, "lora", entry.title if entry else repo_id)


def is_digit_diffusion(folder: Path, gallery: dict[str, Any]) -> bool:
    """Our class-conditional digit diffusion model (diffusers `unet/` + `scheduler/`, Digits tab), not
    a text-to-image pipeline, which is also of the diffusion family."""
    return (gallery.get("tab") == "digits" and (folder / "unet" / "config.json").is_file()
            and (folder / "scheduler" / "scheduler_config.json").is_file())


def preview_steps(base: BaseModel) -> int:
    """The sampler steps a diffusion base draws with by default (its config.json): what its previews
    use unless the visitor picks another number."""
    try:
        found = json.loads((Path(base.ref) / "config.json").read_text(encoding="utf-8"))
        steps = int(found.get("sampling_steps", DEFAULT_SAMPLER_STEPS))
    except (OSError, ValueError, TypeError, AttributeError):
        return DEFAULT_SAMPLER_STEPS
    return steps if 1 <= steps <= MAX_SAMPLER_STEPS else DEFAULT_SAMPLER_STEPS


def finetunable(specs: list[Any], session: str | None = None) -> list[tuple[str, str]]:
    """(label, id) for the catalog entries that can be fine-tuned: our GAN/VAE/GPTs and digit diffusion
    models, causal LMs (LoRA). Ids as services/model_ids.py lists them (never a server path)."""
    choices = []
    for spec in specs:
        if spec.error:
            continue
        ours = spec.family in ("gan", "vae", "gpt") or (spec.family == "diffusion" and spec.tab == "digits")
        if ours and spec.folder:
            choices.append((spec.title + (" (yours)" if spec.source == "user" else ""), listed_id(spec, session)))
        elif spec.family == "causal-lm":
            label = f"{spec.title} (Hub, LoRA)" if spec.source == "hub" else f"{spec.title} (LoRA)"
            choices.append((label, listed_id(spec, session)))
    return choices


# ---------------------------------------------------------------- settings

def default_settings(family: str) -> FinetuneSettings:
    """The starting settings the tab shows for a family."""
    return training.default_settings(family)


def check_settings(settings: FinetuneSettings, max_steps: int = 0, family: str | None = None) -> FinetuneSettings:
    """`settings` if they can train `family` on this server; UserError with what to change otherwise."""
    try:
        settings.check(max_steps, family)
    except UserError:
        raise
    except ValueError as err:  # every refusal of FinetuneSettings.check is written for the visitor
        raise UserError(str(err)) from None
    return settings


def make_settings(values: dict[str, Any], max_steps: int = 0, family: str | None = None) -> FinetuneSettings:
    """Training settings from plain values (a setting left out keeps the family's default, or the
    general default without a family), checked against this server's `max_steps`."""
    unknown = set(values) - set(SETTING_NAMES)
    if unknown:
        raise ValueError(f"unknown fine-tune settings: {', '.join(sorted(unknown))}")
    start = default_settings(family) if family else FinetuneSettings()
    return check_settings(replace(start, **values), max_steps, family)
