"""`python -m aigc_demo sample gpt --model weights/NAME --prompt TEXT`: a completion, streamed to
stdout through the same decoding as the Text and Code tabs (and written to --out if given)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aigc_demo.device import pick_device
from aigc_demo.generation.settings import GenerationSettings


def load(ref: str, device: str | None) -> tuple[object, object]:
    """(model, tokenizer) from a weights folder or a downloaded hub id: safetensors only, no remote code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    choice = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(ref, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(ref, dtype=choice.dtype, use_safetensors=True,
                                                 trust_remote_code=False)
    return model.to(choice.name).eval(), tokenizer


def main(argv: list[str] | None = None) -> int:
    from aigc_demo.generation.stream import stream_with

    parser = argparse.ArgumentParser(prog="python -m aigc_demo sample gpt", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="weights folder or hub id")
    parser.add_argument("--prompt", default="", help="text to continue (empty: start from the start token)")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable)")
    parser.add_argument("--stop-at-function-end", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write prompt + completion here")
    args = parser.parse_args(argv)
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, seed=args.seed, stop_sequences=tuple(args.stop),
        stop_at_function_end=args.stop_at_function_end)
    try:
        shown, last = 0, None
        sys.stdout.write(args.prompt)
        model, tokenizer = load(args.model, args.device)
        for last in stream_with(model, tokenizer, args.prompt, settings):
            if len(last.text) > shown and last.text.startswith(last.text[:shown]):
                sys.stdout.write(last.text[shown:])
                sys.stdout.flush()
                shown = len(last.text)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    assert last is not None
    print()
    for notice in last.notices:
        print(f"note: {notice}", file=sys.stderr)
    ttft = f"{last.time_to_first_token_s:.3f} s" if last.time_to_first_token_s is not None else "n/a"
    print(f"[{last.new_tokens} tokens, {last.tokens_per_s:.1f} tokens/s, first token after {ttft}, "
          f"seed {last.seed}, stopped by {last.stop_reason}]", file=sys.stderr)
    if args.out:
        args.out.write_text(args.prompt + last.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
