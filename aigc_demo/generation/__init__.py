"""Decoding shared by the app, training previews, evaluation and benchmarks, below services.

Light modules (no torch): `settings` (GenerationSettings), `results` (GenerationUpdate,
InsideView), `stopping` (stop rules), `chat` (chat prompts), `prompt` (a prompt cut to the
context). Heavy ones, imported on first use: `sampling` (transformers' logits processors and a
per-request generator), `batcher` (step-level batching across requests), `stream` (`stream_with`,
`generate_with` on a loaded model), `inside` (`look_inside_with`, the eager twin).
"""
