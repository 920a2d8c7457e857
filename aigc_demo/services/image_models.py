"""The Image tab's models, best-that-runs-now first, and the one call that makes images with any of them.

Why: a fresh start offline must draw something from the tab's default. The picker lists, in order:
text-to-image pipelines whose files are here (a folder, a downloaded hub model); hub models that can
be fetched now (online, and suited to this device: SD-Turbo on a CPU, not SDXL-Turbo); our own
digit models (diffusion, GAN), which draw digits from a prompt of digits or number words; then the
hub models that cannot run here now, each with the reason (not downloaded, its size, offline, needs
a GPU). The first entry is the default. Everything here reads the disk and the offline flag only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_demo.catalog import ModelSpec
from aigc_demo.hub import hub_offline, is_local_ref
from aigc_demo.services.availability import hub_download_gb, on_cuda as device_is_cuda
from aigc_demo.services.digits_image import DIGIT_FAMILIES, digit_defaults, digit_family, generate_digit_images
from aigc_demo.services.gallery import picker_ref, picker_specs
from aigc_demo.services.imagegen import ImageBatch, ImageSettings, generate_images, model_defaults

READY, FETCH, OURS, NOT_READY = 0, 1, 2, 3  # picker order


@dataclass(frozen=True)
class ImageModel:
    """One entry of the Image tab's picker."""

    spec: ModelSpec
    ref: str  # the id the picker lists (never a server path)
    ours: bool  # one of our digit models: draws digits from digits / number words
    rank: int  # READY, FETCH, OURS or NOT_READY
    why: str = ""  # for NOT_READY / FETCH hub models: "offline", "needs_gpu" or "download"
    download_gb: float | None = None  # what Generate first downloads (the fp16 files on CUDA)

    @property
    def ready(self) -> bool:
        """Generate makes a picture now, without a download."""
        return self.rank in (READY, OURS)


def _rank(spec: ModelSpec, offline: bool, on_cuda: bool) -> tuple[int, str]:
    if spec.source != "hub":
        return READY, ""
    if spec.cached:
        return READY, ""
    if offline:
        return NOT_READY, "offline"
    if spec.suits == "cuda" and not on_cuda:
        return NOT_READY, "needs_gpu"
    return FETCH, "download"


def image_models(weights_dir: str | Path, user_dirs: Any = None) -> list[ImageModel]:
    """Every model the Image tab can list, best-that-runs-now first (the first is the default)."""
    offline, on_cuda = hub_offline(), device_is_cuda()
    found = []
    for spec in picker_specs(weights_dir, "image", user_dirs, families=("diffusion",)):
        rank, why = _rank(spec, offline, on_cuda)
        size = hub_download_gb(spec.id, on_cuda) if spec.source == "hub" else None
        found.append(ImageModel(spec, picker_ref(spec, user_dirs), False, rank, why, size))
    for spec in picker_specs(weights_dir, "digits", user_dirs, families=DIGIT_FAMILIES):
        if spec.task == "image-generation" and spec.folder and digit_family(spec.folder):
            found.append(ImageModel(spec, picker_ref(spec, user_dirs), True, OURS))
    # Among ours the GAN comes first: the diffusion model's digits score better (FID 1.99x against 3.02x
    # the floor, their cards), but the GAN draws them far faster on a CPU (one pass against 16 UNet
    # calls per digit), which is what a visitor typing a prompt waits for.
    return sorted(found, key=lambda m: (m.rank, m.ours and m.spec.family != "gan"))


def default_model(models: list[ImageModel]) -> ImageModel | None:
    """The entry Generate runs when the visitor picks nothing: the first that runs here now."""
    return models[0] if models else None


def defaults_for(ref: str) -> dict[str, Any]:
    """Where the sliders start for a resolved reference (a folder or a hub id)."""
    family = digit_family(ref) if ref and is_local_ref(ref) else None
    return digit_defaults(ref, family) if family else model_defaults(ref)


def make_images(ref: str, settings: ImageSettings, **options: Any) -> ImageBatch:
    """Images for a resolved reference: our digit models draw the digits the prompt names; any
    other model is a diffusers pipeline (imagegen). `options` are generate_images' keywords."""
    family = digit_family(ref) if is_local_ref(ref) else None
    if family:
        options.pop("on_download", None)
        options.pop("device", None)
        return generate_digit_images(ref, family, settings, **options)
    return generate_images(ref, settings, **options)
