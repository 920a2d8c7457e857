"""Fine-tuning the small models on a visitor's data: the TrainTasks and the job process's entry.

Each family reuses its trainer (GanTask, VaeTask, GPTTask) and changes only what fine-tuning
needs: start from a weights folder instead of random weights, read the user's images (an `.npz`
written by services/finetune_data.py) or a built-in IDX set, and export a folder whose model card
records the base model, the data, the settings and the final losses. Hub and other GPT-2-style
causal LMs train LoRA adapters with `peft` (LoraTask) and are saved merged, so every tab loads
them as plain causal LMs.

`run_job` is what the job process runs (multiprocessing, spawn): it sends plain-dict progress
events (previews as PNG bytes or text) through a queue and never lets an exception escape
silently. Nothing here imports gradio.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.training import digits_common as common
from aigc_demo.training.engine import (
    OPTIMIZERS,
    ProgressEvent,
    TrainResult,
    TrainSettings,
    run_training,
)

FAMILIES = ("gan", "vae", "gpt", "lora")
MAX_LR = 1.0  # above this every family here diverges at once


@dataclass
class FinetuneSettings:
    """What a visitor chooses. Defaults show a visible change within a minute on a laptop CPU."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 2e-4
    optimizer: str = "adam"  # adam | rmsprop | sgd
    seed: int = 0
    gan_loss: str = "nsgan"  # nsgan | hinge | wgan-gp
    kl_weight: float = 1.0  # VAE: weight of the KL term
    sample_every: int = 25  # a preview every N steps
    log_every: int = 5
    block_size: int = 128  # GPT / LoRA context in tokens (capped by the model and the data)
    lora_rank: int = 8
    unlabelled_digit: int = 0  # GAN: the class given to images whose file name carries no digit

    def check(self, max_steps: int = 0) -> None:
        """Refuse settings that cannot train, with a message a visitor can act on."""
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"Steps must be a whole number of at least 1 (got {self.steps}).")
        if max_steps and self.steps > max_steps:
            raise ValueError(f"Steps can be at most {max_steps} on this server (got {self.steps}).")
        if not 1 <= self.batch_size <= 1024:
            raise ValueError(f"Batch size must be between 1 and 1024 (got {self.batch_size}).")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"The learning rate must be a positive number (got {self.lr}): "
                             "with 0 nothing would change. Try 2e-4 for a GAN, 1e-3 for a VAE.")
        if self.lr > MAX_LR:
            raise ValueError(f"A learning rate of {self.lr:g} makes training diverge at once: "
                             f"use at most {MAX_LR:g} (2e-4 for a GAN, 1e-3 for a VAE, 3e-4 for a GPT).")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"The optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r}).")
        from aigc_demo.training.losses import (
            GAN_LOSSES,  # imports torch: only when checking
        )

        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"The GAN loss must be one of {', '.join(GAN_LOSSES)} (got {self.gan_loss!r}).")
        if not (math.isfinite(self.kl_weight) and 0 <= self.kl_weight <= 100):
            raise ValueError(f"The KL weight must be between 0 and 100 (got {self.kl_weight}).")
        if self.sample_every < 0 or self.log_every < 1:
            raise ValueError("Preview and log intervals must be positive.")
        if not 8 <= self.block_size <= 4096:
            raise ValueError(f"The context length must be between 8 and 4096 tokens (got {self.block_size}).")
        if not 1 <= self.lora_rank <= 256:
            raise ValueError(f"The LoRA rank must be between 1 and 256 (got {self.lora_rank}).")
        if not 0 <= self.unlabelled_digit <= 9:
            raise ValueError(f"The digit for unlabelled images must be 0-9 (got {self.unlabelled_digit}).")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"The seed must be between 0 and 2^32 - 1 (got {self.seed}).")


# Sized from the speed probe (services/finetune_probe.py) on a shared 2-core CPU with one torch thread,
# under load: GAN 1.6 s/step at batch 16, VAE 0.43 s/step at batch 32, char GPT 5.4 s/step at
# batch 4 x 64 tokens. An idle laptop core is several times faster: these runs take 1-2 minutes there.
# The tab shows the measured estimate for this machine before Start, and how many steps fit in 90 s.
DEFAULTS: dict[str, dict[str, Any]] = {
    "gan": dict(steps=150, batch_size=16, lr=2e-4, sample_every=25),
    "vae": dict(steps=150, batch_size=32, lr=5e-4, sample_every=25),
    "gpt": dict(steps=60, batch_size=4, lr=3e-4, sample_every=20, block_size=64),
    "lora": dict(steps=30, batch_size=2, lr=1e-3, sample_every=10, block_size=64),
}


def default_settings(family: str) -> FinetuneSettings:
    """The starting settings the tab shows for a family."""
    if family not in DEFAULTS:
        raise ValueError(f"Fine-tuning supports {', '.join(FAMILIES)} models (got {family!r}).")
    return FinetuneSettings(**DEFAULTS[family])


@dataclass
class JobRequest:
    """Everything the job process needs, as plain values (it is pickled for a spawned process)."""

    job_id: str
    family: str  # gan | vae | gpt | lora
    base: str  # a weights folder, or a hub id (lora)
    base_title: str
    data: dict[str, Any]  # {"kind": "images", "path": npz} | {"kind": "builtin", "dir", "dataset"} | {"kind": "text", "path"}
    data_summary: str
    settings: FinetuneSettings
    out_dir: str
    resume: bool = False
    threads: int = 0  # torch threads in the job process (0: torch's default)
    cpu: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def train_settings(req: JobRequest, checkpoint_every: int = 0) -> TrainSettings:
    s = req.settings
    return TrainSettings(steps=s.steps, batch_size=s.batch_size, lr=s.lr, optimizer=s.optimizer,
                         seed=s.seed, out_dir=req.out_dir, log_every=s.log_every,
                         sample_every=s.sample_every, checkpoint_every=checkpoint_every,
                         resume=req.resume, cpu=req.cpu, progress_bar=False)


# ---------------------------------------------------------------- data for the digit models

def load_digits(data: dict[str, Any], device: Any) -> Any:
    """The training images as a DigitsData on `device` (labels -1 mean: unlabelled)."""
    import torch

    from aigc_demo.data.idx import DigitsData

    if data["kind"] == "builtin":
        return DigitsData.load(data["dir"], "train", device, int(data.get("limit", 0)), data["dataset"])
    if data["kind"] != "images":
        raise ValueError(f"A digit model trains on images, not {data['kind']}")
    with np.load(data["path"]) as stored:
        images, labels = stored["images"], stored["labels"]
    return DigitsData(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).to(device),
                      torch.from_numpy(labels.astype(np.int64)).to(device))


def _final_loss_metrics(losses: dict[str, float], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"name": name, "value": round(float(losses[name]), 4), "lower_is_better": True,
             "note": ("validation loss on the held-out 10% of the text" if name.startswith("val")
                      else "final training loss (last logged step), measured while fine-tuning")}
            for name in names if name in losses and math.isfinite(losses[name])]


def finetune_card_body(req: JobRequest, result: TrainResult, what: str, extra: list[str] | None = None) -> str:
    """Model card text: base model, data, settings and final losses."""
    s = req.settings
    lines = [
        f"# {req.base_title}, fine-tuned", "", what, "",
        "## How it was made", "",
        f"- Base model: {req.base_title} (`{req.base}`)",
        f"- Data: {req.data_summary}",
        f"- Steps: {result.steps_done} of {s.steps}" + (" (stopped early by the user)" if result.stopped else "")
        + f", batch size {s.batch_size}, {result.seconds:.1f} s of training ({result.steps_per_s:.2f} steps/s)",
        f"- Optimizer: {s.optimizer}, learning rate {s.lr:g}, seed {s.seed}",
        "- Final losses: " + ", ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items() if k != "lr"),
        *(extra or []),
        "", "Made in the AIGC Gallery's Fine-tune tab; full settings in `finetune.json`.",
    ]
    return "\n".join(lines)


def write_finetune_record(out_dir: Path, req: JobRequest, result: TrainResult, extra: dict[str, Any] | None = None) -> None:
    record = {"base_model": req.base, "base_title": req.base_title, "family": req.family,
              "data": req.data_summary, "settings": asdict(req.settings),
              "steps_done": result.steps_done, "stopped_early": result.stopped,
              "seconds": round(result.seconds, 1), "steps_per_s": round(result.steps_per_s, 3),
              "items_per_s": round(result.items_per_s, 1),
              "final_losses": {k: round(v, 5) for k, v in result.final_losses.items()}, **(extra or {})}
    (Path(out_dir) / "finetune.json").write_text(json.dumps(record, indent=2, default=str))


def _present_labels(labels: Any, fallback: int) -> Any:
    """Unlabelled (-1) images get the visitor's chosen digit."""
    return labels.masked_fill(labels < 0, fallback)


# ---------------------------------------------------------------- GAN

def _read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ValueError(f"{folder} has no config.json: it is not a weights folder")
    return json.loads(path.read_text())


def make_gan_task(req: JobRequest) -> Any:
    from aigc_demo.training.gan import GanConfig, GanTask

    g_cfg = _read_config(req.base)
    d_folder = Path(req.base) / "discriminator"
    d_cfg = _read_config(d_folder) if (d_folder / "config.json").is_file() else {}
    s = req.settings
    config = GanConfig(data_dir="", loss=s.gan_loss, latent_dim=int(g_cfg["z_dim"]),
                       g_channels=int(g_cfg.get("channels", 32)), d_channels=int(d_cfg.get("channels", g_cfg.get("channels", 32))),
                       embed_dim=int(g_cfg.get("embed_dim", 32)), spectral_norm=bool(d_cfg.get("spectral_norm", True)),
                       n_critic=1, ema_decay=0.9, lr_schedule="constant", warmup_steps=0)

    class GanFinetuneTask(GanTask):
        """GanTask starting from a shipped generator (and its discriminator when it has one)."""

        def build(self, accelerator: Any) -> None:
            import copy

            import torch

            from aigc_demo.models.gan import Discriminator, Generator
            from aigc_demo.training.engine import make_optimizer
            from aigc_demo.training.losses import gan_losses

            cfg, st = self.config, self.settings
            self.accelerator = accelerator
            data = load_digits(req.data, accelerator.device)
            data.labels = _present_labels(data.labels, req.settings.unlabelled_digit)
            self.data = data
            G = Generator.from_pretrained(req.base).float().train()
            if (d_folder / "model.safetensors").is_file():
                D = Discriminator.from_pretrained(str(d_folder)).float().train()
                self.fresh_discriminator = False
            else:  # a generator without its discriminator: D starts from scratch
                D = Discriminator(num_classes=G.num_classes, channels=cfg.d_channels,
                                  spectral_norm=cfg.spectral_norm)
                self.fresh_discriminator = True
            betas = (cfg.beta1, cfg.beta2)
            opt_g = make_optimizer(st.optimizer, G.parameters(), st.lr, betas=betas)
            opt_d = make_optimizer(st.optimizer, D.parameters(), st.lr, betas=betas)
            self.G, self.D, self.opt_g, self.opt_d = accelerator.prepare(G, D, opt_g, opt_d)
            self.ema = copy.deepcopy(G).to(accelerator.device).eval().requires_grad_(False)
            accelerator.register_for_checkpointing(self.ema)
            self.d_loss_fn, self.g_loss_fn = gan_losses(cfg.loss)
            present = sorted(set(int(v) for v in torch.unique(data.labels).tolist()))
            self.present = present
            self.fixed_z = torch.randn(64, cfg.latent_dim, generator=torch.Generator().manual_seed(1234))
            self.fixed_y = torch.tensor([present[i % len(present)] for i in range(64)])

        def _generator_for_export(self) -> Any:
            """The EMA generator with batch-norm statistics measured on 2,000 of its own outputs."""
            import copy

            import torch

            G = copy.deepcopy(self.ema).float().to(self.accelerator.device)
            bns = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            for m in bns:
                m.reset_running_stats()
                m.momentum = None
            G.train()
            gen = torch.Generator(device=self.accelerator.device).manual_seed(99)
            with torch.no_grad():
                for _ in range(8):
                    z = torch.randn(250, G.z_dim, device=self.accelerator.device, generator=gen)
                    y = torch.tensor(self.present, device=self.accelerator.device).repeat(250)[:250]
                    G(z, y)
            for m in bns:
                m.momentum = 0.1
            return G.eval()

        def preview(self) -> Any:
            import torch

            from aigc_demo.models.gan import to_uint8

            with torch.no_grad():
                images = self.ema(self.fixed_z.to(self.accelerator.device), self.fixed_y.to(self.accelerator.device))
            return common.preview_grid(to_uint8(images).cpu().numpy(), 8, 8)

        def export(self, out_dir: Path, result: TrainResult) -> None:
            import torch

            from aigc_demo.modelcard import write_model_card
            from aigc_demo.models.gan import to_uint8

            G = self._generator_for_export()
            common.save_module(G, out_dir, fp16=False)
            common.save_module(self.accelerator.unwrap_model(self.D), out_dir / "discriminator", fp16=True)
            with torch.no_grad():
                z = self.fixed_z.to(self.accelerator.device)
                y = self.fixed_y.to(self.accelerator.device)
                images = to_uint8(G(z, y)).cpu().numpy()
            common.save_png(common.grid_array(images, 8, 8), out_dir / "sample.png")
            write_finetune_record(out_dir, req, result, {"classes": self.present,
                                                         "fresh_discriminator": self.fresh_discriminator})
            body = finetune_card_body(req, result, (
                "A class-conditional DCGAN fine-tuned on your images. `model.safetensors` is the generator "
                "(EMA of the trained weights, batch-norm statistics recomputed), `discriminator/` the "
                "discriminator, kept so training can go on."),
                [f"- GAN loss: {self.config.loss}; classes in the data: {self.present}"
                 + ("; the discriminator started from scratch (the base had none)" if self.fresh_discriminator else "")])
            write_model_card(out_dir, gallery={
                "title": f"{req.base_title} (fine-tuned)", "task": "image-generation", "family": "gan",
                "tab": "digits", "sample": "sample.png",
                "metrics": _final_loss_metrics(result.final_losses, ("g_loss", "d_loss"))},
                body=body, tags=["gan", "fine-tuned"], library_name="pytorch")

    return GanFinetuneTask(config, train_settings(req, checkpoint_every=0))


# ---------------------------------------------------------------- VAE

def make_vae_task(req: JobRequest) -> Any:
    from aigc_demo.training.vae import VaeConfig, VaeTask

    v_cfg = _read_config(req.base)
    config = VaeConfig(data_dir="", latent_dim=int(v_cfg["latent_dim"]), channels=int(v_cfg.get("channels", 64)),
                       hidden=int(v_cfg.get("hidden", 512)), kl_weight=req.settings.kl_weight, kl_warmup=0.0,
                       lr_schedule="constant", warmup_steps=0)

    class VaeFinetuneTask(VaeTask):
        """VaeTask starting from a weights folder, on the visitor's images."""

        def build(self, accelerator: Any) -> None:
            from aigc_demo.models.vae import VAE
            from aigc_demo.training.engine import make_optimizer

            self.accelerator = accelerator
            self.data = load_digits(req.data, accelerator.device)
            model = VAE.from_pretrained(req.base).float().train()
            opt = make_optimizer(self.settings.optimizer, model.parameters(), self.settings.lr)
            self.model, self.opt = accelerator.prepare(model, opt)

        def export(self, out_dir: Path, result: TrainResult) -> None:
            import torch

            from aigc_demo.evaluation.eval_vae import write_vae_sample
            from aigc_demo.modelcard import write_model_card

            model = self.accelerator.unwrap_model(self.model).float().eval()
            device = self.accelerator.device
            common.save_module(model, out_dir, fp16=True)
            write_vae_sample(model, out_dir, device)
            if model.latent_dim == 2:  # the latent map's scatter: the training images' latent means
                x = self.data.images[:5000].float().div(255.0).round().to(device)
                with torch.no_grad():
                    mean = torch.cat([model.encode(x[i:i + 500])[0].float().cpu() for i in range(0, len(x), 500)])
                labels = self.data.labels[:5000].clamp(min=0).cpu().numpy().astype(np.uint8)
                np.savez_compressed(out_dir / "latents.npz", z=mean.numpy().astype(np.float16), labels=labels)
            write_finetune_record(out_dir, req, result)
            body = finetune_card_body(req, result, (
                f"A variational autoencoder with a {model.latent_dim}-D latent space, fine-tuned on your "
                "images. Stored in fp16."), [f"- KL weight: {self.config.kl_weight}"])
            write_model_card(out_dir, gallery={
                "title": f"{req.base_title} (fine-tuned)", "task": "image-generation", "family": "vae",
                "tab": "digits", "sample": "sample.png",
                "metrics": _final_loss_metrics(result.final_losses, ("recon", "kl"))},
                body=body, tags=["vae", "fine-tuned"], library_name="pytorch")

    return VaeFinetuneTask(config, train_settings(req, checkpoint_every=0))


# ---------------------------------------------------------------- our small GPTs (full fine-tune)

def _card_gallery(folder: str | Path) -> dict[str, Any]:
    from aigc_demo.modelcard import GALLERY_KEY, read_card_metadata

    try:
        return dict(read_card_metadata(folder).get(GALLERY_KEY) or {})
    except ValueError:
        return {}


def make_gpt_task(req: JobRequest) -> Any:
    from transformers import AutoConfig, AutoTokenizer

    from aigc_demo.models import tokenizers as toks
    from aigc_demo.models.gpt import context_window
    from aigc_demo.training.gpt import GPTSettings, GPTTask

    base_gallery = _card_gallery(req.base)
    tokenizer = AutoTokenizer.from_pretrained(req.base)
    preset = "shakespeare" if toks.is_char_level(tokenizer) else "python"
    text = Path(req.data["path"]).read_text(encoding="utf-8")
    block = fit_block(len(toks.encode(tokenizer, text)), req.settings.block_size,
                      context_window(AutoConfig.from_pretrained(req.base)))
    s = req.settings
    gpt = GPTSettings(data=req.data["path"], config=preset, name="", init_from=req.base, block_size=block,
                      val_fraction=0.1, warmup_steps=min(10, max(s.steps // 10, 0)),
                      # ~10 validation points per run, one batch each: about 3% of the training time
                      eval_every=max(10, s.steps // 10), eval_batches=1, keep_best=True,
                      sample_tokens=80)  # a preview every few steps must not cost more than the steps

    class GptFinetuneTask(GPTTask):
        """GPTTask from `--init-from`, with a card that says what it was fine-tuned from."""

        def export(self, out_dir: Path, result: TrainResult) -> None:
            from aigc_demo.modelcard import write_model_card

            super().export(out_dir, result)
            made = _card_gallery(out_dir)
            info = json.loads((out_dir / "training_info.json").read_text())
            write_finetune_record(out_dir, req, result, {"weights": info.get("weights"), "block_size": self.block})
            body = finetune_card_body(req, result, (
                "A small GPT (`transformers` GPT2LMHeadModel) fine-tuned on your text, all weights trained. "
                f"The exported weights are the {info.get('weights', 'final')} ones."),
                [f"- Context: {self.block} tokens; validation: the last 10% of the text",
                 "- Measured on the held-out 10%: " + ", ".join(
                     f"{m['name']} {m['value']} {m.get('unit', '')}".strip() for m in made.get("metrics", []))])
            metrics = list(made.get("metrics", [])) + _final_loss_metrics(result.final_losses, ("loss",))
            write_model_card(out_dir, gallery={
                "title": f"{req.base_title} (fine-tuned)", "task": base_gallery.get("task", "text-generation"),
                "family": "gpt", "tab": base_gallery.get("tab", "text"),
                "sample_text": made.get("sample_text", ""), "metrics": metrics},
                body=body, tags=["gpt2", "fine-tuned"], library_name="transformers", pipeline_tag="text-generation")

    return GptFinetuneTask(gpt, train_settings(req, checkpoint_every=0))


def fit_block(tokens: int, wanted: int, model_context: int, val_fraction: float = 0.1) -> int:
    """The context length: the wanted one, capped by the model and by the validation split."""
    val = int(tokens * val_fraction * 0.9)  # the split is made on characters: keep a margin
    block = min(wanted, model_context, val - 2)
    if block < 8:
        need = int(math.ceil((8 + 2) / val_fraction))
        raise ValueError(f"The text is too short to fine-tune on: {tokens} tokens, and the last 10% is kept "
                         f"for validation. Give at least about {need} tokens (a few hundred characters).")
    return block


# ---------------------------------------------------------------- any GPT-2-style causal LM: LoRA

class LoraTask:
    """LoRA adapters (peft) on a causal LM, trained on random windows of the visitor's text."""

    def __init__(self, req: JobRequest) -> None:
        self.req, self.s = req, req.settings
        self.items_per_step = 0
        self.val_loss = float("nan")
        self.last_loss = float("nan")

    def build(self, accelerator: Any) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from aigc_demo import hub
        from aigc_demo.models import tokenizers as toks
        from aigc_demo.models.gpt import context_window

        self.accelerator = accelerator
        source = hub.resolve(self.req.base, kind=hub.CAUSAL_LM)
        self.source_path = source.path
        self.tokenizer = AutoTokenizer.from_pretrained(source.path)
        model = AutoModelForCausalLM.from_pretrained(source.path, dtype=torch.float32)
        text = Path(self.req.data["path"]).read_text(encoding="utf-8")
        ids = np.asarray(toks.encode(self.tokenizer, text), dtype=np.int64)
        self.block = fit_block(len(ids), self.s.block_size, context_window(model.config))
        cut = int(len(ids) * 0.9)
        device = accelerator.device
        self.train_data = torch.from_numpy(ids[:cut]).to(device)
        self.val_data = torch.from_numpy(ids[cut:]).to(device)
        self.offsets = torch.arange(self.block + 1, device=device)
        self.items_per_step = self.s.batch_size * self.block
        self.prompt = text[:24]
        # Every linear layer but the output head (attention and MLP): more to adapt per parameter.
        lora = LoraConfig(r=self.s.lora_rank, lora_alpha=2 * self.s.lora_rank, lora_dropout=0.05,
                          target_modules="all-linear", task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
        self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.total = sum(p.numel() for p in model.parameters())
        from aigc_demo.training.engine import make_optimizer

        opt = make_optimizer(self.s.optimizer, [p for p in model.parameters() if p.requires_grad], self.s.lr)
        self.model, self.opt = accelerator.prepare(model, opt)
        self.generator = torch.Generator(device=device).manual_seed(self.s.seed)

    def _batch(self, data: Any) -> tuple[Any, Any]:
        import torch

        starts = torch.randint(len(data) - self.block - 1, (self.s.batch_size, 1), device=data.device,
                               generator=self.generator)
        chunk = data[starts + self.offsets]  # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]

    def _loss(self, x: Any, y: Any) -> Any:
        import torch.nn.functional as F

        logits = self.model(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))

    def _val(self) -> float:
        import torch

        self.model.eval()
        with torch.no_grad():
            value = float(sum(self._loss(*self._batch(self.val_data)) for _ in range(4)) / 4)
        self.model.train()
        return value

    def train_step(self, step: int) -> dict[str, float]:
        if step % 10 == 0 or math.isnan(self.val_loss):
            self.val_loss = self._val()
        loss = self._loss(*self._batch(self.train_data))
        self.opt.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        if (step + 1) % self.s.log_every == 0 or step + 1 == self.s.steps or math.isnan(self.last_loss):
            self.last_loss = float(loss.detach())
        return {"loss": self.last_loss, "val_loss": self.val_loss}

    def _sample(self, model: Any, tokens: int = 60) -> str:
        from aigc_demo.generation.settings import GenerationSettings
        from aigc_demo.generation.stream import generate_with

        was = model.training
        model.eval()
        try:
            out = generate_with(model, self.tokenizer, self.prompt,
                                GenerationSettings(max_new_tokens=tokens, temperature=0.8, top_k=40, seed=0))
        finally:
            model.train(was)
        return self.prompt + out.text

    def preview(self) -> Any:
        return self._sample(getattr(self, "merged", None) or self.accelerator.unwrap_model(self.model))

    def export(self, out_dir: Path, result: TrainResult) -> None:
        import torch

        from aigc_demo.modelcard import write_model_card

        peft_model = self.accelerator.unwrap_model(self.model)
        peft_model.save_pretrained(out_dir / "adapter")  # adapter_config.json + adapter_model.safetensors
        self.val_loss = self._val()
        merged = peft_model.merge_and_unload()
        self.merged = merged
        merged.to(torch.float16).save_pretrained(out_dir)
        merged.to(torch.float32)
        self.tokenizer.save_pretrained(out_dir)
        sample = self._sample(merged, 80)
        base_gallery = _card_gallery(self.source_path)
        write_finetune_record(out_dir, self.req, result, {
            "lora_rank": self.s.lora_rank, "trainable_parameters": self.trainable,
            "block_size": self.block, "final_val_loss": round(self.val_loss, 5)})
        body = finetune_card_body(self.req, result, (
            f"A causal language model with LoRA adapters (rank {self.s.lora_rank}, {self.trainable:,} of "
            f"{self.total:,} parameters trained) fitted to your text, saved merged into the base weights "
            "(fp16) so it loads like any causal LM; the adapter alone is in `adapter/` (peft layout)."),
            [f"- Context: {self.block} tokens; validation loss on the held-out 10%: {self.val_loss:.4f}"])
        write_model_card(out_dir, gallery={
            "title": f"{self.req.base_title} (LoRA fine-tuned)",
            "task": base_gallery.get("task", "text-generation"), "family": "causal-lm",
            "tab": base_gallery.get("tab", "text"), "sample_text": sample[:600],
            "metrics": _final_loss_metrics({"loss": result.final_losses.get("loss", float("nan")),
                                            "val_loss": self.val_loss}, ("loss", "val_loss"))},
            body=body, tags=["lora", "peft", "fine-tuned"], library_name="transformers",
            pipeline_tag="text-generation")


# ---------------------------------------------------------------- the job process

def build_task(req: JobRequest) -> tuple[Any, TrainSettings]:
    """The family's task and the loop settings for a request."""
    if req.family == "gan":
        task = make_gan_task(req)
    elif req.family == "vae":
        task = make_vae_task(req)
    elif req.family == "gpt":
        task = make_gpt_task(req)
    elif req.family == "lora":
        task = LoraTask(req)
    else:
        raise ValueError(f"Fine-tuning supports {', '.join(FAMILIES)} models (got {req.family!r})")
    return task, train_settings(req, checkpoint_every=0)


def png_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def event_dict(event: ProgressEvent) -> dict[str, Any]:
    """A ProgressEvent as a plain dict (previews as PNG bytes or text): safe to pickle and to store."""
    preview = event.preview
    data = {"type": "progress", "step": event.step, "total_steps": event.total_steps,
            "losses": {k: float(v) for k, v in event.losses.items()}, "elapsed_s": event.elapsed_s,
            "steps_per_s": event.steps_per_s, "items_per_s": event.items_per_s,
            "eta_s": event.eta_s if math.isfinite(event.eta_s) else None, "device": event.device,
            "done": event.done, "stopped": event.stopped, "time": time.time()}
    if isinstance(preview, str):
        data["preview_text"] = preview
    elif preview is not None:
        data["preview_png"] = png_bytes(preview)
    return data


def describe_error(err: BaseException) -> str:
    """One line a visitor can act on."""
    text = str(err) or type(err).__name__
    if isinstance(err, MemoryError) or "out of memory" in text.lower():
        return "Out of memory: lower the batch size or the context length, or pick a smaller model."
    if isinstance(err, ValueError):
        return text
    return f"{type(err).__name__}: {text}"


def announce_first_step(task: Any, events: Any) -> None:
    """Tell the page when the first step starts and how long it took (the first progress event
    comes only after `log_every` steps, which on a slow machine is a long silence)."""
    inner = task.train_step
    state = {"first": True}

    def train_step(step: int) -> dict[str, float]:
        if not state["first"]:
            return inner(step)
        state["first"] = False
        events.put({"type": "status", "status": "first_step"})
        began = time.perf_counter()
        losses = inner(step)
        events.put({"type": "status", "status": "first_step_done", "seconds": time.perf_counter() - began})
        return losses

    task.train_step = train_step


PARENT_POLL_S = 0.5
ORPHAN_GRACE_S = 8.0  # an orphaned job has this long to save a checkpoint, then it exits


def watch_parent(stop: Any, parent_pid: int, events: Any = None, poll_s: float = PARENT_POLL_S,
                 grace_s: float = ORPHAN_GRACE_S) -> threading.Thread:
    """A daemon thread that ends this process when the app that started it is gone.

    Why: the app may die without running its shutdown code (SIGKILL, a crash); its job must
    not train on for nobody. The thread asks the job to stop (it saves a checkpoint), then exits
    the process after `grace_s` seconds whatever it is doing (a queue whose reader is gone can
    block a normal exit forever)."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        stop.set()
        if events is not None:
            try:
                events.cancel_join_thread()  # nobody reads the queue any more: do not wait for it
            except (AttributeError, OSError, ValueError):
                pass
        time.sleep(grace_s)
        os._exit(3)

    thread = threading.Thread(target=watch, name="watch-parent", daemon=True)
    thread.start()
    return thread


def _stop_on_signals(stop: Any) -> None:
    """SIGTERM asks the job to stop (keeping what it learned); Ctrl+C, sent to the whole process
    group by a terminal, is left to the app, which stops its jobs itself."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except (ValueError, OSError):  # not the main thread (tests may call run_job in a thread)
        pass


def run_job(req: JobRequest, events: Any, stop: Any) -> None:
    """The job process's main: train, report every event, report any failure, then exit."""
    watch_parent(stop, os.getppid(), events)
    _stop_on_signals(stop)
    try:
        if req.threads:
            import torch

            torch.set_num_threads(req.threads)
        events.put({"type": "status", "status": "loading"})
        task, settings = build_task(req)
        announce_first_step(task, events)
        result = run_training(task, settings, callback=lambda e: events.put(event_dict(e)), stop=stop)
        events.put({"type": "result", "steps_done": result.steps_done, "stopped": result.stopped,
                    "seconds": result.seconds, "final_losses": result.final_losses,
                    "steps_per_s": result.steps_per_s, "items_per_s": result.items_per_s})
    except BaseException as err:  # noqa: BLE001 - everything is reported to the page
        events.put({"type": "error", "message": describe_error(err), "traceback": traceback.format_exc()})
        _exit_now(events, 1)
    _exit_now(events, 0)


def _exit_now(events: Any, code: int) -> None:
    """Send what is queued, then end the process without the interpreter's slow teardown (seconds
    with torch loaded): a stopped job must end promptly when the app shuts down."""
    if not hasattr(events, "join_thread"):  # a plain queue (tests run jobs in a thread)
        if code:
            raise SystemExit(code)
        return
    try:
        events.close()
        events.join_thread()
    except (OSError, ValueError, AssertionError):
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
