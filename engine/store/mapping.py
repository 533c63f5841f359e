"""Import mapping files: which CSV file fills which table, and how each column is read.

A bank that can only hand over file exports describes them once, in YAML: delimiter, encoding,
which CSV column fills which table column, its type and date format, code tables (``男`` →
``M``) and national ID decoders (a Chinese resident ID or a Czech birth number gives a
birthday and a gender). The file is checked here, all problems at once with their line, and
becomes frozen :class:`ImportMapping` objects; :mod:`engine.store.importing` trusts them.

Nothing in a mapping is executed: converters are chosen by name from fixed tables.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.core.diagnostics import Diagnostic, PathPart, format_text
from engine.core.errors import EngineError
from engine.core.yamlfile import Document, load_file

COLUMN_TYPES = ("string", "integer", "number", "money", "date", "datetime", "boolean")
DEFAULT_FORMATS = {"date": "%Y-%m-%d", "datetime": "%Y-%m-%d %H:%M:%S"}
# Encodings whose line ends are plain b"\n" bytes (so a file can be split into lines before
# decoding, which is what lets a bad byte be reported with its line). UTF-16/32 are not.
_UNSPLITTABLE = ("utf_16", "utf_32")
_TABLE_KEYS = (
    "file",
    "delimiter",
    "encoding",
    "quote",
    "key",
    "columns",
    "indexes",
    "mode",
    "allow_empty",
    "sql",
)
_COLUMN_KEYS = ("from", "type", "format", "century", "codes", "decode", "value", "required", "null")
_TOP_KEYS = ("version", "source_dir", "defaults", "code_tables", "tables", "views")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# `from: "@line"`: the record's line number (for files without ids)
LINE_NUMBER = "@line"
_FORMAT_HINT = "strptime codes, e.g. '%y%m%d' (940331) or '%Y-%m-%d' (1994-03-31)"


class ValueProblem(ValueError):
    """A CSV value cannot be read as its column says; the message is shown to the user."""


@dataclass(frozen=True)
class ColumnSpec:
    """How one table column is filled from a CSV row."""

    name: str
    source: str | None  # CSV header, LINE_NUMBER, or None for a constant
    type: str | None  # None: take it from the existing table
    format: str | None
    century: int | None
    codes: Mapping[str, Any] | None
    code_table: str | None  # the code table's name, for messages
    decode: str | None
    constant: Any
    required: bool
    null: frozenset[str]
    line: int  # where it is declared in the mapping file


@dataclass(frozen=True)
class TableSpec:
    """One target table and the CSV file (if any) that fills it."""

    name: str
    file: str | None  # None: the table is created (or emptied) with no rows
    delimiter: str
    encoding: str
    quote: str
    key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    indexes: tuple[tuple[str, ...], ...]
    mode: str  # replace | append
    allow_empty: bool
    line: int
    # a derived table: filled by INSERT … SELECT over tables imported before it (for example
    # end-of-day balances, which banks keep as a table and queries need indexed)
    sql: str | None = None


@dataclass(frozen=True)
class ViewSpec:
    """A view (re)created after the tables: portable SQL over them, e.g. to give transactions
    the customer key the data dictionary links on."""

    name: str
    sql: str
    line: int


@dataclass(frozen=True)
class ImportMapping:
    path: Path
    source_dir: Path | None
    tables: tuple[TableSpec, ...]
    text: str  # the mapping file, for showing its lines in diagnostics
    views: tuple[ViewSpec, ...] = ()


class DiagnosticsError(EngineError):
    """Several located problems at once (a mapping file, CSV rows, a dictionary against the
    database), shown compiler-style with the source lines when they are known."""

    def __init__(
        self,
        diagnostics: list[Diagnostic],
        summary: str,
        *,
        sources: Mapping[str, str] | None = None,
        code: str = "E1001",
        hint: str | None = None,
        shown: int = 30,
    ) -> None:
        super().__init__(summary, code=code, hint=hint)
        self.diagnostics = diagnostics
        self.sources = dict(sources or {})
        self.shown = shown

    def render(self) -> str:
        blocks = format_text(self.diagnostics[: self.shown], self.sources)
        more = len(self.diagnostics) - self.shown
        tail = f"\n\n… and {more} more problem(s)" if more > 0 else ""
        return f"{blocks}{tail}\n\n{super().render()}"


class MappingInvalid(DiagnosticsError):
    """The mapping file has problems; ``diagnostics`` holds every one of them."""

    def __init__(self, diagnostics: list[Diagnostic], source: str, path: str) -> None:
        super().__init__(
            diagnostics,
            f"{len(diagnostics)} problem(s) in the import mapping {path}; nothing was imported",
            sources={path: source},
        )


def load_mapping(path: Path) -> ImportMapping:
    """Read and check a mapping file; raise :class:`MappingInvalid` listing every problem."""
    if not path.is_file():
        diag = Diagnostic("E1001", "mapping file not found", str(path))
        raise MappingInvalid([diag], "", str(path))
    doc = load_file(path)
    checker = _Checker(doc)
    mapping = checker.mapping(path)
    errors = [d for d in doc.diagnostics + checker.diagnostics if d.is_error]
    if errors or mapping is None:
        raise MappingInvalid(errors, doc.text, doc.path)
    return mapping


class _Checker:
    """Turns the loaded YAML into specs, reporting every problem at its line."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []

    def report(self, path: tuple[PathPart, ...], message: str, hint: str | None = None) -> None:
        mark = self.doc.mark(path)
        self.diagnostics.append(
            Diagnostic("E1002", message, self.doc.path, mark.line, mark.col, path, hint)
        )

    def unknown_keys(self, raw: Mapping[str, Any], allowed: tuple[str, ...], path: Any) -> None:
        for key in raw:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(allowed)}"
                mark = self.doc.mark((*path, key), key=True)
                self.diagnostics.append(
                    Diagnostic(
                        "E1003",
                        f"unknown key '{key}'",
                        self.doc.path,
                        mark.line,
                        mark.col,
                        (*path, key),
                        hint,
                    )
                )

    def mapping(self, path: Path) -> ImportMapping | None:
        raw = self.doc.data
        if any(d.is_error for d in self.doc.diagnostics):
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("tables"), dict):
            self.report((), "a mapping file needs a 'tables' mapping", "see docs/importing.md")
            return None
        self.unknown_keys(raw, _TOP_KEYS, ())
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            self.report(("defaults",), "'defaults' must be a mapping")
            defaults = {}
        self.unknown_keys(defaults, ("delimiter", "encoding", "quote"), ("defaults",))
        code_tables = self._code_tables(raw.get("code_tables") or {})
        tables = []
        for name, spec in raw["tables"].items():
            table = self._table(str(name), spec, defaults, code_tables)
            if table is not None:
                tables.append(table)
        if not raw["tables"]:
            self.report(("tables",), "'tables' is empty: nothing to import")
        source_dir = None
        if raw.get("source_dir") is not None:
            source_dir = (path.parent / str(raw["source_dir"])).resolve()
        views = self._views(raw.get("views") or {}, {t.name for t in tables})
        return ImportMapping(path, source_dir, tuple(tables), self.doc.text, views)

    def _views(self, raw: Any, tables: set[str]) -> tuple[ViewSpec, ...]:
        if not isinstance(raw, dict):
            self.report(("views",), "'views' maps view names to a SELECT statement")
            return ()
        out = []
        for name, sql in raw.items():
            at: tuple[PathPart, ...] = ("views", name)
            if not _NAME.match(str(name)) or name in tables:
                self.report(at, f"'{name}' is not a free view name (letters, digits and _)")
            elif not isinstance(sql, str) or not sql.strip().lower().startswith("select"):
                self.report(at, f"view '{name}' needs a SELECT statement")
            else:
                out.append(ViewSpec(str(name), sql.strip(), self.doc.mark(at, key=True).line))
        return tuple(out)

    def _code_tables(self, raw: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(raw, dict):
            self.report(("code_tables",), "'code_tables' must map names to code tables")
            return {}
        out = {}
        for name, table in raw.items():
            if not isinstance(table, dict) or not table:
                self.report(("code_tables", name), "a code table maps source codes to values")
                continue
            out[str(name)] = {str(k): v for k, v in table.items()}
        return out

    def _table(
        self,
        name: str,
        spec: Any,
        defaults: Mapping[str, Any],
        code_tables: Mapping[str, Mapping[str, Any]],
    ) -> TableSpec | None:
        path: tuple[PathPart, ...] = ("tables", name)
        if not _NAME.match(name):
            self.report(path, f"'{name}' is not a table name (letters, digits and _)")
            return None
        if not isinstance(spec, dict) or not isinstance(spec.get("columns"), dict):
            self.report(path, f"table '{name}' needs a 'columns' mapping")
            return None
        self.unknown_keys(spec, _TABLE_KEYS, path)
        ok = True
        settings = {k: spec.get(k, defaults.get(k)) for k in ("delimiter", "encoding", "quote")}
        delimiter = str(settings["delimiter"] or ",").replace("\\t", "\t")
        quote = str(settings["quote"] or '"')
        if len(delimiter) != 1 or len(quote) != 1:
            self.report(path, "'delimiter' and 'quote' must be one character each", "';' or ','")
            ok = False
        encoding = str(settings["encoding"] or "utf-8")
        try:
            canonical = codecs.lookup(encoding).name
        except LookupError:
            self.report((*path, "encoding"), f"unknown encoding '{encoding}'", "utf-8 or gbk")
            ok, canonical = False, "utf-8"
        if canonical.replace("-", "_").startswith(_UNSPLITTABLE):
            self.report((*path, "encoding"), f"encoding '{encoding}' is not supported", "utf-8")
            ok = False
        columns = []
        for col_name, col_spec in spec["columns"].items():
            column = self._column(path, str(col_name), col_spec, code_tables)
            ok = ok and column is not None
            if column is not None:
                columns.append(column)
        names = {c.name for c in columns}
        key = _names(spec.get("key") or [])
        for k in key:
            if k not in names:
                self.report((*path, "key"), f"key column '{k}' is not among the columns")
                ok = False
        indexes = tuple(_names(ix) for ix in spec.get("indexes") or [])
        for ix in indexes:
            for c in ix:
                if c not in names:
                    self.report((*path, "indexes"), f"index column '{c}' is not among the columns")
                    ok = False
        mode = str(spec.get("mode", "replace"))
        if mode not in ("replace", "append"):
            self.report((*path, "mode"), f"mode '{mode}' is unknown", "replace or append")
            ok = False
        file = spec.get("file")  # none: the table is created (or emptied) and left empty
        sql = spec.get("sql")
        if sql is not None and (
            file is not None or not str(sql).strip().lower().startswith("select")
        ):
            self.report((*path, "sql"), "a derived table takes a SELECT statement and no file")
            ok = False
        if not ok:
            return None
        return TableSpec(
            name=name,
            file=None if file is None else str(file),
            delimiter=delimiter,
            encoding=encoding,
            quote=quote,
            key=key,
            columns=tuple(columns),
            indexes=indexes,
            mode=mode,
            allow_empty=bool(spec.get("allow_empty", False)),
            line=self.doc.mark(path, key=True).line,
            sql=None if sql is None else str(sql).strip(),
        )

    def _column(
        self,
        table_path: tuple[PathPart, ...],
        name: str,
        raw: Any,
        code_tables: Mapping[str, Mapping[str, Any]],
    ) -> ColumnSpec | None:
        path = (*table_path, "columns", name)
        if not _NAME.match(name):
            self.report(path, f"'{name}' is not a column name (letters, digits and _)")
            return None
        if raw is None:
            raw = {}
        if isinstance(raw, str):
            raw = {"type": raw}
        if not isinstance(raw, dict):
            self.report(path, "a column is a type name or a mapping", "name: {from: 姓名}")
            return None
        self.unknown_keys(raw, _COLUMN_KEYS, path)
        ok = True
        ctype = raw.get("type")
        if ctype is not None and ctype not in COLUMN_TYPES:
            close = difflib.get_close_matches(str(ctype), COLUMN_TYPES, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"one of {', '.join(COLUMN_TYPES)}"
            self.report((*path, "type"), f"unknown column type '{ctype}'", hint)
            ok = False
        decode = raw.get("decode")
        if decode is not None:
            if decode not in DECODERS:
                self.report(
                    (*path, "decode"),
                    f"unknown decoder '{decode}'",
                    f"known: {', '.join(sorted(DECODERS))}",
                )
                ok = False
            else:
                implied = DECODERS[decode][1]
                if ctype is not None and ctype != implied:
                    self.report((*path, "type"), f"'{decode}' gives a {implied}, not a {ctype}")
                    ok = False
                ctype = implied
        fmt = raw.get("format")
        if fmt is not None and ctype not in ("date", "datetime"):
            self.report((*path, "format"), "'format' is for date and datetime columns")
            ok = False
        if fmt is not None:
            ok = self._check_format(path, str(fmt)) and ok
        century = raw.get("century")
        if century is not None and (not isinstance(century, int) or century % 100):
            self.report((*path, "century"), "'century' is a year like 1900 or 2000")
            ok = False
        codes, code_table = self._codes(path, raw.get("codes"), code_tables)
        if raw.get("codes") is not None and codes is None:
            ok = False
        constant = raw.get("value")
        source: str | None = None if "value" in raw else str(raw.get("from", name))
        if "value" in raw and "from" in raw:
            self.report(path, "a column takes either 'from' or 'value', not both")
            ok = False
        null = raw.get("null", [""])
        if not isinstance(null, list) or not all(isinstance(n, str | int) for n in null):
            self.report((*path, "null"), "'null' lists the texts that mean empty", '["", "NA"]')
            ok = False
            null = [""]
        if not ok:
            return None
        return ColumnSpec(
            name=name,
            source=source,
            type=ctype,
            format=None if fmt is None else str(fmt),
            century=century,
            codes=codes,
            code_table=code_table,
            decode=decode,
            constant=constant,
            required=bool(raw.get("required", False)),
            null=frozenset(str(n) for n in null) | {""},
            line=self.doc.mark(path, key=True).line,
        )

    def _check_format(self, path: tuple[PathPart, ...], fmt: str) -> bool:
        try:
            dt.datetime(1994, 3, 31, 12, 5, 9).strftime(fmt)
        except ValueError:
            self.report((*path, "format"), f"'{fmt}' is not a date format", _FORMAT_HINT)
            return False
        if "%" not in fmt:
            self.report((*path, "format"), f"'{fmt}' has no % fields", _FORMAT_HINT)
            return False
        return True

    def _codes(
        self, path: tuple[PathPart, ...], raw: Any, tables: Mapping[str, Mapping[str, Any]]
    ) -> tuple[Mapping[str, Any] | None, str | None]:
        if raw is None:
            return None, None
        if isinstance(raw, str):
            if raw not in tables:
                close = difflib.get_close_matches(raw, list(tables), n=1)
                hint = f"did you mean '{close[0]}'?" if close else "declare it under code_tables"
                self.report((*path, "codes"), f"unknown code table '{raw}'", hint)
                return None, None
            return tables[raw], raw
        if isinstance(raw, dict) and raw:
            return {str(k): v for k, v in raw.items()}, None
        self.report((*path, "codes"), "'codes' names a code table or maps codes to values")
        return None, None


def _names(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list):
        return tuple(str(x) for x in raw)
    return ()


# --- reading one value ---------------------------------------------------------------------

_INTEGER = re.compile(r"^[+-]?\d+$")
_BOOLEANS = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "t": True,
    "f": False,
    "是": True,
    "否": False,
}


def convert(spec: ColumnSpec, ctype: str, text: str) -> Any:
    """One CSV value (already stripped, not empty) → a typed Python value, or ValueProblem."""
    if spec.decode is not None:
        return DECODERS[spec.decode][0](text, spec)
    if spec.codes is not None:
        if text not in spec.codes:
            where = f"code table '{spec.code_table}'" if spec.code_table else "its codes"
            known = ", ".join(list(spec.codes)[:8])
            raise ValueProblem(f"'{text}' is not in {where} (known: {known})")
        value = spec.codes[text]
        if value is None:
            return None
        text = str(value).lower() if isinstance(value, bool) else str(value)
    if ctype == "string":
        return text
    if ctype == "integer":
        if not _INTEGER.match(text):
            raise ValueProblem(f"'{text}' is not a whole number")
        return int(text)
    if ctype in ("number", "money"):
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueProblem(f"'{text}' is not a number") from None
        if not number.is_finite():
            raise ValueProblem(f"'{text}' is not a number")
        return number if ctype == "money" else float(number)
    if ctype == "boolean":
        found = _BOOLEANS.get(text.lower())
        if found is None:
            raise ValueProblem(f"'{text}' is not a yes/no value")
        return found
    if ctype in ("date", "datetime"):
        fmt = spec.format or DEFAULT_FORMATS[ctype]
        moment = parse_moment(text, fmt, spec.century)
        return moment.date() if ctype == "date" else moment
    raise ValueProblem(f"unknown type {ctype}")


@functools.lru_cache(maxsize=8192)  # exports repeat the same dates over and over
def parse_moment(text: str, fmt: str, century: int | None) -> dt.datetime:
    """strptime, with ``century`` fixing two-digit years (Python's %y pivots at 1969)."""
    try:
        moment = dt.datetime.strptime(text, fmt)
    except ValueError:
        raise ValueProblem(f"'{text}' is not a date in the format {fmt}") from None
    if century is not None and "%y" in fmt:
        year = century + moment.year % 100
        try:
            moment = moment.replace(year=year)
        except ValueError:  # 29 February of a year that is no leap year in that century
            raise ValueProblem(f"'{text}' is not a date in {year}") from None
    return moment


# --- national ID decoders ------------------------------------------------------------------


def _cz_parts(text: str, spec: ColumnSpec) -> tuple[dt.date, str]:
    """Czech/Slovak birth number (rodné číslo): YYMMDD, women's month + 50."""
    digits = text.split("/")[0]
    if not re.fullmatch(r"\d{6}", digits):
        raise ValueProblem(f"'{text}' is not a birth number (YYMMDD)")
    yy, mm, dd = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    gender = "M"
    if mm > 50:
        mm, gender = mm - 50, "F"
    year = (spec.century if spec.century is not None else 1900) + yy
    try:
        return dt.date(year, mm, dd), gender
    except ValueError:
        raise ValueProblem(f"'{text}' is not a birth number: no date {year}-{mm}-{dd}") from None


_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"


def _cn_parts(text: str, spec: ColumnSpec) -> tuple[dt.date, str]:
    """中国居民身份证: 18 characters (birth date at 7–14, check digit by ISO 7064), or the old
    15-digit form (YYMMDD at 7–12, 19YY); the sequence number is odd for men."""
    code = text.upper()
    if re.fullmatch(r"\d{17}[\dX]", code):
        total = sum(int(c) * w for c, w in zip(code[:17], _CN_WEIGHTS, strict=True))
        if _CN_CHECK[total % 11] != code[17]:
            raise ValueProblem("not a valid resident ID number (check digit)")
        birth, seq = code[6:14], int(code[16])
    elif re.fullmatch(r"\d{15}", code):
        birth, seq = "19" + code[6:12], int(code[14])
    else:
        raise ValueProblem("not a resident ID number (18 or 15 characters)")
    try:
        day = dt.datetime.strptime(birth, "%Y%m%d").date()
    except ValueError:
        raise ValueProblem(f"resident ID number holds no valid birth date ({birth})") from None
    return day, ("M" if seq % 2 else "F")


DECODERS: dict[str, tuple[Callable[[str, ColumnSpec], Any], str]] = {
    "cz_birth_number.birth_date": (lambda t, s: _cz_parts(t, s)[0], "date"),
    "cz_birth_number.gender": (lambda t, s: _cz_parts(t, s)[1], "string"),
    "cn_resident_id.birth_date": (lambda t, s: _cn_parts(t, s)[0], "date"),
    "cn_resident_id.gender": (lambda t, s: _cn_parts(t, s)[1], "string"),
}
