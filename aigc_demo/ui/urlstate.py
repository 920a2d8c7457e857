"""Links that open the page in a state: which tab, its inputs, and whether to run it.

The parameters are data (one `Param` per input, per tab), so reading a link and making one
share the same names, types and limits. A link is untrusted input: every value is parsed and
range-checked here, model ids must be among those the tab lists to this visitor, and anything
unknown or out of range is dropped with a notice (never an error page).

This module has no gradio import; ui/share.py wires it to the page.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlencode

from aigc_demo.catalog import SOURCES, TASKS
from aigc_demo.services import digits as digits_svc
from aigc_demo.services import digits_diffusion as diffusion_svc
from aigc_demo.services import imagegen, textgen
from aigc_demo.settings import current as current_settings
from aigc_demo.training import lab_spec

TABS = ("gallery", "digits", "text", "code", "image", "compare", "finetune", "lab", "system")
LANGS = ("en", "zh")
MAX_QUERY_PARAMS = 40
MAX_VALUE_CHARS = 4000
# Parameters Gradio itself reads from the page's address: leave them alone, no notice.
GRADIO_PARAMS = frozenset({"__theme", "deep_link", "__sign", "view", "page", "logs", "__ssr"})
_INT = re.compile(r"^[+-]?\d{1,20}$")


@dataclass(frozen=True)
class Param:
    """One input a link may set: its name in the URL, its kind and its limits."""

    name: str
    kind: str  # "int", "float", "str", "bool", "choice", "model", "digits"
    low: float | None = None
    high: float | None = None
    max_len: int = 200
    choices: tuple[str, ...] = ()
    multiple_of: int | None = None

    def parse(self, raw: str, models: Callable[[], set[str]] | None = None) -> Any:
        """The value, or ValueError(reason) where reason is a key of `url.reason.*`."""
        if len(raw) > min(self.max_len, MAX_VALUE_CHARS):
            raise ValueError("too_long")
        if self.kind == "str":
            if "\x00" in raw:
                raise ValueError("bad_text")
            return raw
        if self.kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("not_bool")
        if self.kind == "choice":
            if raw not in self.choices:
                raise ValueError("not_choice")
            return raw
        if self.kind == "model":
            if models is None or raw not in models():
                raise ValueError("unknown_model")
            return raw
        if self.kind == "digits":
            parts = [p for p in re.split(r"[,\s]+", raw.strip()) if p]
            if not parts or any(p not in "0123456789" or len(p) != 1 for p in parts) or len(parts) > 10:
                raise ValueError("not_digits")
            return sorted(set(parts), key=int)
        if self.kind == "int":
            if not _INT.match(raw.strip()):
                raise ValueError("not_int")
            value: float = int(raw.strip())
        elif self.kind == "float":
            try:
                value = float(raw.strip()) if len(raw) <= 32 else math.nan
            except ValueError:
                raise ValueError("not_number") from None
            if not math.isfinite(value):
                raise ValueError("not_number")
        else:  # pragma: no cover - a typo in the specs below
            raise ValueError("not_choice")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError("out_of_range")
        if self.multiple_of and int(value) % self.multiple_of:
            raise ValueError("not_multiple")
        return value

    def format(self, value: Any) -> str:
        """The value as it goes into a link (round-trips through `parse`)."""
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "digits":
            return ",".join(str(v) for v in value)
        if self.kind == "int":
            return str(int(value))
        if self.kind == "float":
            return repr(float(value))
        return str(value)

    def limits(self) -> str:
        if self.kind in ("int", "float") and self.low is not None and self.high is not None:
            return f"{self.format(self.low)}…{self.format(self.high)}"
        if self.kind == "choice":
            return ", ".join(self.choices)
        return ""


def _sampling(prompt_chars: int) -> tuple[Param, ...]:
    return (
        Param("model", "model", max_len=300),
        Param("prompt", "str", max_len=prompt_chars),
        Param("max_new_tokens", "int", 1, textgen.MAX_NEW_TOKENS_LIMIT),
        Param("temperature", "float", 0.0, 2.0),
        Param("top_k", "int", 0, 200),
        Param("top_p", "float", 0.05, 1.0),
        Param("repetition_penalty", "float", 0.5, 2.0),
        Param("seed", "int", 0, 2**31 - 1),
    )


DIGIT_PARTS = ("grid", "write", "walk", "diffusion", "denoise")

PARAMS: dict[str, tuple[Param, ...]] = {
    "gallery": (Param("task", "choice", choices=("all", *TASKS)),
                Param("source", "choice", choices=("all", *SOURCES))),
    "digits": (
        Param("part", "choice", choices=DIGIT_PARTS),
        Param("model", "model", max_len=300),
        Param("digits", "digits", max_len=40),
        Param("count", "int", 1, digits_svc.MAX_GRID),
        Param("text", "str", max_len=digits_svc.MAX_TEXT),
        Param("seed", "int", 0, digits_svc.MAX_SEED),
        Param("truncation", "float", *digits_svc.TRUNCATION_RANGE),
        Param("walk", "choice", choices=("gan", "vae")),
        Param("vae", "model", max_len=300),
        Param("seed_b", "int", 0, digits_svc.MAX_SEED),
        Param("digit", "int", 0, 9),
        Param("digit_a", "int", 0, 9),
        Param("digit_b", "int", 0, 9),
        Param("steps", "int", 2, digits_svc.MAX_WALK_STEPS),
        Param("diffusion", "model", max_len=300),  # the diffusion part: its model, sampler and watched digits
        Param("sampler_steps", "int", *diffusion_svc.STEPS_RANGE),
        Param("guidance", "float", *diffusion_svc.GUIDANCE_RANGE),
        Param("watch", "str", max_len=4 * diffusion_svc.MAX_WATCH),
    ),
    "text": _sampling(4000),
    "code": (*_sampling(4000), Param("function_end", "bool")),
    "image": (
        Param("model", "model", max_len=300),
        Param("prompt", "str", max_len=imagegen.MAX_PROMPT_CHARS),
        Param("negative", "str", max_len=imagegen.MAX_PROMPT_CHARS),
        Param("steps", "int", 1, imagegen.MAX_STEPS),
        Param("guidance", "float", 0.0, imagegen.MAX_GUIDANCE),
        Param("width", "int", 32, 1024, multiple_of=8),
        Param("height", "int", 32, 1024, multiple_of=8),
        Param("count", "int", 1, imagegen.MAX_IMAGES),
        Param("seed", "int", 0, imagegen.MAX_SEED),
    ),
    "finetune": (),
    "lab": (  # issue 23: the lab's settings (a link never starts training by itself)
        Param("family", "choice", choices=lab_spec.FAMILIES),
        Param("vary", "choice", choices=lab_spec.ALL_AXES),
        Param("values", "str", max_len=200),
        Param("steps", "int", 1, lab_spec.MAX_STEPS),
        Param("batch", "int", 0, lab_spec.MAX_BATCH),
        Param("seed", "int", 0, 2**31 - 1),
    ),
    "system": (),
    "compare": (  # issue #15: digits from every family, or text from 2-3 models, side by side
        Param("part", "choice", choices=("digits", "text")),
        Param("digits", "digits", max_len=40),
        Param("per_digit", "int", 1, 10),
        Param("seed", "int", 0, 2**31 - 1),
        Param("gan", "model", max_len=300),
        Param("diffusion", "model", max_len=300),
        Param("vae", "model", max_len=300),
        Param("prompt", "str", max_len=4000),
        Param("model_a", "model", max_len=300),
        Param("model_b", "model", max_len=300),
        Param("model_c", "model", max_len=300),
        Param("blind", "bool"),
        Param("max_new_tokens", "int", 1, textgen.MAX_NEW_TOKENS_LIMIT),
        Param("temperature", "float", 0.0, 2.0),
    ),
}
GLOBAL = (Param("tab", "choice", choices=TABS), Param("run", "bool"), Param("lang", "choice", choices=LANGS))


@dataclass
class Notice:
    """Why a parameter was dropped: a `url.reason.*` key and the values for its message."""

    name: str
    reason: str
    limits: str = ""


@dataclass
class UrlState:
    tab: str | None = None
    run: bool = False
    lang: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # the tab's parameters that passed
    notices: list[Notice] = field(default_factory=list)


def parse_query(query: Mapping[str, str], models: Callable[[str, str], set[str]] | None = None) -> UrlState:
    """Read a page's query parameters. `models(tab, param)` lists the model ids that tab offers."""
    state = UrlState()
    items = list(query.items())
    if len(items) > MAX_QUERY_PARAMS:
        state.notices.append(Notice("…", "too_many"))
        items = items[:MAX_QUERY_PARAMS]
    raw = {str(k)[:64]: str(v) for k, v in items}
    for param in GLOBAL:
        if param.name in raw:
            try:
                setattr(state, param.name, param.parse(raw[param.name]))
            except ValueError as err:
                state.notices.append(Notice(param.name, str(err), param.limits()))
    specs = {p.name: p for p in PARAMS.get(state.tab or "", ())}
    for name, value in raw.items():
        if name in GRADIO_PARAMS or any(name == g.name for g in GLOBAL):
            continue
        param = specs.get(name)
        if param is None:
            state.notices.append(Notice(name, "unknown"))
            continue
        lister = (lambda tab=state.tab, n=name: models(tab, n)) if models else None
        try:
            state.values[name] = param.parse(value, lister)
        except ValueError as err:
            state.notices.append(Notice(name, str(err), param.limits()))
    if state.run and not state.tab:
        state.run = False
    return state


def build_query(tab: str, values: Mapping[str, Any], lang: str | None = None, run: bool = True) -> str:
    """'tab=text&model=…&seed=7&run=1': the values that have a Param of `tab`, in spec order."""
    pairs: list[tuple[str, str]] = [("tab", tab)]
    for param in PARAMS[tab]:
        value = values.get(param.name)
        if value is None or value == "" and param.kind != "str":
            continue
        pairs.append((param.name, param.format(value)))
    if run:
        pairs.append(("run", "1"))
    if lang in LANGS:
        pairs.append(("lang", lang))
    return urlencode(pairs)


def public_base(headers: Mapping[str, str]) -> str:
    """Where a link should point: https://<SPACE_HOST>/ on a Space, else the page's own address."""
    space_host = current_settings().space_host
    if space_host:
        return f"https://{space_host}/"
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    referer = lowered.get("referer", "")
    if referer.startswith(("http://", "https://")):
        return referer.split("?")[0].split("#")[0]
    host = lowered.get("x-forwarded-host") or lowered.get("host") or "localhost:7860"
    proto = lowered.get("x-forwarded-proto") or "http"
    return f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}/"


def build_link(base: str, tab: str, values: Mapping[str, Any], lang: str | None = None) -> str:
    return base + ("" if base.endswith("/") else "/") + "?" + build_query(tab, values, lang)


def model_key(ref: str) -> str:
    """The id a link carries for a picker's value: a folder's name for local models, the hub id."""
    return os.path.basename(ref.rstrip("/\\")) if os.path.isabs(ref) else ref
