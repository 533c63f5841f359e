"""Durations as staff write them: ``30d``, ``2w``, ``12h``, ``90min``.

Months and years are deliberately absent: "1 month" is 28 to 31 days and staff mean
different things by it; anniversaries have their own condition.
"""

from __future__ import annotations

import datetime as dt
import re

from engine.core.i18n import t

_UNITS = {"min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*(min|h|d|w)\s*$")
EXAMPLES = "30d, 2w, 12h, 90min"
MAX_DAYS = 3660


class DurationError(ValueError):
    @property
    def message(self) -> str:
        """The catalog message (shown in the reader's language by the validator)."""
        return self.args[0] if self.args and isinstance(self.args[0], str) else str(self)


def parse_duration(text: object) -> dt.timedelta:
    """``"30d"`` → ``timedelta(days=30)``; anything else raises :class:`DurationError`."""
    if not isinstance(text, str):
        raise DurationError(t("PB0110.expected", examples=EXAMPLES, value=repr(text)))
    match = _PATTERN.match(text)
    if not match:
        raise DurationError(t("PB0110.unit", value=text, examples=EXAMPLES))
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise DurationError(t("PB0110.zero", value=text))
    if amount * _UNITS[unit] > MAX_DAYS * 86400:
        raise DurationError(t("PB0110.long", value=text, days=MAX_DAYS))
    return dt.timedelta(seconds=amount * _UNITS[unit])


def format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "min"):
        size = _UNITS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
