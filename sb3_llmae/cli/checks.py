"""Range checks of the CLI's numeric flags, run before any work: NaN, infinities, negative and absurdly
large values are refused with the flag's name and the range it takes."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass

# Seconds a network wait may be given at most (a day): past it, timers overflow or nothing would ever end.
MAX_SECONDS = 86_400.0


@dataclass(frozen=True)
class Range:
    """
    The values a numeric flag takes.

    :param low: the smallest, ``None``: no bound below
    :param high: the largest, ``None``: no bound above (the value must still be finite)
    :param low_open: whether ``low`` itself is refused (``> low`` rather than ``>= low``)
    :param unit: what the number counts, for the message (``"seconds"``)
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    unit: str = ""

    def describe(self) -> str:
        """:return: the range in words, e.g. ``a finite number > 0 and <= 86400 (seconds)``"""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        unit = f" ({self.unit})" if self.unit else ""
        return f"a finite number {' and '.join(parts)}{unit}".replace("number  ", "number ")

    def contains(self, value: float) -> bool:
        """:return: whether ``value`` is in the range (and finite)"""
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
PROBABILITY = Range(0, 1)
SECONDS = Range(0, MAX_SECONDS, low_open=True, unit="seconds")


def check_ranges(
    args: argparse.Namespace, ranges: Mapping[str, Range], dests: Mapping[str, str] | None = None
) -> None:
    """
    Refuse any numeric flag outside its range (``None``: not given, nothing to check).

    :param args: the parsed arguments
    :param ranges: per flag (``--timeout``), its range
    :param dests: the ``dest`` of flags whose value is not stored under their own name
    :raises ValueError: naming the first flag out of range, its value and its range
    """
    for flag, allowed in ranges.items():
        value = getattr(args, (dests or {}).get(flag) or flag.lstrip("-").replace("-", "_"))
        if value is not None and not allowed.contains(float(value)):
            raise ValueError(f"{flag} must be {allowed.describe()}, got {value}.")
