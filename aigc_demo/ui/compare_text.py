"""The Compare tab's text part: one prompt streamed by 2 or 3 text models at once, side by side,
with an optional blind vote and leaderboards of the votes.

The streams run through services/compare_text.py (the Text tab's path: the same batching, and the
same per-visitor Stop). Blind: the columns are shuffled and named Model A / B / C until the
visitor votes. Votes stay in the page session (gr.State: this visitor's only, bounded, gone with
the session); the server-wide board counts one verdict per visitor and pair of models.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import gradio as gr

from aigc_demo.errors import UserError
from aigc_demo.services import compare_text as svc
from aigc_demo.services import compare_votes as votes_svc
from aigc_demo.services import textgen, validate
from aigc_demo.services.gallery import picker_ref, picker_specs
from aigc_demo.ui import model_refs, sessions, share
from aigc_demo.ui.availability import picker_label
from aigc_demo.ui.context import AppContext
from aigc_demo.ui.errors import user_errors
from aigc_demo.ui.generation import UI_UPDATE_S, build_sampling_controls, make_settings, new_stop, stats_line, stop_stream
from aigc_demo.ui.lead import build_help
from aigc_demo.ui.messages import localize
from aigc_demo.ui.strings import t

LETTERS = "ABC"
STREAMS = max(1, textgen.CONCURRENT_STREAMS // svc.MAX_COLUMNS)  # comparisons at once (each 2-3 streams)


@dataclass
class TextPart:
    """What the tab needs back from the text part to wire its share links."""

    params: dict[str, Any]
    runner: share.Runner
    event: Any
    share_slot: Any
    choices: Callable[[], list[tuple[str, str]]]
    randomize: Any  # the sampling's 'new random seed' box: a link with a seed unticks it


def text_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """The Text tab's models that run now: ours, the visitor's, downloaded hub models, remote ones."""
    return [(picker_label(spec), picker_ref(spec, ctx.user_dirs))
            for spec in picker_specs(ctx.settings.weights_dir, "text", ctx.user_dirs)
            if spec.source != "hub" or spec.cached]


def _head(letter: str, label: str | None) -> str:
    return f"### {t('compare.model_letter', letter=letter)}" + (f" · {label}" if label else "")


def _labels(ctx: AppContext, ids: list[str]) -> list[str]:
    names = {ref: label for label, ref in text_choices(ctx)}
    return [names.get(ref, ref) for ref in ids]


def _column_outputs(states: list[svc.ColumnState] | None, count: int) -> list[Any]:
    """(text, stats) for each of the three columns."""
    texts, stats = [], []
    for index in range(svc.MAX_COLUMNS):
        state = states[index] if states and index < len(states) else None
        if state is None:
            texts.append("")
            stats.append(t("compare.waiting") if index < count else "")
            continue
        texts.append(state.update.text if state.update else "")
        if state.error:
            stats.append(f"⚠ {localize(state.error)}")
        else:
            stats.append(stats_line(state.update) if state.update else t("compare.waiting"))
    return [*texts, *stats]


def make_stream(ctx: AppContext) -> Callable[..., Iterator[tuple[Any, ...]]]:
    """The handler of Compare: (3 heads, 3 texts, 3 stats, column C shown, vote row, the record)."""

    @user_errors
    def compare_stream(prompt: str, model_a: Any, model_b: Any, model_c: Any, blind: Any, max_new_tokens: float,
                       temperature: float, top_k: float, top_p: float, repetition_penalty: float,
                       seed: float | None, randomize: bool, request: gr.Request = None) -> Iterator[tuple[Any, ...]]:
        picked = svc.check_columns([model_a, model_b, model_c])
        refs = [model_refs.resolve(m) for m in picked]  # only ids the app lists to this visitor
        blind = validate.flag(blind, "Blind", default=False)
        if blind and len(set(refs)) < 2:
            raise UserError(t("compare.blind_same"))
        settings = make_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, randomize)
        order = list(range(len(picked)))
        if blind:
            random.SystemRandom().shuffle(order)  # the visitor cannot tell which column is which
        picked, refs = [picked[i] for i in order], [refs[i] for i in order]
        labels = _labels(ctx, picked)
        heads = [_head(LETTERS[i], None if blind or i >= len(picked) else labels[i]) for i in range(svc.MAX_COLUMNS)]
        record = {"models": picked, "labels": labels, "blind": blind, "done": False, "voted": False}
        third = gr.Column(visible=len(picked) == svc.MAX_COLUMNS)
        hidden_vote = gr.Row(visible=False)
        stop = new_stop(request)
        yield (*heads, *_column_outputs(None, len(picked)), third, hidden_vote, record)
        states = None
        for states in svc.stream_columns(refs, prompt or "", settings, stop, update_interval_s=UI_UPDATE_S):
            yield (*heads, *_column_outputs(states, len(picked)), third, hidden_vote, record)
        record = {**record, "done": True}
        vote = gr.Row(visible=blind)
        yield (*heads, *_column_outputs(states, len(picked)), third, vote, record)

    return compare_stream


def _rows(standings: list[votes_svc.Standing], names: dict[str, str]) -> list[list[Any]]:
    return [[names.get(s.model, s.model), s.wins, s.losses, s.ties, f"{100 * s.win_rate:.0f}%", s.votes]
            for s in standings]


def _everyone(names: dict[str, str]) -> gr.Dataframe:
    """Everyone's board, titled with how many voters it counts."""
    return gr.Dataframe(_rows(votes_svc.board.standings(), names),
                        label=t("compare.board.everyone_voters", voters=votes_svc.board.voters()))


def make_vote(ctx: AppContext) -> Callable[..., tuple[Any, ...]]:
    """The handler of Vote: (3 heads revealed, message, your board, everyone's board, the record,
    your votes, vote row)."""

    @user_errors
    def compare_vote(choice: Any, record: dict | None, votes: list | None) -> tuple[Any, ...]:
        if not record or not record.get("done"):
            raise UserError(t("compare.vote_nothing"))
        if not record.get("blind"):
            raise UserError(t("compare.vote_blind_only"))
        if record.get("voted"):
            raise UserError(t("compare.vote_twice"))
        vote = votes_svc.make_vote(record["models"], choice)
        mine = votes_svc.add_vote(votes, vote)
        votes_svc.board.record(sessions.current_session(), vote, sessions.current_address())
        labels = record["labels"]
        heads = [_head(LETTERS[i], labels[i] if i < len(labels) else None) for i in range(svc.MAX_COLUMNS)]
        winner = t("compare.tie") if vote.winner is None else t("compare.model_letter", letter=LETTERS[vote.winner])
        names = {ref: label for label, ref in text_choices(ctx)}
        message = t("compare.voted", winner=winner, names=" · ".join(
            f"{LETTERS[i]} = {label}" for i, label in enumerate(labels)))
        return (*heads, message, _rows(votes_svc.leaderboard(mine), names),
                _everyone(names), {**record, "voted": True}, mine, gr.Row(visible=False))

    return compare_vote


def _none() -> list[tuple[str, str]]:
    """Column C's first choice: no third model (read in the visitor's language when refreshed)."""
    return [(t("compare.none"), "")]


def _picker(label: str, choices: list[tuple[str, str]], value: str | None, elem_id: str) -> gr.Dropdown:
    return gr.Dropdown(choices, value=value, label=label, elem_id=elem_id, allow_custom_value=True,
                       min_width=220)  # on a phone each picker takes its own line, its title whole


def build_text_part(ctx: AppContext) -> TextPart:
    build_help("compare.text_lead", "compare.text_help", "compare-text")
    initial = text_choices(ctx)
    ids = [ref for _, ref in initial]
    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox("To be, or not to be", label=t("compare.prompt"), lines=3, max_lines=6,
                                elem_id="compare-prompt")
        with gr.Column(scale=1, min_width=220):
            blind = gr.Checkbox(False, label=t("compare.blind"), info=t("compare.blind_info"), elem_id="compare-blind")
            with gr.Row(elem_classes="compact-buttons"):
                go = gr.Button(t("compare.text_go"), variant="primary", elem_id="compare-text-go", min_width=0)
                stop = gr.Button(t("gen.stop"), variant="stop", elem_id="compare-text-stop", min_width=0)
    with gr.Row():
        model_a = _picker(t("compare.model_letter", letter="A"), initial, ids[0] if ids else None, "compare-model-a")
        model_b = _picker(t("compare.model_letter", letter="B"), initial,
                          ids[1] if len(ids) > 1 else (ids[0] if ids else None), "compare-model-b")
        model_c = _picker(t("compare.model_letter", letter="C"), _none() + initial, "", "compare-model-c")
    if len(initial) < 2:  # e.g. a server with one text model of its own and no hub model downloaded
        gr.Markdown(t("compare.few_models"), elem_classes="avail-note", elem_id="compare-few-models")
    ctx.register_picker(model_a, lambda: text_choices(ctx))
    ctx.register_picker(model_b, lambda: text_choices(ctx))
    ctx.register_picker(model_c, lambda: _none() + text_choices(ctx))
    sampling = build_sampling_controls("compare", max_new_tokens=80)
    heads, texts, stats, columns = [], [], [], []
    with gr.Row(elem_id="compare-text-columns", equal_height=False):
        for index, letter in enumerate(LETTERS):
            with gr.Column(elem_classes="compare-col", min_width=240, visible=index < 2,
                           elem_id=f"compare-text-col-{letter.lower()}") as column:
                heads.append(gr.Markdown(_head(letter, None), elem_id=f"compare-text-head-{letter.lower()}"))
                texts.append(gr.Textbox(label=t("compare.output"), show_label=False, lines=10, max_lines=14,
                                        interactive=False, elem_id=f"compare-text-out-{letter.lower()}"))
                stats.append(gr.Markdown(elem_id=f"compare-text-stats-{letter.lower()}"))
                columns.append(column)
    record = gr.State(None)
    with gr.Row(visible=False, elem_id="compare-vote-row") as vote_row:
        choice = gr.Radio([(t("compare.better", letter=letter), letter) for letter in LETTERS] +
                          [(t("compare.tie"), votes_svc.TIE)], label=t("compare.vote_question"),
                          elem_id="compare-vote-choice", scale=3)
        vote = gr.Button(t("compare.vote"), variant="primary", elem_id="compare-vote", scale=1)
    voted = gr.Markdown(elem_id="compare-voted")
    my_votes = gr.State([], time_to_live=24 * 3600)  # this page session's votes, bounded (compare_votes)
    headers = [t("compare.board.model"), t("compare.board.wins"), t("compare.board.losses"),
               t("compare.board.ties"), t("compare.board.rate"), t("compare.board.votes")]
    with gr.Accordion(t("compare.boards"), open=True):
        with gr.Row():
            mine = gr.Dataframe(headers=headers, label=t("compare.board.mine"), interactive=False,
                                elem_id="compare-board-mine")
            everyone = gr.Dataframe(headers=headers, label=t("compare.board.everyone"), interactive=False,
                                    elem_id="compare-board-everyone")
    share_slot = gr.Column()

    model_c.change(lambda ref: gr.Column(visible=bool(ref)), model_c, columns[2], queue=False,
                   show_progress="hidden", api_visibility="private")
    inputs = [prompt, model_a, model_b, model_c, blind, *sampling.inputs()]
    outputs = [*heads, *texts, *stats, columns[2], vote_row, record]
    options = {"concurrency_id": "compare_text", "concurrency_limit": STREAMS}
    stream = make_stream(ctx)
    event = go.click(stream, inputs, outputs, api_name="compare_text", **options)
    stop.click(stop_stream, queue=False, api_name="compare_stop")
    vote.click(make_vote(ctx), [choice, record, my_votes], [*heads, voted, mine, everyone, record, my_votes, vote_row],
               api_name="compare_vote")
    params = {"prompt": prompt, "model_a": model_a, "model_b": model_b, "model_c": model_c, "blind": blind,
              "max_new_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
              "seed": sampling.seed}
    runner = share.Runner(stream, inputs, outputs, options, capture=params)
    return TextPart(params, runner, event, share_slot, lambda: text_choices(ctx), sampling.randomize)
