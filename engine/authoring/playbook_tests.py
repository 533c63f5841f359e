"""Playbook unit tests: ``promtool test rules``, for customers.

A test file freezes "now", lists a handful of fixture customers (only the fields that matter)
with their history, and says what each customer should get. The engine builds a throwaway
SQLite store from the fixtures and runs the real execution path with a recording sink, so a
test passes only if the playbook, its templates and the policy behave as written.

File shape (YAML)::

    playbook: vip-inactive-60d
    now: 2026-11-23T09:00:00+08:00
    customers:
      - {id: C1, name: 张伟, gender: M, tier: vip, last_active_at: "2026-08-01 10:00"}
    tests:
      - name: an inactive VIP gets a call task and an SMS
        expect:
          C1:
            task: {title_contains: 电话回访}
            sms: {contains: 好久不见}
      - name: a churned VIP is left alone
        customers:
          - {id: C2, tier: vip, last_active_at: "2026-08-01", tags: [已流失]}
        expect:
          C2: nothing
      - name: the holdout group is measured, not contacted
        expect:
          C1: held_out
"""

from __future__ import annotations

import datetime as dt
import difflib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import Engine, insert

from engine.core.clock import Clock, utc_naive
from engine.core.dictionary import DataDictionary
from engine.core.errors import EngineError
from engine.core.settings import Settings
from engine.core.yamlfile import load_file
from engine.events.processor import EventProcessor
from engine.execution.executor import Executor, Outcome
from engine.execution.sinks import Decision, RecordingSink
from engine.playbook.model import Playbook
from engine.rendering.renderer import Renderer
from engine.store import models as m
from engine.store.db import create_all, open_store
from engine.triggers.event import EventTrigger

HISTORY = {
    "holdings": m.holdings,
    "transactions": m.transactions,
    "contacts": m.contacts,
    "complaints": m.complaints,
    "aum_snapshots": m.aum_snapshots,  # dated AUM history, for aum_change
}
DEFAULT_MANAGER = {"id": "M0001", "name": "李经理", "phone": "13900000000", "role": "manager"}
CHANNELS = ("sms", "email", "phone")
PURPOSES = ("marketing", "service")


class PlaybookTestError(EngineError):
    """A test file that cannot be run (bad shape, unknown field, unknown playbook)."""


@dataclass
class CaseResult:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class _Case:
    name: str
    now: dt.datetime
    customers: list[dict[str, Any]]
    managers: list[dict[str, Any]]
    expect: dict[str, Any]
    events: list[Any] = field(default_factory=list)  # event playbooks: what arrives


def discover_tests(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.rglob("*.test.yaml"))
        elif path.exists():
            found.append(path)
        else:
            raise PlaybookTestError("no such test file or folder", code="E0801", where=str(path))
    return found


def run_test_file(
    path: Path,
    playbooks: Mapping[str, Playbook],
    settings: Settings,
    dictionary: DataDictionary,
    renderer: Renderer,
    name_filter: str | None = None,
) -> list[CaseResult]:
    doc = load_file(path)
    if doc.diagnostics or not isinstance(doc.data, dict):
        problem = doc.diagnostics[0].message if doc.diagnostics else "expected a mapping"
        raise PlaybookTestError(f"cannot read test file: {problem}", code="E0802", where=str(path))
    data: dict[str, Any] = doc.data
    playbook_id = data.get("playbook")
    if playbook_id not in playbooks:
        known = ", ".join(sorted(playbooks)) or "none"
        raise PlaybookTestError(
            f"unknown or invalid playbook {playbook_id!r}",
            code="E0803",
            where=str(path),
            hint=f"valid playbooks: {known}; run `python runner.py validate`",
        )
    playbook = playbooks[str(playbook_id)]
    results = []
    for case in _cases(path, data, settings):
        if name_filter and name_filter not in case.name:
            continue
        result = CaseResult(str(path), case.name)
        try:
            outcome = _run_case(case, playbook, settings, dictionary, renderer)
            result.failures = _compare(case.expect, outcome)
        except EngineError as exc:
            result.failures = [exc.render()]
        results.append(result)
    return results


def _cases(path: Path, data: Mapping[str, Any], settings: Settings) -> list[_Case]:
    tests = data.get("tests")
    if not isinstance(tests, list) or not tests:
        raise PlaybookTestError("a test file needs a 'tests' list", code="E0804", where=str(path))
    cases = []
    for i, raw in enumerate(tests):
        where = f"{path}: tests[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("expect"), dict):
            raise PlaybookTestError(
                "each test needs an 'expect' mapping", code="E0804", where=where
            )
        now = _moment(raw.get("now", data.get("now")), settings, where)
        customers = list(data.get("customers") or []) + list(raw.get("customers") or [])
        managers = list(data.get("managers") or []) + list(raw.get("managers") or [])
        cases.append(
            _Case(
                name=str(raw.get("name", f"test {i + 1}")),
                now=now,
                customers=customers,
                managers=managers,
                expect={str(k): v for k, v in raw["expect"].items()},
                events=list(data.get("events") or []) + list(raw.get("events") or []),
            )
        )
    return cases


def _moment(value: Any, settings: Settings, where: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise PlaybookTestError(
            f"'now' must be an ISO 8601 time, got {value!r}", code="E0805", where=where
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.timezone)
    return moment


# --- the throwaway store ---------------------------------------------------------------------


def _run_case(
    case: _Case,
    playbook: Playbook,
    settings: Settings,
    dictionary: DataDictionary,
    renderer: Renderer,
) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="playbook-test-") as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'store.db'}")
        try:
            create_all(store)
            clock = Clock.at(case.now, settings.timezone)
            _load_fixtures(store, case, dictionary, clock)
            if isinstance(playbook.trigger, EventTrigger):
                return _run_events(case, playbook, store, settings, dictionary, renderer)
            executor = Executor(store, settings, dictionary, renderer)
            return executor.execute(playbook, clock, RecordingSink(mask=False), keep_details=True)
        finally:
            store.dispose()


def _run_events(
    case: _Case,
    playbook: Playbook,
    store: Engine,
    settings: Settings,
    dictionary: DataDictionary,
    renderer: Renderer,
) -> Outcome:
    """An event playbook's case: the case's ``events`` arrive at ``now`` (windows that have
    closed by then are decided), every match is previewed; one outcome gathers them."""

    processor = EventProcessor(
        store, settings, dictionary, renderer, persist=False, mask=False, keep_details=True
    )
    processor.restore([playbook], case.now)
    report = processor.process([(f"events[{i}]", e) for i, e in enumerate(case.events)], case.now)
    if report.rejected:
        source, rejected = report.rejected[0]
        raise PlaybookTestError(f"{source}: {rejected.message}", code="E0707")
    merged = Outcome(playbook=playbook, window="events", as_of=case.now, sql="")
    for handled in report.handled:
        if handled.outcome is not None:
            merged.matched += handled.outcome.matched
            merged.decisions += handled.outcome.decisions
    return merged


def _load_fixtures(store: Engine, case: _Case, dictionary: DataDictionary, clock: Clock) -> None:
    columns = {f.key: f.column for f in dictionary if f.column}
    managers = case.managers or [DEFAULT_MANAGER]
    with store.begin() as conn:
        conn.execute(insert(m.branches).values(id="B001", name="测试支行", city="上海"))
        for manager in managers:
            conn.execute(
                insert(m.managers).values(**{**DEFAULT_MANAGER, "branch_id": "B001", **manager})
            )
        for raw in case.customers:
            row, extras = _customer_row(raw, columns, managers[0]["id"], clock)
            cid = row["id"]
            conn.execute(insert(m.customers).values(**row))
            for tag in extras.get("tags") or []:
                conn.execute(insert(m.customer_tags).values(customer_id=cid, tag=str(tag)))
            for channel, purpose, given in _consents(extras.get("consents"), cid):
                conn.execute(
                    insert(m.consents).values(
                        customer_id=cid,
                        channel=channel,
                        purpose=purpose,
                        given_at=clock.now - dt.timedelta(days=365),
                        withdrawn_at=None if given else clock.now - dt.timedelta(days=1),
                    )
                )
            for table_name, rows in (extras.get("history") or {}).items():
                table = HISTORY.get(table_name)
                if table is None:
                    raise PlaybookTestError(
                        f"customer {cid}: unknown history '{table_name}'",
                        code="E0806",
                        hint=f"history kinds: {', '.join(HISTORY)}, sends",
                    )
                for item in rows:
                    conn.execute(insert(table).values(customer_id=cid, **_known(table, item, cid)))
            for send in extras.get("sends") or []:
                _prior_send(conn, cid, send, clock)


def _customer_row(
    raw: Mapping[str, Any], columns: Mapping[str, str], manager_id: str, clock: Clock
) -> tuple[dict[str, Any], dict[str, Any]]:
    if "id" not in raw:
        raise PlaybookTestError("every fixture customer needs an 'id'", code="E0707")
    cid = str(raw["id"])
    row: dict[str, Any] = {
        "id": cid,
        "name": "测试客户",
        "gender": None,
        "birthday_calendar": "solar",
        "phone": "13800000000",
        "branch_id": "B001",
        "manager_id": manager_id,
        "tier": "mass",
        "aum": 0,
        "avg_daily_deposit": 0,
        "opened_on": clock.today - dt.timedelta(days=365 * 3),
        "last_active_at": clock.now - dt.timedelta(days=1),
        "lifecycle_stage": "mature",
    }
    extras: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("id", "customer_id"):
            continue
        if key in ("tags", "consents", "history", "sends"):
            extras[key] = value
        elif key == "manager":
            row["manager_id"] = str(value)
        elif key in columns:
            row[columns[key]] = _typed(m.customers, columns[key], value, cid)
        else:
            close = difflib.get_close_matches(key, list(columns), n=1)
            raise PlaybookTestError(
                f"customer {cid}: unknown field '{key}'",
                code="E0806",
                hint=f"did you mean '{close[0]}'?" if close else "fields: see the data dictionary",
            )
    return row, extras


def _consents(spec: Any, cid: str) -> list[tuple[str, str, bool]]:
    """Default: every consent given. ``{sms: withdrawn}`` or ``{sms_marketing: withdrawn}``."""
    state = {(c, p): True for c in CHANNELS for p in PURPOSES}
    for key, value in (spec or {}).items():
        channel, _, purpose = str(key).partition("_")
        targets = [(channel, p) for p in PURPOSES] if not purpose else [(channel, purpose)]
        for target in targets:
            if target not in state:
                raise PlaybookTestError(f"customer {cid}: unknown consent '{key}'", code="E0707")
            state[target] = value in (True, "given")
    return [(c, p, g) for (c, p), g in state.items()]


def _prior_send(conn: Any, cid: str, send: Mapping[str, Any], clock: Clock) -> None:
    """A ledger row as an earlier run would have left it (for cooldown tests)."""
    at = dt.datetime.fromisoformat(str(send["at"]))
    if at.tzinfo is None:
        at = at.replace(tzinfo=clock.as_of.tzinfo)
    at_utc = utc_naive(at)
    run_id = conn.execute(
        insert(m.runs)
        .values(
            playbook_id=str(send["playbook"]),
            window=at.isoformat(timespec="minutes"),
            as_of=at_utc,
            content_hash="fixture",
            started_at=at_utc,
            finished_at=at_utc,
            status="done",
            matched=1,
            acted=1,
            suppressed={},
        )
        .returning(m.runs.c.id)
    ).scalar_one()
    conn.execute(
        insert(m.action_ledger).values(
            playbook_id=str(send["playbook"]),
            customer_id=cid,
            window=at.replace(tzinfo=None).isoformat(timespec="minutes"),
            run_id=run_id,
            content_hash="fixture",
            created_at=at_utc,
        )
    )


def _known(table: Any, item: Mapping[str, Any], cid: str) -> dict[str, Any]:
    out = {}
    for key, value in item.items():
        if key not in table.c or key in ("id", "customer_id"):
            close = difflib.get_close_matches(key, [c.name for c in table.c], n=1)
            raise PlaybookTestError(
                f"customer {cid}: {table.name} has no column '{key}'",
                code="E0806",
                hint=f"did you mean '{close[0]}'?" if close else None,
            )
        out[key] = _typed(table, key, value, cid)
    return out


def _typed(table: Any, column: str, value: Any, cid: str) -> Any:
    kind = table.c[column].type.python_type if value is not None else None
    try:
        if kind is dt.datetime and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        if kind is dt.date and isinstance(value, str):
            return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise PlaybookTestError(
            f"customer {cid}: {column} {value!r} is not a date/time", code="E0806"
        ) from exc
    return value


# --- expectations ----------------------------------------------------------------------------


def _compare(expect: Mapping[str, Any], outcome: Outcome) -> list[str]:
    decisions = {d.customer_id: d for d in outcome.decisions}
    holdout = outcome.playbook.holdout_percent
    failures = []
    for cid, wanted in expect.items():
        decision = decisions.get(cid)
        failures += [f"{cid}: {f}" for f in _check(wanted, decision, holdout)]
    return failures


def _check(wanted: Any, decision: Decision | None, holdout: float = 0) -> list[str]:
    effects = {e.kind: e for e in decision.effects} if decision else {}
    reasons = {reason for _kind, reason in decision.suppressed} if decision else set()
    if wanted == "nothing":
        if effects:
            return [f"expected nothing, got {', '.join(sorted(effects))}"]
        return []
    if wanted == "not_matched":
        return ["expected not to match the audience, but it did"] if decision else []
    if wanted == "held_out":
        return _held_out(decision, effects, reasons, holdout)
    if not isinstance(wanted, dict):
        return [
            f"expectation must be 'nothing', 'not_matched', 'held_out' or a mapping, got {wanted!r}"
        ]
    if decision is None:
        return ["expected to match the audience, but did not"]
    if decision.held_out:
        return [
            f"expected {', '.join(sorted(wanted))}, but the customer is in the holdout group "
            f"(holdout_percent: {holdout:g}), which gets nothing; expect 'held_out' or pick "
            "another id"
        ]
    failures = []
    for key, spec in wanted.items():
        if key == "suppressed":
            if spec not in reasons:
                failures.append(f"expected suppression '{spec}', got {sorted(reasons) or 'none'}")
        elif key == "no":
            for kind in [spec] if isinstance(spec, str) else spec:
                if kind in effects:
                    failures.append(f"expected no {kind}, got one")
        elif key not in effects:
            failures.append(f"expected a {key}, got {sorted(effects) or 'nothing'}")
        else:
            failures += _fields(key, effects[key].row, spec)
    return failures


def _held_out(
    decision: Decision | None, effects: Mapping[str, Any], reasons: set[str], holdout: float
) -> list[str]:
    """``held_out``: matched, would be acted on, and drawn into the holdout group (recorded,
    given nothing)."""
    if decision is None:
        return ["expected to be held out, but did not match the audience"]
    if decision.held_out:
        return []
    if not holdout:
        return ["expected to be held out, but the playbook has no holdout group (holdout_percent)"]
    if not effects:  # the holdout is drawn only among customers who would be acted on
        why = ", ".join(sorted(reasons)) or "nothing to do"
        return [
            f"expected to be held out, but the customer is held back ({why}) before the "
            "holdout group is drawn: only customers who would be acted on can be held out"
        ]
    got = ", ".join(sorted(effects))
    return [
        f"expected to be held out, but the customer is not in the {holdout:g}% holdout group "
        f"(got {got})"
    ]


MAIN_TEXT = {"sms": "body", "email": "body", "task": "title", "wecom": "body"}


def _fields(kind: str, row: Mapping[str, Any], spec: Any) -> list[str]:
    """``text``/``contains`` check the main text (SMS body, task title); any other key checks
    that field exactly, ``<field>_contains`` as a substring."""
    if spec in (None, True):
        return []
    if not isinstance(spec, dict):
        spec = {"text": spec}
    failures = []
    for key, value in spec.items():
        contains = key.endswith("contains")
        name = key[: -len("contains")].rstrip("_") if contains else key
        if name in ("", "text"):
            name = MAIN_TEXT.get(kind, "body")
        if name not in row:
            failures.append(f"{kind} has no field '{name}' (fields: {', '.join(row)})")
            continue
        actual = str(row[name])
        if name == "due_local" and not contains and _same_local_time(str(value), actual):
            continue  # "2026-11-26T09:00" is bank time: the same as its offset form
        if contains and str(value) not in actual:
            failures.append(f"{kind} {name} should contain {str(value)!r}; it is {actual!r}")
        elif not contains and actual != str(value):
            diff = "\n".join(
                difflib.unified_diff([str(value)], [actual], "expected", "actual", lineterm="")
            )
            failures.append(f"{kind} {name} differs:\n{diff}")
    return failures


def _same_local_time(expected: str, actual: str) -> bool:
    """A test may write a local time without its offset; the engine prints it with one."""
    try:
        wrote, got = dt.datetime.fromisoformat(expected), dt.datetime.fromisoformat(actual)
    except ValueError:
        return False
    if wrote.tzinfo is None and got.tzinfo is not None:
        return wrote == got.replace(tzinfo=None)
    return wrote == got


def junit_xml(results: Sequence[CaseResult]) -> str:
    """JUnit XML, so CI systems show playbook tests beside code tests."""
    suite = ET.Element(
        "testsuite",
        name="playbook-tests",
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=Path(r.file).stem, name=r.name)
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.failures[0].splitlines()[0])
            failure.text = "\n".join(r.failures)
    return ET.tostring(suite, encoding="unicode")
