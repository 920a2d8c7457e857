"""Share links in the page: open a link's state on load, run it on `run=1`, and make links.

A tab registers a `LinkTarget`: which component each URL parameter sets, how a value becomes
the component's value (a model id becomes the picker's reference), and the handlers `run=1`
calls. After each result the tab records the settings that made it (`capture`); its Share button
turns that record into a link, shows it and copies it to the clipboard.

Why not gr.DeepLinkButton: it saves the whole page state on this server under a random id, so
the link breaks when the server restarts (a Space sleeps and wakes), says nothing a reader can
see, and re-shows outputs instead of making them again. A parameter link survives restarts and
reproduces the result from its seed and settings.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import gradio as gr

from aigc_demo.ui.opengraph import Card
from aigc_demo.ui.strings import in_lang, normalize_lang, t
from aigc_demo.ui.urlstate import (PARAMS, TABS, Notice, build_link, model_key, parse_query,
                                   public_base)

COPY_JS = """
(link) => {
  if (link && navigator.clipboard) { navigator.clipboard.writeText(link).catch(() => {}); }
  return [];
}
"""


@dataclass
class Runner:
    """What `run=1` calls for a tab (or a part of it): a handler with its inputs and outputs."""

    fn: Callable[..., Any]
    inputs: list[Any]
    outputs: list[Any]
    options: dict[str, Any] = field(default_factory=dict)  # concurrency_id etc. of the original
    capture: dict[str, Any] = field(default_factory=dict)  # what Share records after it ran


@dataclass
class LinkTarget:
    tab: str
    components: dict[str, Any]  # URL parameter -> component it sets
    models: dict[str, Callable[[], list[tuple[str, str]]]] = field(default_factory=dict)  # param -> choices()
    extra: Callable[[dict[str, Any]], dict[Any, Any]] | None = None  # more updates (e.g. untick random)
    extra_outputs: list[Any] = field(default_factory=list)  # the components `extra` updates
    runners: dict[str, Runner] = field(default_factory=dict)  # "" or a part name -> Runner
    part_param: str | None = None  # the parameter choosing the part (Digits: part)
    default_part: str = ""
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> its own parameter map
    last: Any = None  # gr.State with the settings of the latest result, per part

    def model_ids(self, param: str) -> dict[str, str]:
        """URL id -> picker reference, for the choices this visitor sees now."""
        lister = self.models.get(param)
        return {model_key(ref): ref for _, ref in lister()} if lister else {}

    def all_components(self) -> list[Any]:
        found = [*self.components.values(), *self.extra_outputs]
        for mapping in self.parts.values():
            found += list(mapping.values())
        return found

    def to_component(self, values: dict[str, Any]) -> dict[Any, Any]:
        updates: dict[Any, Any] = {}
        mapping = self.components
        if self.part_param:
            mapping = {**mapping, **self.parts.get(values.get(self.part_param, self.default_part), {})}
        for name, value in values.items():
            component = mapping.get(name)
            if component is None:
                continue
            if name in self.models:
                value = self.model_ids(name).get(value, value)
            updates[component] = value
        if self.extra:
            updates.update(self.extra(values))
        return updates

    def capture(self, event: Any, components: dict[str, Any], part: str = "", flag: Any = None) -> None:
        """After `event` (a result), record the settings shown by `components` for the Share button
        (with `flag`, a gr.State: only when it holds this tab and part, i.e. a link ran it)."""
        names = list(components)
        key = f"{self.tab}:{part}"

        def record(last: dict | None, flag_value: Any, *values: Any) -> Any:
            if flag is not None and flag_value != key:
                return gr.skip()
            settings = {}
            for name, value in zip(names, values):
                if name in self.models and isinstance(value, str):
                    value = model_key(value)
                settings[name] = value
            if self.part_param:
                settings[self.part_param] = part
            return {**(last or {}), part: settings}

        flag_input = flag if flag is not None else self.last
        event.then(record, [self.last, flag_input, *components.values()], self.last, show_progress="hidden",
                   api_visibility="private")


def target(ctx: Any, tab: str, components: dict[str, Any], **options: Any) -> LinkTarget:
    """Register a tab's link parameters (call once per tab, while building it)."""
    names = set(components) | {n for mapping in options.get("parts", {}).values() for n in mapping}
    unknown = names - {p.name for p in PARAMS[tab]}
    if unknown:
        raise ValueError(f"{tab}: no URL parameter named {sorted(unknown)} in urlstate.PARAMS")
    link = LinkTarget(tab, components, last=gr.State({}), **options)
    ctx.links[tab] = link
    return link


def picker_choices(ctx: Any, component: Any) -> Callable[[], list[tuple[str, str]]]:
    """The choices function a model picker was registered with (ctx.register_picker)."""
    for registered, choices in ctx.pickers:
        if registered is component:
            return choices
    return lambda: [c if isinstance(c, tuple) else (c, c) for c in (component.choices or [])]


def untick(checkbox: Any, when: str = "seed") -> dict[str, Any]:
    """`extra` for a target: a link that gives a seed turns 'new random seed' off."""
    return dict(extra=lambda values: {checkbox: False} if when in values else {}, extra_outputs=[checkbox])


def share_button(link: LinkTarget, part: str = "") -> tuple[gr.Button, gr.Textbox]:
    """A Share button and the box showing its link, for the result of `part` (or the tab)."""
    suffix = f"-{part}" if part else ""
    with gr.Row(equal_height=True, elem_classes="share-row"):
        button = gr.Button(t("share.button"), size="sm", scale=0, min_width=110,
                           elem_id=f"{link.tab}{suffix}-share")
        box = gr.Textbox(label=t("share.link"), show_label=False, placeholder=t("share.placeholder"), interactive=False,
                         buttons=["copy"], scale=4, elem_id=f"{link.tab}{suffix}-share-link")

    def make(last: dict | None, request: gr.Request) -> str:
        settings = (last or {}).get(part)
        if not settings:
            gr.Warning(t("share.nothing_yet"))
            return ""
        lang = normalize_lang(dict(request.query_params).get("lang")) if request else None
        return build_link(public_base(dict(request.headers) if request else {}), link.tab, settings, lang)

    button.click(make, link.last, box, api_visibility="private", show_progress="hidden").then(
        None, box, None, js=COPY_JS, api_visibility="private")
    return button, box


def notice_text(notices: list[Notice]) -> str:
    lines = [t(f"url.reason.{n.reason}", name=n.name, limits=n.limits) for n in notices[:8]]
    return t("url.ignored") + "\n" + "\n".join(f"• {line}" for line in lines)


def _skip(outputs: list[Any]) -> Any:
    return tuple(gr.skip() for _ in outputs) if len(outputs) != 1 else gr.skip()


def _runner(key: str, runner: Runner) -> Callable[..., Any]:
    """The handler behind `run=1` for one runner: it runs only when the link asked for it."""
    params = inspect.signature(runner.fn).parameters
    passes = {name for name in ("request", "progress") if name in params}

    def extras(request: Any, progress: Any) -> dict[str, Any]:
        return {k: v for k, v in (("request", request), ("progress", progress)) if k in passes}

    if inspect.isgeneratorfunction(runner.fn) or inspect.isgeneratorfunction(getattr(runner.fn, "__wrapped__", None)):
        def run_stream(flag: str, *args: Any, request: gr.Request = None,
                       progress: gr.Progress = gr.Progress()) -> Any:
            if flag != key:
                yield _skip(runner.outputs)
                return
            yield from runner.fn(*args, **extras(request, progress))
        return run_stream

    def run(flag: str, *args: Any, request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Any:
        if flag != key:
            return _skip(runner.outputs)
        return runner.fn(*args, **extras(request, progress))
    return run


def attach(demo: gr.Blocks, ctx: Any) -> None:
    """On page load: select the link's tab, fill its inputs, warn about what was dropped, then run."""
    links: dict[str, LinkTarget] = ctx.links
    run_flag = gr.State("")
    outputs: list[Any] = [ctx.tabs, run_flag]
    for link in links.values():
        for component in link.all_components():
            if all(component is not c for c in outputs):
                outputs.append(component)

    def models(tab: str, param: str) -> set[str]:
        link = links.get(tab)
        return set(link.model_ids(param)) if link else set()

    def on_load(request: gr.Request) -> dict[Any, Any]:
        query = dict(request.query_params) if request else {}
        state = parse_query(query, models)
        updates: dict[Any, Any] = {run_flag: ""}
        if state.tab and state.tab not in ctx.tab_ids:
            state.notices.append(Notice("tab", "not_choice", ", ".join(ctx.tab_ids)))
            state.tab, state.run = None, False
        if state.tab:
            updates[ctx.tabs] = gr.Tabs(selected=state.tab)
        link = links.get(state.tab or "")
        if link:
            updates.update(link.to_component(state.values))
            if state.run:
                part = state.values.get(link.part_param, link.default_part) if link.part_param else ""
                if part in link.runners:
                    updates[run_flag] = f"{link.tab}:{part}"
        if state.notices:
            gr.Warning(notice_text(state.notices))
        return updates

    load = demo.load(on_load, None, outputs, show_progress="hidden", api_visibility="private")
    for link in links.values():
        for part, runner in link.runners.items():
            event = load.then(_runner(f"{link.tab}:{part}", runner), [run_flag, *runner.inputs], runner.outputs,
                              api_visibility="private", **runner.options)
            if runner.capture:
                link.capture(event, runner.capture, part, flag=run_flag)


def link_card(query: dict[str, list[str]]) -> Any:
    """The card a chat app shows for a link (ui/opengraph.py): title and description per tab."""
    first = {k: v[0] for k, v in query.items() if v}
    lang = normalize_lang(first.get("lang")) or "en"
    with in_lang(lang):
        title = t("app.title")
        tab = first.get("tab")
        if tab in TABS:
            title += " · " + t(f"tab.{tab}")
        prompt = (first.get("prompt") or first.get("text") or "").strip()
        description = t("share.card_prompt", prompt=prompt[:150]) if prompt else t("app.tagline")
    return Card(title=title, description=description)


__all__ = ["LinkTarget", "Runner", "attach", "link_card", "share_button", "target"]
