"""The Code tab: Python completion streamed into the editor; never executed, only parsed."""

from __future__ import annotations

import html
from typing import Any, Iterator

import gradio as gr

from aigc_demo.services import textgen
from aigc_demo.ui import share
from aigc_demo.ui.availability import generate_state, generate_view
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.generation import (UI_UPDATE_S, StatsPacer, build_look_inside, build_model_picker,
                                     build_sampling_controls, make_settings, model_with_progress, new_stop,
                                     stats_line, stop_stream)
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.strings import t

EXAMPLES = [
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
    "import os\n\n\ndef list_python_files(folder):\n",
    "class Stack:\n    def __init__(self):\n",
    "def is_palindrome(text: str) -> bool:\n",
]


def parse_badge(code: str) -> str:
    """A styled badge with plain glyphs (✓ / ✗ are in every text font; emoji need an emoji font)."""
    ok, message = textgen.code_parses(code)
    return f'<span class="parse-badge {"ok" if ok else "bad"}">{"✓" if ok else "✗"} {html.escape(message)}</span>'


@user_errors
def complete_code(model: str, code: str, stop_at_function_end: bool, max_new_tokens: float,
                  temperature: float, top_k: float, top_p: float, repetition_penalty: float,
                  seed: float | None, randomize: bool, request: gr.Request = None,
                  progress: gr.Progress = gr.Progress()) -> Iterator[tuple[Any, ...]]:
    """Stream (editor = code + completion, stats, parse badge, seed used, code before it)."""
    code = code or ""
    settings = make_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, randomize,
                             stop_at_function_end=bool(stop_at_function_end))
    ref, downloading = model_with_progress(model, progress)
    stop = new_stop(request)
    update = None
    pacer = StatsPacer()
    # Instruct coders get the code inside a request; their reply is appended to the editor.
    for update in textgen.stream_code(ref, code, settings, stop, instruction=t("code.instruction", code=code),
                                      progress=downloading, update_interval_s=UI_UPDATE_S):
        # The parse badge is empty while the code grows (the last run's verdict would mislead).
        stats, seed = pacer.hold(update, lambda: (stats_line(update), update.seed))
        yield code + update.text, stats, "", seed, code
    if update is not None:
        yield code + update.text, stats_line(update), parse_badge(code + update.text), update.seed, code


def build_code_tab(ctx: AppContext) -> None:
    build_lead("code")
    model = build_model_picker(ctx, "code")
    editor = gr.Code(EXAMPLES[0], language="python", label=t("code.editor"), lines=18, max_lines=40,
                     interactive=True, elem_id="code-editor")
    view = generate_view(model.value, t("code.complete"))
    with gr.Row(elem_classes="compact-buttons"):
        go = gr.Button(view.label, variant=view.variant, interactive=view.interactive,
                       elem_id="code-generate", min_width=0)
        stop = gr.Button(t("gen.stop"), variant="stop", elem_id="code-stop", min_width=0)
        again = gr.Button(t("gen.regenerate"), elem_id="code-regenerate", min_width=0,
                          interactive=view.interactive)
        clear = gr.Button(t("gen.clear"), elem_id="code-clear", min_width=0)
    note = gr.Markdown(view.note, visible=bool(view.note), elem_id="code-model-note", elem_classes="avail-note")
    function_end = gr.Checkbox(True, label=t("code.function_end"), info=t("code.function_end_info"),
                               elem_id="code-function-end")
    with gr.Row():
        badge = gr.Markdown(elem_id="code-badge")
        stats = gr.Markdown(elem_id="code-stats")
    share_slot = gr.Column()
    gr.Examples([[e] for e in EXAMPLES], [editor], label=t("gen.examples"))
    sampling = build_sampling_controls("code", max_new_tokens=200)
    build_look_inside("code", model, editor)

    model.change(lambda ref: generate_state(ref, t("code.complete"), extra=1), model, [note, go, again],
                 api_visibility="private", show_progress="hidden", queue=False)
    code_before = gr.State("")  # what Regenerate starts from: the code before the last completion
    outputs = [editor, stats, badge, sampling.seed, code_before]
    events = [go.click(complete_code, [model, editor, function_end, *sampling.inputs()], outputs,
                       concurrency_id="textgen", concurrency_limit=textgen.CONCURRENT_STREAMS,
                       api_name="code_complete"),
              again.click(complete_code, [model, code_before, function_end, *sampling.inputs()], outputs,
                          concurrency_id="textgen", concurrency_limit=textgen.CONCURRENT_STREAMS,
                          api_visibility="private")]
    settings = {"function_end": function_end, **sampling.by_name()}
    link = share.target(ctx, "code", {"model": model, "prompt": editor, **settings},
                        models={"model": share.picker_choices(ctx, model)}, **share.untick(sampling.randomize))
    made_from = {"model": model, "prompt": code_before, **settings}  # the code before the completion
    link.runners[""] = share.Runner(complete_code, [model, editor, function_end, *sampling.inputs()], outputs,
                                    {"concurrency_id": "textgen", "concurrency_limit": textgen.CONCURRENT_STREAMS},
                                    capture=made_from)
    for event in events:
        link.capture(event, made_from)
    with share_slot:
        share.share_button(link)
    stop.click(stop_stream, queue=False, api_name="code_stop")
    clear.click(lambda: ("", "", "", ""), outputs=[editor, badge, stats, code_before], queue=False,
                api_visibility="private")

