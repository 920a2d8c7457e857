"""Train a small GPT (transformers GPT2LMHeadModel) on a text corpus: nanoGPT's recipe on our engine.

`python -m aigc_demo train gpt --data FILE_OR_DIR --config shakespeare|python --out FOLDER`

- The whole corpus sits on the device as one token tensor; each step samples random windows
  (nanoGPT style): no DataLoader, no worker processes, nothing to wait on.
- Cosine learning rate with linear warmup. The schedule follows whichever ends first, the step
  count or `--max-minutes`, so a time-bounded run still finishes its decay instead of stopping
  at a high learning rate.
- Every `--eval-every` steps the validation loss is measured on random windows and reported
  beside the training loss (the fine-tune tab plots both); the best weights by validation
  loss are the ones exported.
- `--init-from FOLDER` starts from an existing weights folder (fine-tuning) with its tokenizer;
  the Fine-tune tab's jobs are such runs, with a FinetuneOrigin that changes only the card.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.evaluation.eval_gpt import measure
from aigc_demo.generation.settings import GenerationSettings
from aigc_demo.models import tokenizers as toks
from aigc_demo.models.gpt import GPTModelConfig, build_gpt, context_window, use_fused_gelu
from aigc_demo.training.digits_common import hardware_name
from aigc_demo.training.engine import TrainResult, TrainSettings, make_optimizer, run_training
from aigc_demo.training.finetune_card import FinetuneOrigin, card_gallery, final_loss_metrics
from aigc_demo.training.gpt_card import write_gpt_card
from aigc_demo.training.gpt_data import PRESET_LOOP_KEYS, PRESETS, CorpusTokens, GPTSettings, load_corpus
from aigc_demo.training.schedule import Progress, lr_factor, set_lr


class GPTTask:
    """TrainTask for a GPT2LMHeadModel on one token tensor."""

    def __init__(self, gpt: GPTSettings, train: TrainSettings, origin: FinetuneOrigin | None = None) -> None:
        self.gpt, self.train, self.origin = gpt, train, origin
        self.items_per_step = 0
        self.history: list[dict[str, float]] = []
        self.best_val = float("inf")
        self.best_step = -1
        self.best_state: dict[str, Any] | None = None
        self.val_loss = float("nan")
        self.last_loss = float("nan")
        self.seeded = False  # the batch generator is reseeded at the first step of each process
        # Aim to finish the decay a little before a time budget so the last steps use a low lr.
        self.progress = Progress(train.steps, train.max_minutes, budget_fraction=0.97)
        self.corpus: CorpusTokens | None = None
        if not 0.0 <= gpt.label_smoothing < 1.0:
            raise ValueError(f"--label-smoothing must be in [0, 1) (got {gpt.label_smoothing})")

    # -- setup ------------------------------------------------------------------------------
    def build(self, accelerator: Any) -> None:
        import torch

        gpt = self.gpt
        self.accelerator = accelerator
        init_model, init_tok = None, None
        if gpt.init_from:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            init_tok = AutoTokenizer.from_pretrained(gpt.init_from)
            init_model = AutoModelForCausalLM.from_pretrained(
                gpt.init_from, dtype=torch.float32, attn_implementation="sdpa")
        self.corpus = corpus = load_corpus(gpt, init_tok)
        tok = corpus.tokenizer
        if init_model is not None:
            model = init_model
            if gpt.dropout >= 0:
                for module in model.modules():
                    if isinstance(module, torch.nn.Dropout):
                        module.p = gpt.dropout
            self.block = min(gpt.resolved("block_size"), context_window(model.config))
        else:
            start = _start_token_id(tok)
            eos = tok.eos_token_id
            self.model_cfg = GPTModelConfig(
                n_layer=gpt.resolved("n_layer"), n_head=gpt.resolved("n_head"), n_embd=gpt.resolved("n_embd"),
                block_size=gpt.resolved("block_size"), dropout=gpt.resolved("dropout"), vocab_size=len(tok))
            model = build_gpt(self.model_cfg, bos_token_id=start, eos_token_id=eos)
            self.block = self.model_cfg.block_size
        train_ids, val_ids = corpus.train, corpus.val
        if gpt.dry_run:  # a tiny slice: checks the whole path in seconds
            train_ids, val_ids = train_ids[:20000], val_ids[:5000]
            self.block = min(self.block, 64)
        if len(train_ids) < self.block + 2 or len(val_ids) < self.block + 2:
            raise ValueError(f"the corpus is too small for a context of {self.block} tokens "
                             f"({len(train_ids)} train / {len(val_ids)} val tokens): "
                             "give more text or a smaller --block-size")
        device = accelerator.device
        # (N,) int64 on the device: windows are gathered with one indexing op per batch.
        self.train_data = torch.from_numpy(np.asarray(train_ids, dtype=np.int64)).to(device)
        self.val_data = torch.from_numpy(np.asarray(val_ids, dtype=np.int64)).to(device)
        self.offsets = torch.arange(self.block + 1, device=device)
        self.batch = self.train.batch_size
        self.items_per_step = self.batch * self.block
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        use_fused_gelu(model)  # nanoGPT's speed with GPT-2's modules (bench train: app/nanoGPT)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        optimizer = make_optimizer(self.train.optimizer, [
            {"params": decay, "weight_decay": gpt.weight_decay},
            {"params": no_decay, "weight_decay": 0.0}], lr=self.train.lr, betas=(0.9, gpt.beta2),
            fused=device.type in ("cpu", "cuda"))
        if gpt.compile and device.type == "cuda":
            model = torch.compile(model)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(self.train.seed)

    # -- one step ---------------------------------------------------------------------------
    def _batch(self, data: Any, batch: int) -> tuple[Any, Any]:
        import torch

        starts = torch.randint(len(data) - self.block - 1, (batch, 1), device=data.device,
                               generator=self.generator)
        chunk = data[starts + self.offsets]  # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]  # x, y: (B, T) each

    def _loss(self, x: Any, y: Any, smoothing: float = 0.0) -> Any:
        """Mean cross entropy of the next token; `smoothing` > 0 (training only) spreads that much
        of the target's mass evenly over the vocabulary (validation is always plain cross entropy)."""
        import torch.nn.functional as F

        logits = self.model(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), label_smoothing=smoothing)

    def estimate_val(self) -> float:
        """Mean loss on `eval_batches` random validation windows (nanoGPT's estimate_loss)."""
        import torch

        batches = 2 if self.gpt.dry_run else self.gpt.eval_batches
        self.model.eval()
        total = torch.zeros((), device=self.val_data.device)
        with torch.no_grad():
            for _ in range(batches):
                total += self._loss(*self._batch(self.val_data, self.batch))
        self.model.train()
        return float(total / batches)

    def train_step(self, step: int) -> dict[str, float]:
        if not self.seeded:  # first step of this process (also after --resume)
            self.seeded = True
            self.generator.manual_seed(self.train.seed + step)
        eval_every = 5 if self.gpt.dry_run else self.gpt.eval_every
        if step % eval_every == 0 or math.isnan(self.val_loss):  # so every report carries a val loss
            self._evaluate(step)
        lr = self.train.lr * lr_factor(self.progress(step), step, "cosine", self.gpt.resolved("warmup_steps"),
                                       self.gpt.min_lr_ratio)
        set_lr(self.optimizer, lr)
        x, y = self._batch(self.train_data, self.batch)
        loss = self._loss(x, y, self.gpt.label_smoothing)
        self.accelerator.backward(loss)
        if self.gpt.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.gpt.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        # Reading the loss waits for the GPU; do it only on the steps the engine logs.
        if (step + 1) % self.train.log_every == 0 or step + 1 == self.train.steps or math.isnan(self.last_loss):
            self.last_loss = float(loss.detach())
        return {"loss": self.last_loss, "val_loss": self.val_loss, "lr": lr}

    def _evaluate(self, step: int) -> None:
        self.val_loss = self.estimate_val()
        self.history.append({"step": step, "val_loss": self.val_loss})
        if self.gpt.keep_best and self.val_loss < self.best_val:
            self.best_val, self.best_step = self.val_loss, step
            model = self.accelerator.unwrap_model(self.model)
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def preview(self) -> Any:
        """A short sample from the current weights (text), for the fine-tune tab."""
        from aigc_demo.generation.stream import generate_with

        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        try:
            result = generate_with(model, self.corpus.tokenizer, self.gpt.preset()["sample_prompt"],
                                   GenerationSettings(max_new_tokens=120, temperature=0.8, top_k=40, seed=0))
        finally:
            model.train(was_training)
        return result.text

    # -- export -----------------------------------------------------------------------------
    def export(self, out_dir: Path, result: TrainResult) -> None:
        import torch

        model = self.accelerator.unwrap_model(self.model)
        model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
        final_val = self.estimate_val()
        chosen = "final"
        if self.best_state is not None and self.best_val < final_val:
            model.load_state_dict(self.best_state)
            chosen = f"best by validation loss (step {self.best_step})"
        model.eval()
        dtype = getattr(torch, self.gpt.export_dtype)
        stored = _clone_to(model, "cpu", dtype)
        stored.save_pretrained(out_dir)
        toks.save_tokenizer(self.corpus.tokenizer, out_dir)
        # Measure what was stored (fp16-rounded weights), computed in fp32 on this device.

        device = self.accelerator.device
        measured = _clone_to(stored, device, torch.float32)
        val_ids = self.val_data.cpu().numpy()
        metric = measure(measured, val_ids, self.corpus.tokenizer, self.block, device)
        sample = self._card_sample(measured)
        del measured
        info = {
            "train_settings": asdict(self.train), "gpt_settings": asdict(self.gpt),
            "model": {"n_layer": stored.config.n_layer, "n_head": stored.config.n_head,
                      "n_embd": stored.config.n_embd, "block_size": self.block,
                      "vocab_size": stored.config.vocab_size,
                      "parameters": sum(p.numel() for p in {id(p): p for p in stored.parameters()}.values())},
            "data": {k: v for k, v in self.corpus.info.items() if k != "manifest"},
            "train_tokens": int(len(self.train_data)), "val_tokens": int(len(self.val_data)),
            "steps_done": result.steps_done, "stopped_early": result.stopped,
            "train_seconds": round(result.seconds, 1), "tokens_per_second": round(result.items_per_s),
            "hardware": hardware_name(device), "torch": torch.__version__, "weights": chosen,
            "best_val_estimate": self.best_val, "final_val_estimate": final_val,
            "val_history": self.history, "metrics": metric.as_card_metrics(),
        }
        (out_dir / "training_info.json").write_text(json.dumps(info, indent=2, default=str))
        manifest = self.corpus.info.get("manifest")
        if manifest:
            (out_dir / "data_manifest.json").write_text(json.dumps(manifest, indent=2))
        if self.origin is None:
            write_gpt_card(out_dir, self.gpt, info, sample)
        else:
            self._write_finetune_card(out_dir, result, info, sample)

    def _write_finetune_card(self, out_dir: Path, result: TrainResult, info: dict[str, Any], sample: str) -> None:
        """The card of a fine-tune: what it was fine-tuned from, with the measured metrics."""
        assert self.origin is not None
        base_gallery = card_gallery(self.origin.base)
        measured = info["metrics"]
        self.origin.write(
            out_dir, result,
            what=("A small GPT (`transformers` GPT2LMHeadModel) fine-tuned on your text, all weights trained. "
                  f"The exported weights are the {info['weights']} ones."),
            lines=[f"- Context: {self.block} tokens; validation: the last 10% of the text",
                   "- Measured on the held-out 10%: " + ", ".join(
                       f"{m['name']} {m['value']} {m.get('unit', '')}".strip() for m in measured)],
            record={"weights": info["weights"], "block_size": self.block},
            gallery={"title": f"{self.origin.base_title} (fine-tuned)",
                     "task": base_gallery.get("task", "text-generation"), "family": "gpt",
                     "tab": base_gallery.get("tab", "text"), "sample_text": sample[:600],
                     "metrics": list(measured) + final_loss_metrics(result.final_losses, ("loss",))},
            tags=["gpt2", "fine-tuned"], library_name="transformers", pipeline_tag="text-generation")

    def _card_sample(self, model: Any) -> str:
        from aigc_demo.generation.stream import generate_with

        prompt = self.gpt.preset()["sample_prompt"]
        tokens = min(self.gpt.sample_tokens, 40) if self.gpt.dry_run else self.gpt.sample_tokens
        result = generate_with(model, self.corpus.tokenizer, prompt,
                               GenerationSettings(max_new_tokens=tokens, temperature=0.8, top_k=40, seed=1))
        return (prompt if prompt.strip() else "") + result.text


def _start_token_id(tokenizer: Any) -> int | None:
    """BOS for BPE (<|endoftext|>); the newline for the char model (its natural start)."""
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    return tokenizer.get_vocab().get("\n")


def _clone_to(model: Any, device: Any, dtype: Any) -> Any:
    """A fresh copy of a model's weights on another device/dtype. Built from the config rather
    than deep-copied: Accelerate patches `forward` (autocast) on the original, and a deep copy
    would keep calling the original's forward."""
    clone = type(model)(model.config)
    clone.load_state_dict(model.state_dict())
    clone = clone.to(device=device, dtype=dtype).eval()
    clone.config.dtype = dtype
    return clone


def parse_args(argv: list[str] | None) -> tuple[GPTSettings, TrainSettings]:
    """The GPT's flags (GPTSettings) and the loop's (TrainSettings), defaulted from `--config`'s preset."""
    from aigc_demo.cliargs import dataclass_parser, parse_dataclasses  # imports transformers

    parser = dataclass_parser("python -m aigc_demo train gpt", TrainSettings, GPTSettings,
                              description=__doc__.split("\n")[0])
    first, _ = parser.parse_known_args(argv)
    preset = PRESETS.get(first.config)
    if preset is None:
        parser.error(f"--config must be one of {', '.join(PRESETS)} (got {first.config!r})")
    parser.set_defaults(**{k: preset[k] for k in PRESET_LOOP_KEYS}, log_every=50,
                        checkpoint_every=1000, out_dir=f"runs/gpt-{first.config}")
    train, gpt = parse_dataclasses(parser, argv)
    if gpt.dry_run:
        train.steps = min(train.steps, 12)
        train.batch_size = min(train.batch_size, 4)
        train.log_every = 4
        train.checkpoint_every = 0
        gpt.warmup_steps = 2
    return gpt, train


def main(argv: list[str] | None = None) -> int:
    gpt, train = parse_args(argv)
    task = GPTTask(gpt, train)
    result = run_training(task, train)
    metrics = json.loads((Path(train.out_dir) / "training_info.json").read_text())["metrics"]
    print(f"trained {result.steps_done} steps in {result.seconds:.0f} s "
          f"({result.items_per_s:,.0f} tokens/s); " +
          ", ".join(f"{m['name']} {m['value']} {m.get('unit', '')}" for m in metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
