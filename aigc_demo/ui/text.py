"""The Text tab: a prompt completed token by token (base models) or a chat (instruct models)."""

from __future__ import annotations

from typing import Any, Iterator

import gradio as gr

from aigc_demo.errors import UserError
from aigc_demo.services import textgen, validate
from aigc_demo.ui import model_refs, share
from aigc_demo.ui.availability import generate_state, generate_view
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.generation import (UI_UPDATE_S, StatsPacer, build_look_inside, build_model_picker,
                                     build_sampling_controls, make_settings, model_with_progress, new_stop,
                                     stats_line, stop_stream)
from aigc_demo.ui.lead import build_lead
from aigc_demo.ui.strings import t

EXAMPLES = ["ROMEO:\n", "First Citizen:\nBefore we proceed any further, hear me speak.\n",
            "KING HENRY:\nOnce more unto the", "To be, or not to be"]


@user_errors
def complete(model: str, prompt: str, max_new_tokens: float, temperature: float, top_k: float,
             top_p: float, repetition_penalty: float, seed: float | None, randomize: bool,
             request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator[tuple[Any, ...]]:
    """Stream a completion: (output, stats, prompt + output, seed used) after each token."""
    settings = make_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, randomize)
    stop = new_stop(request)
    ref, downloading = model_with_progress(model, progress)
    pacer = StatsPacer()
    for update in textgen.stream_text(ref, prompt or "", settings, stop, progress=downloading,
                                      update_interval_s=UI_UPDATE_S):
        # Look inside reads the text so far, even mid-stream (refreshed with the stats line).
        yield update.text, *pacer.hold(update, lambda: (stats_line(update), (prompt or "") + update.text, update.seed))


@user_errors
def chat(model: str, message: str, history: list[dict[str, Any]], system: str, max_new_tokens: float,
         temperature: float, top_k: float, top_p: float, repetition_penalty: float, seed: float | None,
         randomize: bool, request: gr.Request = None,
         progress: gr.Progress = gr.Progress()) -> Iterator[tuple[Any, ...]]:
    """Stream the assistant's reply into the chat: (message box, history, stats, seed used)."""
    message = validate.text(message, t("chat.message"))
    if not message.strip():
        raise UserError(t("chat.empty"))
    system = validate.text(system, t("chat.system"))
    settings = make_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, randomize)
    history = _history(history)
    history.append({"role": "user", "content": message})
    ref, downloading = model_with_progress(model, progress)
    stop = new_stop(request)
    pacer = StatsPacer()
    updates = textgen.stream_chat(ref, history, settings, stop, system=system or "", progress=downloading,
                                  update_interval_s=UI_UPDATE_S)
    first = True
    try:  # a model without a chat template is refused before the first update
        for update in updates:
            # The message box is emptied at the first update and the last (the API's result); in
            # between it is skipped, so a visitor can type the next message while the reply streams.
            yield ("" if first or update.done else gr.skip(), [*history, {"role": "assistant", "content": update.text}],
                   *pacer.hold(update, lambda: (stats_line(update), update.seed)))
            first = False
    except textgen.NoChatTemplate:
        raise UserError(t("chat.no_template")) from None


def _history(history: Any) -> list[dict[str, str]]:
    """The chat so far as role/content pairs; anything else is refused with a message."""
    if history is None:
        return []
    if not isinstance(history, list) or not all(isinstance(m, dict) for m in history):
        raise UserError(t("chat.bad_history"))
    turns = []
    for m in history:
        if m.get("role") not in ("user", "assistant", "system"):
            raise UserError(t("chat.bad_history"))
        turns.append({"role": m["role"], "content": validate.text(_plain(m.get("content")), t("chat.message"))})
    return turns


def _plain(content: Any) -> str:
    """A chat message's text, whether Gradio hands it over as a string or as typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)[:10_000_000]


def mode_for(model: str | None) -> tuple[Any, Any]:
    """Show the chat view for models with a chat template, the completion view otherwise."""
    ref = model_refs.resolve_or_none(model)
    is_chat = bool(ref) and textgen.is_chat_model(ref)
    return gr.Column(visible=not is_chat), gr.Column(visible=is_chat)


def build_text_tab(ctx: AppContext) -> None:
    build_lead("text")
    model = build_model_picker(ctx, "text")
    first = model_refs.resolve_or_none(model.value)
    first_is_chat = bool(first) and textgen.is_chat_model(first)

    with gr.Column(visible=not first_is_chat) as completion_view:
        with gr.Row():
            with gr.Column(scale=1):
                prompt = gr.Textbox(label=t("text.prompt"), lines=6, max_lines=6, elem_id="text-prompt",
                                    placeholder=t("text.prompt_placeholder"))
                view = generate_view(model.value, t("gen.generate"))
                with gr.Row(elem_classes="compact-buttons"):
                    go = gr.Button(view.label, variant=view.variant, interactive=view.interactive,
                                   elem_id="text-generate", min_width=0)
                    stop = gr.Button(t("gen.stop"), variant="stop", elem_id="text-stop", min_width=0)
                    again = gr.Button(t("gen.regenerate"), elem_id="text-regenerate", min_width=0,
                                      interactive=view.interactive)
                    clear = gr.Button(t("gen.clear"), elem_id="text-clear", min_width=0)
                note = gr.Markdown(view.note, visible=bool(view.note), elem_id="text-model-note",
                                   elem_classes="avail-note")
                gr.Examples([[e] for e in EXAMPLES], [prompt], label=t("gen.examples"))
            with gr.Column(scale=1):
                output = gr.Textbox(label=t("text.output"), lines=14, max_lines=14, interactive=False,
                                    buttons=["copy"], elem_id="text-output")
                stats = gr.Markdown(elem_id="text-stats")
                share_slot = gr.Column()  # the Share button goes here once the settings exist
        full_text = gr.Textbox(visible=False)  # prompt + continuation: what Look inside reads
        build_look_inside("text", model, full_text)
    with gr.Column(visible=first_is_chat) as chat_view:
        system = gr.Textbox(label=t("chat.system"), value=t("chat.system_default"), lines=2)
        chatbot = gr.Chatbot(label=t("chat.title"), height=420, elem_id="text-chat")
        with gr.Row():
            message = gr.Textbox(label=t("chat.message"), scale=4, elem_id="text-message",
                                 placeholder=t("chat.placeholder"))
            send = gr.Button(t("chat.send"), variant="primary", scale=1, elem_id="text-send")
            chat_stop = gr.Button(t("gen.stop"), variant="stop", scale=1)
            chat_clear = gr.Button(t("gen.clear"), scale=1)
        chat_stats = gr.Markdown(elem_id="text-chat-stats")

    sampling = build_sampling_controls("text", max_new_tokens=300)

    model.change(mode_for, model, [completion_view, chat_view], api_visibility="private")
    model.change(lambda ref: generate_state(ref, t("gen.generate"), extra=1), model, [note, go, again],
                 api_visibility="private", show_progress="hidden", queue=False)
    run = dict(fn=complete, inputs=[model, prompt, *sampling.inputs()],
               outputs=[output, stats, full_text, sampling.seed], concurrency_id="textgen",
               concurrency_limit=textgen.CONCURRENT_STREAMS)
    events = [go.click(api_name="text_generate", **run), prompt.submit(api_visibility="private", **run),
              again.click(api_visibility="private", **run)]
    link_params = {"model": model, "prompt": prompt, **sampling.by_name()}
    link = share.target(ctx, "text", link_params, models={"model": share.picker_choices(ctx, model)},
                        **share.untick(sampling.randomize))
    link.runners[""] = share.Runner(complete, run["inputs"], run["outputs"],
                                    {"concurrency_id": "textgen", "concurrency_limit": textgen.CONCURRENT_STREAMS},
                                    capture=link_params)
    for event in events:
        link.capture(event, link_params)
    with share_slot:
        share.share_button(link)
    stop.click(stop_stream, queue=False, api_name="text_stop")
    clear.click(lambda: ("", "", "", ""), outputs=[prompt, output, stats, full_text], queue=False,
                api_visibility="private")

    talk = dict(fn=chat, inputs=[model, message, chatbot, system, *sampling.inputs()],
                outputs=[message, chatbot, chat_stats, sampling.seed], concurrency_id="textgen",
                concurrency_limit=textgen.CONCURRENT_STREAMS)
    send.click(api_name="text_chat", **talk)
    message.submit(api_visibility="private", **talk)
    chat_stop.click(stop_stream, queue=False, api_visibility="private")
    chat_clear.click(lambda: ([], ""), outputs=[chatbot, chat_stats], queue=False, api_visibility="private")
