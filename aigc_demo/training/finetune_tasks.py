"""How a visitor's fine-tune request becomes a training task.

GAN, VAE, diffusion and our GPTs: the family's own trainer (GanTask, VaeTask, DiffusionTask via
training/finetune_diffusion.py, GPTTask) with `init_from`
the base folder, the visitor's data and settings sized for a short interactive run, plus a
FinetuneOrigin so the saved folder's card says what it was fine-tuned from. Hub and other
GPT-2-style causal LMs: LoRA adapters with `peft` (LoraTask), saved merged, so every tab loads
them as plain causal LMs. Imported by the job process when a job starts (torch, transformers).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from aigc_demo import hub
from aigc_demo.errors import UserError
from aigc_demo.generation.settings import GenerationSettings
from aigc_demo.models import tokenizers as toks
from aigc_demo.models.gpt import context_window
from aigc_demo.training.engine import TrainResult, TrainSettings, make_optimizer
from aigc_demo.training.finetune_request import JobRequest, loop_log_every
from aigc_demo.training.finetune_card import card_gallery, final_loss_metrics
from aigc_demo.training.finetune_diffusion import diffusion_task
from aigc_demo.training.gan import GanConfig, GanTask
from aigc_demo.training.gpt import GPTSettings, GPTTask
from aigc_demo.training.vae import VaeConfig, VaeTask


def make_task(req: JobRequest, settings: TrainSettings) -> Any:
    """The training task for a request (`settings`: the loop's, from the request)."""
    if req.family == "lora":
        return LoraTask(req)
    if req.family == "gpt":
        return GPTTask(gpt_settings(req), settings, req.origin())
    data = digits_source(req.data)
    s = req.settings
    if req.family == "diffusion":
        return diffusion_task(req, settings, data)
    if req.family == "gan":
        if s.unlabelled_digit < 0:
            raise UserError("A GAN has no \"no digit\" class: pick a digit 0-9 for the images without a label.")
        config = GanConfig(**data, init_from=req.base, loss=s.gan_loss, n_critic=1, ema_decay=0.9,
                           lr_schedule="constant", warmup_steps=0, unlabelled_digit=s.unlabelled_digit,
                           preview_side=8, bn_samples=2000)
        return GanTask(config, settings, req.origin())
    if req.family == "vae":
        config = VaeConfig(**data, init_from=req.base, kl_weight=s.kl_weight, kl_warmup=0.0,
                           lr_schedule="constant", warmup_steps=0, eval_limit=500)
        return VaeTask(config, settings, req.origin())
    raise UserError(f"Fine-tuning cannot train a {req.family!r} model")


def digits_source(data: dict[str, Any]) -> dict[str, Any]:
    """A job's image data as the digit trainers' `data_dir`, `dataset` and `limit`."""
    if data["kind"] == "builtin":
        return {"data_dir": data["dir"], "dataset": data["dataset"], "limit": int(data.get("limit", 0))}
    if data["kind"] != "images":
        raise UserError(f"A digit model trains on images, not {data['kind']}")
    return {"data_dir": data["path"]}  # an .npz of the visitor's images


def gpt_settings(req: JobRequest) -> GPTSettings:
    """Our GPT from the base folder on the visitor's text: a context that fits the text, ~10
    validation points per run (one batch each: about 3% of the training time), short previews."""
    tokenizer = AutoTokenizer.from_pretrained(req.base)
    preset = "shakespeare" if toks.is_char_level(tokenizer) else "python"
    text = Path(req.data["path"]).read_text(encoding="utf-8")
    block = fit_block(len(toks.encode(tokenizer, text)), req.settings.block_size,
                      context_window(AutoConfig.from_pretrained(req.base)))
    s = req.settings
    return GPTSettings(data=req.data["path"], config=preset, name="", init_from=req.base, block_size=block,
                       val_fraction=0.1, warmup_steps=min(10, max(s.steps // 10, 0)),
                       eval_every=max(10, s.steps // 10), eval_batches=1, keep_best=True,
                       sample_tokens=80)  # a preview every few steps must not cost more than the steps


def fit_block(tokens: int, wanted: int, model_context: int, val_fraction: float = 0.1) -> int:
    """The context length: the wanted one, capped by the model and by the validation split."""
    val = int(tokens * val_fraction * 0.9)  # the split is made on characters: keep a margin
    block = min(wanted, model_context, val - 2)
    if block < 8:
        need = int(math.ceil((8 + 2) / val_fraction))
        raise UserError(f"The text is too short to fine-tune on: {tokens} tokens, and the last 10% is kept "
                        f"for validation. Give at least about {need} tokens (a few hundred characters).")
    return block


class LoraTask:
    """LoRA adapters (peft) on a causal LM, trained on random windows of the visitor's text."""

    def __init__(self, req: JobRequest) -> None:
        self.req, self.s, self.origin = req, req.settings, req.origin()
        self.items_per_step = 0
        self.val_loss = float("nan")
        self.last_loss = float("nan")

    def build(self, accelerator: Any) -> None:
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
        opt = make_optimizer(self.s.optimizer, [p for p in model.parameters() if p.requires_grad], self.s.lr)
        self.model, self.opt = accelerator.prepare(model, opt)
        self.generator = torch.Generator(device=device).manual_seed(self.s.seed)

    def _batch(self, data: Any) -> tuple[Any, Any]:
        starts = torch.randint(len(data) - self.block - 1, (self.s.batch_size, 1), device=data.device,
                               generator=self.generator)
        chunk = data[starts + self.offsets]  # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]

    def _loss(self, x: Any, y: Any) -> Any:
        logits = self.model(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))

    def _val(self) -> float:
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
        if (step + 1) % loop_log_every(self.s) == 0 or step + 1 == self.s.steps or math.isnan(self.last_loss):
            self.last_loss = float(loss.detach())
        return {"loss": self.last_loss, "val_loss": self.val_loss}

    def _sample(self, model: Any, tokens: int = 60) -> str:
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
        peft_model = self.accelerator.unwrap_model(self.model)
        peft_model.save_pretrained(out_dir / "adapter")  # adapter_config.json + adapter_model.safetensors
        self.val_loss = self._val()
        merged = peft_model.merge_and_unload()
        self.merged = merged
        merged.to(torch.float16).save_pretrained(out_dir)
        merged.to(torch.float32)
        self.tokenizer.save_pretrained(out_dir)
        sample = self._sample(merged, 80)
        base_gallery = card_gallery(self.source_path)
        self.origin.write(
            out_dir, result,
            what=(f"A causal language model with LoRA adapters (rank {self.s.lora_rank}, {self.trainable:,} of "
                  f"{self.total:,} parameters trained) fitted to your text, saved merged into the base weights "
                  "(fp16) so it loads like any causal LM; the adapter alone is in `adapter/` (peft layout)."),
            lines=[f"- Context: {self.block} tokens; validation loss on the held-out 10%: {self.val_loss:.4f}"],
            record={"lora_rank": self.s.lora_rank, "trainable_parameters": self.trainable,
                    "block_size": self.block, "final_val_loss": round(self.val_loss, 5)},
            gallery={"title": f"{self.req.base_title} (LoRA fine-tuned)",
                     "task": base_gallery.get("task", "text-generation"), "family": "causal-lm",
                     "tab": base_gallery.get("tab", "text"), "sample_text": sample[:600],
                     "metrics": final_loss_metrics({"loss": result.final_losses.get("loss", float("nan")),
                                                    "val_loss": self.val_loss}, ("loss", "val_loss"))},
            tags=["lora", "peft", "fine-tuned"], library_name="transformers", pipeline_tag="text-generation")
