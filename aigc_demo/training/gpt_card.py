"""The model card of a GPT trained from scratch (a fine-tune's card is training/finetune_card.py's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigc_demo.modelcard import write_model_card
from aigc_demo.training.gpt_data import GPTSettings

def write_gpt_card(out_dir: Path, gpt: GPTSettings, info: dict[str, Any], sample: str) -> None:
    """The model card: exact config, data, training time and hardware, measured metrics, a sample."""
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
