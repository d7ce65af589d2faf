"""Spice's duration strings (``500ms``, ``10s``, ``5m``, ``1h``, ``1d``, also ``1h30m``)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "ns": timedelta(microseconds=0.001),
    "us": timedelta(microseconds=1),
    "µs": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ns|us|µs|ms|s|m|h|d|w)\s*)+$")

DURATION_HELP = "a duration such as 500ms, 10s, 5m, 1h, 1d or 1h30m"


def parse_duration(text: str) -> timedelta:
    """Parse a Spice duration; ``ValueError`` saying what is allowed when it is not one."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not {DURATION_HELP}")
    total = timedelta()
    for number, unit in _PART.findall(text):
        total += _UNITS[unit] * float(number)
    return total


def format_duration(value: timedelta) -> str:
    """The shortest Spice duration string for ``value`` (``90s`` -> ``1m30s``)."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
