"""Events as they arrive: JSON read strictly, so one hostile line is one rejected event.

``json.loads`` accepts what a bank's feed must not send and what the engine cannot store:
a key given twice (which value is meant?), a number with hundreds of digits (it overflows the
first float conversion), ``NaN`` and ``Infinity``, and arrays nested so deep that decoding
recurses past Python's limit. :func:`loads` refuses each with a short reason (a ValueError),
and the reader turns that into a rejected event; the lines around it are read as usual.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DIGITS = 30
"""Digits a number may have: an amount in cents fits in 20, a timestamp in 13."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key[:40]!r} is given twice")
        out[key] = value
    return out


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a number with more than {MAX_DIGITS} digits")
    return int(text)


def _real(text: str) -> float:
    if len(text) > MAX_DIGITS + 10:
        raise ValueError(f"a number with more than {MAX_DIGITS} digits")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number out of range")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number an event may carry")


def loads(text: str | bytes) -> Any:
    """Decode one JSON document strictly; a ValueError says why it was refused."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_real,
            parse_constant=_constant,
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None
