"""Durations as users write them (``30s``, ``15m``, ``4h``, ``2d``), in seconds.

The simulation clock runs in seconds. A bare number is taken as seconds.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")  # no unit: seconds
DURATION_HELP = 'a duration such as "30s", "15m", "4h", "2d" or a number of seconds'


def parse_duration(value: Any) -> float:
    """Return ``value`` in seconds.

    >>> parse_duration("15m"), parse_duration("2d"), parse_duration(90)
    (900.0, 172800.0, 90.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"expected {DURATION_HELP}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected {DURATION_HELP}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite (accepted: {DURATION_HELP})")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the units above.

    >>> format_duration(900), format_duration(172800), format_duration(7)
    ('15m', '2d', '7s')
    """
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d|w)$"},
            ],
            "description": DURATION_HELP,
        }
    ),
]
"""A pydantic field type: a duration in seconds, written as ``15m`` or a number."""
