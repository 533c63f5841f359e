"""Cells that a spreadsheet shows as text, never runs as a formula.

A CSV export is opened in Excel or WPS by managers; a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is read there as a formula (``=HYPERLINK(…)``,
``=cmd|' /C calc'!A0``), and customers' names, notes and imported records are text anyone
could have typed. OWASP's rule: prefix such a text cell with a single quote, which the
spreadsheet shows as text and does not display. Numbers stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell: a text that a spreadsheet would run is prefixed with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose every text cell goes through :func:`safe_cell`."""

    def __init__(self, out: Any) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])
