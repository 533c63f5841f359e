"""Reading CSV exports for the importer: records with their line numbers, header checks, and
rows turned into typed values with every bad one reported by file, line and column.

Lines are split as bytes and decoded one by one with ``surrogateescape``: a byte that is not
valid in the file's encoding is found in its record and column, instead of a decoding error
that stops the whole file somewhere in a buffer.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Numeric, Table

from engine.core.diagnostics import Diagnostic
from engine.store.mapping import LINE_NUMBER, ColumnSpec, TableSpec, ValueProblem, convert

KEEP_PROBLEMS = 1000  # per file: enough to see a pattern, bounded for a file that is all wrong
_OTHER_DELIMITERS = (",", ";", "\t", "|")


@dataclass
class Target:
    """One table being filled: its mapping, its SQLAlchemy table (reflected or to be created),
    the type each column is read as, the key checked for duplicates, and the file."""

    spec: TableSpec
    table: Table
    types: dict[str, str]  # column -> the type its values are read as
    key: tuple[str, ...]
    created: bool
    path: Path | None


@dataclass
class Record:
    """One CSV record: the line it starts on, its fields, and its text (for the rejects)."""

    line: int
    fields: list[str]
    raw: str


def check_header(target: Target, problems: list[Diagnostic]) -> None:
    """Before anything is written: the file opens, has a usable header and, unless the mapping
    allows it, at least one row (an empty export is usually a failed one)."""
    assert target.path is not None
    try:
        with open_file(target.path) as fh:
            header = _header(fh, target, problems)
    except OSError as exc:
        problems.append(Diagnostic("E1013", f"cannot read the file: {exc}", str(target.path)))
        return
    if header is None:
        return
    if not target.spec.allow_empty:
        with open_file(target.path) as fh:
            records = read_records(fh, target.spec, lambda _n: None)
            next(records, None)  # the header
            if all(not r.fields for r in records):
                problems.append(
                    Diagnostic(
                        "E1014",
                        "the file has a header but no rows",
                        str(target.path),
                        2,
                        1,
                        hint="an empty export is usually a failed one; set allow_empty: true "
                        "in the mapping if empty is right",
                    )
                )


@contextlib.contextmanager
def open_file(path: Path) -> Iterator[Any]:
    with path.open("rb") as fh:
        yield fh


def _header(fh: Any, target: Target, problems: list[Diagnostic]) -> list[str] | None:
    """The header's column names, or None after reporting why it cannot be used."""
    spec, file = target.spec, str(target.path)
    first = next(read_records(fh, spec, lambda _n: None), None)
    if first is None or not any(f.strip() for f in first.fields):
        problems.append(
            Diagnostic("E1014", "the file is empty: no header line", file, 1, 1, hint="re-export")
        )
        return None
    header = [f.strip() for f in first.fields]
    bad = [i for i, name in enumerate(header) if _undecodable(name)]
    if bad:
        problems.append(
            Diagnostic(
                "E1015",
                f"the header is not {spec.encoding} text",
                file,
                1,
                bad[0] + 1,
                hint="set 'encoding' in the mapping (utf-8, gbk, …)",
            )
        )
        return None
    wanted = [c.source for c in spec.columns if c.source not in (None, LINE_NUMBER)]
    missing = [w for w in dict.fromkeys(wanted) if w not in header]
    if missing:
        hint = _delimiter_hint(first.raw, spec, missing) or f"the header has: {', '.join(header)}"
        problems.append(
            Diagnostic(
                "E1016",
                f"the header has no column {', '.join(repr(m) for m in missing)}",
                file,
                1,
                1,
                hint=hint,
            )
        )
        return None
    dupes = sorted({h for h in header if header.count(h) > 1 and h in wanted})
    if dupes:
        problems.append(Diagnostic("E1016", f"the header names {dupes[0]!r} twice", file, 1, 1))
        return None
    return header


def _delimiter_hint(raw: str, spec: TableSpec, wanted: Sequence[str]) -> str | None:
    for other in _OTHER_DELIMITERS:
        if other == spec.delimiter or other not in raw:
            continue
        fields = next(csv.reader([raw.strip()], delimiter=other, quotechar=spec.quote), [])
        if any(w in [f.strip() for f in fields] for w in wanted):
            return (
                f"the file seems to be separated by {other!r}, not {spec.delimiter!r}; "
                "set 'delimiter' in the mapping"
            )
    return None


_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes, as surrogateescape keeps them


def _undecodable(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _bad_bytes(text: str) -> str:
    raw = text.encode("utf-8", "surrogateescape")
    found = [ch for ch in text if "\udc80" <= ch <= "\udcff"]
    shown = " ".join(f"0x{ord(ch) - 0xDC00:02x}" for ch in found[:4])
    return shown or repr(raw)


def read_records(fh: Any, spec: TableSpec, advance: Callable[[int], None]) -> Iterator[Record]:
    """CSV records with their first line number and raw text.

    Lines are split as bytes and decoded one by one with ``surrogateescape``, so a byte that is
    not valid in the file's encoding is found in its record and column instead of stopping
    the whole file with a decoding error.
    """
    encoding = codecs.lookup(spec.encoding).name
    buffer: list[str] = []

    def lines() -> Iterator[str]:
        first = True
        for raw in fh:
            advance(len(raw))
            if first and encoding.startswith("utf-8") and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            first = False
            text = raw.decode(encoding, "surrogateescape")
            buffer.append(text)
            yield text

    reader = csv.reader(lines(), delimiter=spec.delimiter, quotechar=spec.quote)
    done = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(done + 1, ["\x00csv", str(exc)], "".join(buffer))
            buffer.clear()
            done = reader.line_num
            continue
        yield Record(done + 1, fields, "".join(buffer))
        buffer.clear()
        done = reader.line_num


class Rows:
    """Turns one file's records into typed rows, reporting every bad one."""

    def __init__(
        self,
        target: Target,
        header: list[str],
        seen: dict[tuple[Any, ...], tuple[str, int]],
        *,
        keep_rejected: bool,
    ) -> None:
        self.target = target
        self.file = str(target.path)
        self.width = len(header)
        self.index = {name: i for i, name in enumerate(header)}
        self.seen = seen
        self.problems: list[Diagnostic] = []
        # line, col, reason, raw: kept for --skip-bad only (a file that is all wrong is big)
        self.rejected: list[tuple[int, int, str, str]] = []
        self.keep_rejected = keep_rejected
        self.bad = 0
        self.written = 0

    def problem(self, record: Record, col: int, message: str, hint: str | None = None) -> None:
        self.bad += 1
        if len(self.problems) < KEEP_PROBLEMS:
            self.problems.append(
                Diagnostic("E1020", message, self.file, record.line, col, (), hint)
            )
        if self.keep_rejected:
            self.rejected.append((record.line, col, message, record.raw))

    def row(self, record: Record) -> dict[str, Any] | None:
        fields = record.fields
        if fields and fields[0] == "\x00csv":
            self.problem(record, 1, f"not valid CSV: {fields[1]}")
            return None
        if len(fields) != self.width:
            hint = None
            if len(fields) == 1:
                hint = _delimiter_hint(record.raw, self.target.spec, list(self.index))
            self.problem(
                record,
                1,
                f"expected {self.width} fields as in the header, found {len(fields)}",
                hint,
            )
            return None
        out: dict[str, Any] = {}
        ok = True
        suspect = _undecodable(record.raw)
        for c in self.target.spec.columns:
            ok = self._value(record, c, out, suspect) and ok
        if not ok:
            return None
        if self.target.key:
            key = tuple(out.get(k) for k in self.target.key)
            first = self.seen.get(key)
            if first is not None:
                col = self.index.get(self._source(self.target.key[0]) or "", 0) + 1
                shown = ", ".join(str(k) for k in key)
                where = f"line {first[1]}" + ("" if first[0] == self.file else f" of {first[0]}")
                self.problem(record, col, f"duplicate key {shown} (first on {where})")
                return None
            self.seen[key] = (self.file, record.line)
        return out

    def _source(self, column: str) -> str | None:
        for c in self.target.spec.columns:
            if c.name == column:
                return c.source
        return None

    def _value(self, record: Record, c: ColumnSpec, out: dict[str, Any], suspect: bool) -> bool:
        ctype = self.target.types[c.name]
        if c.source is None:
            value = c.constant
            if isinstance(value, str) and ctype != "string":
                value = convert(c, ctype, value)
            out[c.name] = value
            return True
        if c.source == LINE_NUMBER:
            out[c.name] = record.line
            return True
        i = self.index[c.source]
        text = record.fields[i].strip()
        label = f"column '{c.source}'"
        if suspect and _undecodable(text):
            self.problem(
                record,
                i + 1,
                f"{label}: byte(s) {_bad_bytes(text)} are not valid {self.target.spec.encoding}",
                "set 'encoding' in the mapping (utf-8, gbk, …) or fix the file",
            )
            return False
        if text in c.null:
            if c.required or c.name in self.target.key:
                self.problem(record, i + 1, f"{label} is empty")
                return False
            out[c.name] = None
            return True
        try:
            out[c.name] = convert(c, ctype, text)
        except ValueProblem as exc:
            self.problem(record, i + 1, f"{label}: {exc}")
            return False
        if out[c.name] is None and (c.required or c.name in self.target.key):
            self.problem(record, i + 1, f"{label} is empty")
            return False
        column = self.target.table.c.get(c.name)
        unfit = None if column is None else does_not_fit(column.type, out[c.name])
        if unfit is not None:
            self.problem(record, i + 1, f"{label}: {unfit}")
            return False
        return True


MAX_INTEGER = 2**63 - 1


def does_not_fit(sql_type: Any, value: Any) -> str | None:
    """Why ``value`` cannot be stored in a column of ``sql_type`` as it is, or None.

    Checked here, per value, because the database would refuse the whole load (PostgreSQL) or
    keep a different value (SQLite: an infinity for ``1e400``, a 26-digit amount in a
    NUMERIC(18,2)), and a NUL byte ends text early in C drivers."""
    if isinstance(value, str):
        if "\x00" in value:
            return "holds a NUL byte"
        length = getattr(sql_type, "length", None)
        if isinstance(length, int) and len(value) > length:
            return f"is {len(value)} characters; the column holds at most {length}"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if abs(value) <= MAX_INTEGER else "is too large for a whole-number column"
    if isinstance(value, float | Decimal):
        if not math.isfinite(value) or abs(float(value)) > sys.float_info.max:
            return "is out of range"
        precision = getattr(sql_type, "precision", None)
        scale = getattr(sql_type, "scale", None) or 0
        digits = None if precision is None else int(precision) - int(scale)
        if (
            isinstance(sql_type, Numeric)
            and digits is not None
            and abs(Decimal(str(value))) >= Decimal(10) ** digits
        ):
            return (
                f"has more than {digits} digits before the decimal point "
                f"(the column is NUMERIC({precision},{scale}))"
            )
    return None
