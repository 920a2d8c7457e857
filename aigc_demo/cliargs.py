"""Dataclass settings <-> argparse flags, so the CLI, the UI and config.json share one definition."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """One `--field-name` flag per dataclass field, typed and defaulted from the field."""
    for f in dataclasses.fields(cls):
        flag = "--" + prefix + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if isinstance(default, bool):
            parser.add_argument(flag, dest=prefix + f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=f"(default: {default})")
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=prefix + f.name, type=kind, default=default,
                                help=f"(default: {default})")


def dataclass_from_args(cls: type[T], args: argparse.Namespace, prefix: str = "") -> T:
    """Build `cls` from the flags `add_dataclass_args` added."""
    values: dict[str, Any] = {f.name: getattr(args, prefix + f.name) for f in dataclasses.fields(cls)}
    return cls(**values)
