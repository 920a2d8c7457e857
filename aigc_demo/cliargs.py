"""Dataclass settings as command-line flags, on transformers' HfArgumentParser.

One `--field-name` flag per dataclass field (`--field_name` works too), typed and defaulted from
the field; a bool field defaulting to True also gets `--no-field-name`. A field's `metadata`
can add `aliases` and `help`. The CLI, the UI and config.json share the one definition.
Imports transformers: import this module where a command line is parsed, not at startup.
"""

from __future__ import annotations

import argparse
from typing import Any

from transformers import HfArgumentParser


def dataclass_parser(prog: str, *types: type, description: str | None = None,
                     defaults: dict[str, Any] | None = None) -> HfArgumentParser:
    """A parser with the flags of every dataclass in `types` (their field names must not clash)."""
    parser = HfArgumentParser(types, prog=prog, description=description,
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if defaults:
        parser.set_defaults(**defaults)
    return parser


def parse_dataclasses(parser: HfArgumentParser, argv: list[str] | None) -> tuple[Any, ...]:
    """One instance per dataclass, then a Namespace of any extra flags the parser was given.
    An unknown flag ends the program with argparse's usual message, as a plain parser would."""
    *built, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return tuple(built)
