"""Command-line flags built from the fields of a settings dataclass: its types, its defaults and the
``:param:`` lines of its docstring, so that a default is written once, in the dataclass."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")

# A ":param name: text" line of an SB3-style docstring, with its indented continuation lines.
PARAM_PATTERN = re.compile(r":param (\w+):(.*?)(?=\n\s*:\w|\Z)", re.DOTALL)


def optional_int(text: str) -> int | None:
    """
    :param text: a whole number, or ``none``
    :return: the number, or ``None``
    """
    return None if text.lower() == "none" else int(text)


def optional_float(text: str) -> float | None:
    """
    :param text: a number, or ``none``
    :return: the number, or ``None``
    """
    return None if text.lower() == "none" else float(text)


PARSERS: Mapping[Any, Callable[[str], Any]] = {
    int: int,
    float: float,
    str: str,
    int | None: optional_int,
    float | None: optional_float,
}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except for required options and on/off switches."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or isinstance(action, argparse._StoreTrueAction) or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


def field_help(config_class: type) -> dict[str, str]:
    """
    :param config_class: a dataclass with an SB3-style docstring
    :return: the text of each ``:param:`` line, on one line
    """
    return {
        name: " ".join(text.split()).replace("``", "'").replace("%", "%%")
        for name, text in PARAM_PATTERN.findall(config_class.__doc__ or "")
    }


def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_class: type,
    flags: Mapping[str, str],
    help_texts: Mapping[str, str] | None = None,
) -> None:
    """
    Add one flag per chosen field of a settings dataclass, its type, default and help taken from the
    dataclass. A field typed ``int | None`` or ``float | None`` takes ``none`` for ``None``.

    :param parser: the parser (or argument group)
    :param config_class: the dataclass
    :param flags: field name -> flag, e.g. ``{"epochs": "--bc-epochs"}``; the parsed value is at
        the flag's own ``dest`` (``args.bc_epochs``)
    :param help_texts: field name -> help, where the CLI says it better than the docstring
    :raises TypeError: if a field is not a dataclass field, or of a type without a parser
    """
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    hints = typing.get_type_hints(config_class)
    docs = field_help(config_class)
    for name, flag in flags.items():
        if name not in fields:
            raise TypeError(f"{config_class.__name__} has no field {name!r}.")
        hint = hints[name]
        if hint not in PARSERS:
            raise TypeError(f"No command-line parser for {config_class.__name__}.{name}: {hint}.")
        default = fields[name].default
        text = (help_texts or {}).get(name, docs.get(name, name))
        parser.add_argument(flag, type=PARSERS[hint], default=default, help=text)


def config_from_args(
    args: argparse.Namespace, config_class: type[ConfigT], flags: Mapping[str, str], **overrides: Any
) -> ConfigT:
    """
    :param args: parsed arguments
    :param config_class: the dataclass whose flags :func:`add_config_flags` added
    :param flags: the same field name -> flag mapping
    :param overrides: further fields, set directly
    :return: the settings the flags give (validated by the dataclass)
    """
    values = {name: getattr(args, dest_of(flag)) for name, flag in flags.items()}
    return config_class(**{**values, **overrides})


def dest_of(flag: str) -> str:
    """
    :param flag: a long flag, e.g. ``--bc-epochs``
    :return: the attribute argparse stores it at, e.g. ``bc_epochs``
    """
    return flag.lstrip("-").replace("-", "_")
