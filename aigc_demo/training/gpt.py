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
- `--init-from FOLDER` starts from an existing weights folder (fine-tuning) with its tokenizer.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aigc_demo.cliargs import add_dataclass_args, dataclass_from_args
from aigc_demo.training.engine import TrainResult, TrainSettings, run_training

# Per-corpus defaults: model size, tokenizer and loop settings that reach the targets.
PRESETS: dict[str, dict[str, Any]] = {
    "shakespeare": dict(tokenizer_kind="char", n_layer=6, n_head=6, n_embd=384, block_size=256,
                        dropout=0.2, steps=5000, batch_size=64, lr=1e-3, warmup_steps=100,
                        title="GPT (char-level, Tiny Shakespeare)", task="text-generation",
                        tab="text", sample_prompt="\n"),
    "python": dict(tokenizer_kind="bpe", vocab_size=4096, n_layer=6, n_head=6, n_embd=384,
                   block_size=256, dropout=0.1, steps=6000, batch_size=64, lr=1e-3,
                   warmup_steps=200, title="GPT (byte-level BPE, Python stdlib)",
                   task="code-generation", tab="code", sample_prompt="def "),
}
PRESET_LOOP_KEYS = ("steps", "batch_size", "lr")


@dataclass
class GPTSettings:
    """Model and data settings (the loop's are in TrainSettings). 0 / -1 mean: the preset's value."""

    data: str = ""  # a text file, a folder of .py files, "stdlib", or a prepared folder (meta.json)
    config: str = "shakespeare"  # preset: shakespeare | python
    name: str = ""  # model name for the card (default: gpt-CONFIG)
    tokenizer: str = ""  # a saved tokenizer folder to use instead of building one
    init_from: str = ""  # an existing weights folder to fine-tune (its tokenizer and size win)
    n_layer: int = 0
    n_head: int = 0
    n_embd: int = 0
    block_size: int = 0
    dropout: float = -1.0
    vocab_size: int = 0  # BPE only
    val_fraction: float = 0.1
    warmup_steps: int = -1
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_batches: int = 20
    keep_best: bool = True  # export the weights with the best validation loss
    compile: bool = False  # torch.compile the model (CUDA; costs a minute of compile time)
    export_dtype: str = "float16"
    sample_tokens: int = 400  # length of the sample written into the model card
    dry_run: bool = False

    def preset(self) -> dict[str, Any]:
        if self.config not in PRESETS:
            raise ValueError(f"--config must be one of {', '.join(PRESETS)} (got {self.config!r})")
        return PRESETS[self.config]

    def resolved(self, key: str) -> Any:
        value = getattr(self, key)
        unset = value < 0 or (value == 0 and key not in ("dropout", "warmup_steps"))
        return self.preset()[key] if unset else value


@dataclass
class CorpusTokens:
    """Tokenised train/val splits plus what the model card needs to say about them."""

    tokenizer: Any
    train: np.ndarray
    val: np.ndarray
    val_bytes: int
    val_chars: int
    info: dict[str, Any] = field(default_factory=dict)


def load_corpus(gpt: GPTSettings, tokenizer: Any = None) -> CorpusTokens:
    """Read `gpt.data` and tokenise it (or read a prepared folder's token arrays)."""
    from aigc_demo.data import text as textdata
    from aigc_demo.models import tokenizers as toks

    kind = gpt.preset()["tokenizer_kind"]
    if gpt.tokenizer and tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gpt.tokenizer)
    data = gpt.data
    if not data:
        raise ValueError("--data is required: a text file, a folder of .py files, 'stdlib' or a prepared folder")
    path = Path(data)
    if data != "stdlib" and path.is_dir() and textdata.is_prepared(path):
        from transformers import AutoTokenizer

        meta = textdata.read_prepared_meta(path)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")
        elif tokenizer.get_vocab() != AutoTokenizer.from_pretrained(path / "tokenizer").get_vocab():
            raise ValueError(f"{path} was tokenised with another tokenizer than the model's; "
                             "give the raw text file instead")
        if (path / "manifest.json").is_file():
            meta["manifest"] = json.loads((path / "manifest.json").read_text())
        return CorpusTokens(tokenizer, textdata.load_tokens(path / "train.npy"),
                            textdata.load_tokens(path / "val.npy"), int(meta["val_bytes"]),
                            int(meta["val_chars"]), meta)
    info: dict[str, Any] = {}
    if data == "stdlib":
        corpus = textdata.build_python_corpus()
        train_text, val_text = corpus.train_text, corpus.val_text
        manifest = corpus.manifest()
        info = {"source": "python-stdlib", "manifest": manifest, **manifest_summary(manifest)}
    elif path.is_dir():
        train_text, val_text = textdata.split_text(textdata.read_code_folder(path), gpt.val_fraction)
        info = {"source": str(path)}
    else:
        text = textdata.read_text_file(path)
        train_text, val_text = textdata.split_text(text, gpt.val_fraction)
        info = {"source": str(path), "sha256": _sha256(path), "bytes": path.stat().st_size}
    if tokenizer is None:
        if kind == "char":
            tokenizer = toks.build_char_tokenizer(train_text + val_text)
        else:
            tokenizer = toks.train_bpe_tokenizer([train_text], vocab_size=gpt.resolved("vocab_size"))
    sep = textdata.FILE_SEPARATOR
    train = np.asarray(toks.encode(tokenizer, train_text), dtype=np.uint16)
    val = np.asarray(toks.encode(tokenizer, val_text), dtype=np.uint16)
    info.update(val_fraction=gpt.val_fraction, train_chars=len(train_text), train_bytes=len(train_text.encode()),
                tokenizer_kind=kind)
    return CorpusTokens(tokenizer, train, val, len(val_text.replace(sep, "").encode()),
                        len(val_text.replace(sep, "")), info)


def manifest_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the model card says about a stdlib corpus (the full list goes to data_manifest.json)."""
    return {"python_version": manifest["python_version"], "train_files": len(manifest["train_files"]),
            "val_files": len(manifest["val_files"]), "val_modules": manifest["val_modules"]}


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def lr_at(progress: float, step: int, warmup: int, lr: float, min_ratio: float) -> float:
    """Linear warmup for `warmup` steps, then cosine from lr to lr*min_ratio as progress goes 0 -> 1."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(max(progress, 0.0), 1.0)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def hardware_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class GPTTask:
    """TrainTask for a GPT2LMHeadModel on one token tensor."""

    def __init__(self, gpt: GPTSettings, train: TrainSettings) -> None:
        self.gpt, self.train = gpt, train
        self.items_per_step = 0
        self.history: list[dict[str, float]] = []
        self.best_val = float("inf")
        self.best_step = -1
        self.best_state: dict[str, Any] | None = None
        self.val_loss = float("nan")
        self.last_loss = float("nan")
        self.started: float | None = None
        self.corpus: CorpusTokens | None = None

    # -- setup ------------------------------------------------------------------------------
    def build(self, accelerator: Any) -> None:
        import torch

        from aigc_demo.models.gpt import GPTModelConfig, build_gpt

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
            from aigc_demo.models.gpt import context_window

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
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        from aigc_demo.training.engine import make_optimizer

        optimizer = make_optimizer(self.train.optimizer, [
            {"params": decay, "weight_decay": gpt.weight_decay},
            {"params": no_decay, "weight_decay": 0.0}], lr=self.train.lr, betas=(0.9, gpt.beta2))
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

    def _loss(self, x: Any, y: Any) -> Any:
        import torch.nn.functional as F

        logits = self.model(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))

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

    def progress(self, step: int) -> float:
        """How far along the schedule is: by steps or by the time budget, whichever is further."""
        done = step / max(self.train.steps, 1)
        if self.train.max_minutes and self.started is not None:
            # Aim to finish the decay a little before the budget so the last steps use a low lr.
            budget = self.train.max_minutes * 60 * 0.97
            done = max(done, (time.perf_counter() - self.started) / budget)
        return done

    def train_step(self, step: int) -> dict[str, float]:
        if self.started is None:  # first step of this process (also after --resume)
            self.started = time.perf_counter()
            self.generator.manual_seed(self.train.seed + step)
        eval_every = 5 if self.gpt.dry_run else self.gpt.eval_every
        if step % eval_every == 0 or math.isnan(self.val_loss):  # so every report carries a val loss
            self._evaluate(step)
        lr = lr_at(self.progress(step), step, self.gpt.resolved("warmup_steps"), self.train.lr,
                   self.gpt.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self._batch(self.train_data, self.batch)
        loss = self._loss(x, y)
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
        from aigc_demo.generation.settings import GenerationSettings
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
        from aigc_demo.models import tokenizers as toks

        toks.save_tokenizer(self.corpus.tokenizer, out_dir)
        # Measure what was stored (fp16-rounded weights), computed in fp32 on this device.
        from aigc_demo.evaluation.eval_gpt import measure

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
            "hardware": hardware_name(), "torch": torch.__version__, "weights": chosen,
            "best_val_estimate": self.best_val, "final_val_estimate": final_val,
            "val_history": self.history, "metrics": metric.as_card_metrics(),
        }
        (out_dir / "training_info.json").write_text(json.dumps(info, indent=2, default=str))
        manifest = self.corpus.info.get("manifest")
        if manifest:
            (out_dir / "data_manifest.json").write_text(json.dumps(manifest, indent=2))
        write_gpt_card(out_dir, self.gpt, info, sample)

    def _card_sample(self, model: Any) -> str:
        from aigc_demo.generation.settings import GenerationSettings
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


def write_gpt_card(out_dir: Path, gpt: GPTSettings, info: dict[str, Any], sample: str) -> None:
    """The model card: exact config, data, training time and hardware, measured metrics, a sample."""
    from aigc_demo.modelcard import write_model_card

    preset = gpt.preset()
    name = gpt.name or f"gpt-{gpt.config}"
    m, data = info["model"], info["data"]
    ts = info["train_settings"]
    is_python = preset["tokenizer_kind"] == "bpe"
    if is_python:
        data_line = (f"Python {data.get('python_version', '')} standard library sources "
                     f"(`Lib/**/*.py`, tests excluded): {data.get('train_files', '?')} training files, "
                     f"{data.get('val_files', '?')} held-out files (whole modules: "
                     f"{', '.join(data.get('val_modules', []))}). The exact file list is in "
                     "`data_manifest.json`.")
    else:
        data_line = (f"Tiny Shakespeare (`{Path(str(data.get('source', 'input.txt'))).name}`, "
                     f"sha256 `{data.get('sha256', '?')}`): first {100 - 100 * data.get('val_fraction', 0.1):.0f}% "
                     "for training, the rest for validation.")
    metrics_rows = "\n".join(f"| {x['name']} | {x['value']} {x.get('unit', '')} | {x.get('note', '')} |"
                             for x in info["metrics"])
    body = f"""
# {name}

{preset['title']}: a `transformers` GPT2LMHeadModel trained from scratch by
`python -m aigc_demo train gpt --config {gpt.config}` (recipe: `aigc_demo/training/recipes_gpt.py`).

## Measured (by `python -m aigc_demo eval gpt`)

| metric | value | on |
| --- | --- | --- |
{metrics_rows}

## Model

{m['n_layer']} layers, {m['n_head']} heads, {m['n_embd']} dims, context {m['block_size']} tokens,
vocabulary {m['vocab_size']} ({'byte-level BPE trained with `tokenizers`' if is_python else 'one token per character; unseen characters map to `?`'}),
{m['parameters']:,} parameters, stored in float16 ({info['weights']} weights).

## Data

{data_line}
Training tokens: {info['train_tokens']:,}; validation tokens: {info['val_tokens']:,}.

## Training

{info['steps_done']} steps of batch {ts['batch_size']} x {m['block_size']} tokens, AdamW (lr {ts['lr']},
betas (0.9, {gpt.beta2}), weight decay {gpt.weight_decay}), cosine schedule with {gpt.resolved('warmup_steps')} warmup
steps to {gpt.min_lr_ratio} x lr, dropout {gpt.resolved('dropout') if not gpt.init_from else 'as initialised'},
mixed precision `{ts['mixed_precision']}`, in {info['train_seconds']} s on {info['hardware']}
({info['tokens_per_second']:,} tokens/s){' (stopped by the time budget)' if info['stopped_early'] else ''}.
Full settings: `training_info.json`; loss curve: `losses.csv`.

## Sample (temperature 0.8, top-k 40, seed 1)

```{'python' if is_python else 'text'}
{sample}
```
"""
    gallery = {"title": preset["title"], "task": preset["task"], "family": "gpt", "tab": preset["tab"],
               "sample_text": sample[:600], "metrics": info["metrics"]}
    write_model_card(out_dir, gallery=gallery, body=body, license="mit",
                     datasets=["tinyshakespeare"] if not is_python else None,
                     tags=["gpt2", "text-generation", "char-level" if not is_python else "code"],
                     library_name="transformers", pipeline_tag="text-generation")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aigc_demo train gpt", description=__doc__.split("\n")[0])
    add_dataclass_args(parser, TrainSettings)
    parser.add_argument("--out", dest="out_dir", help="output folder (same as --out-dir)")
    add_dataclass_args(parser, GPTSettings)
    return parser


def parse_args(argv: list[str] | None) -> tuple[GPTSettings, TrainSettings]:
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    preset = PRESETS.get(first.config)
    if preset is None:
        parser.error(f"--config must be one of {', '.join(PRESETS)} (got {first.config!r})")
    parser.set_defaults(**{k: preset[k] for k in PRESET_LOOP_KEYS}, log_every=50,
                        checkpoint_every=1000, out_dir=f"runs/gpt-{first.config}")
    args = parser.parse_args(argv)
    train = dataclass_from_args(TrainSettings, args)
    gpt = dataclass_from_args(GPTSettings, args)
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
