"""Command-line flags generated from the Settings table: one name, metavar, help and default each.

Each flag is ``--<field>`` (``--max-context`` for ``max_context``); its help is the field's
description, its variable and its default, and its metavar follows from the type (N, SECONDS,
FILE, a ``{choice,...}`` list, or the field's own ``json_schema_extra["metavar"]``). Values are
passed to Settings as text, so a bad one is refused there, naming the variable.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic.fields import FieldInfo

from kronos_server.settings import Settings

# accepted too, so the forecast spelling of the checkpoint flags keeps working everywhere
ALIASES: Mapping[str, tuple[str, ...]] = {"model_path": ("--model",), "tokenizer_path": ("--tokenizer",)}
_SECONDS = ("timeout", "grace", "age", "delay")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _types(annotation: Any) -> list[Any]:
    """The types of an annotation, with None removed from ``X | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def metavar(name: str, field: FieldInfo) -> str:
    """What a flag's value looks like, from the field's declared metavar, type or name."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("metavar"), str):
        return str(extra["metavar"])
    (kind, *_) = _types(field.annotation)
    if typing.get_origin(kind) is Literal:
        return "{" + ",".join(str(choice) for choice in typing.get_args(kind)) + "}"
    if name == "host":
        return "HOST"
    if name.endswith("_port"):
        return "PORT"
    if kind is Path:
        return "FILE" if name.endswith("_file") else "DIR"
    if kind is float:
        if name.endswith(_SECONDS):
            return "SECONDS"
        return "MIB" if name.endswith("_mb") else "X"
    if kind is int:
        return "N"
    return "TEXT"


def default_text(field: FieldInfo) -> str:
    """The default as the README's table writes it (``none`` for unset, ``empty`` for "")."""
    if field.default is None:
        return "none"
    if field.default == "":
        return "empty"
    return str(field.default)


def help_text(name: str, field: FieldInfo) -> str:
    text = f"{field.description} (KRONOS_{name.upper()}; default: {default_text(field)})"
    return text.replace("%", "%%")  # argparse formats help with %


def add_settings_flags(
    parser: argparse.ArgumentParser, names: Iterable[str] = tuple(Settings.model_fields)
) -> None:
    """One flag per named setting, in a group of its own; unset flags leave the environment's value."""
    group = parser.add_argument_group("settings (override KRONOS_* environment variables)")
    for name in names:
        field = Settings.model_fields[name]
        group.add_argument(
            flag_name(name),
            *ALIASES.get(name, ()),
            dest=name,
            metavar=metavar(name, field),
            help=help_text(name, field),
        )
