"""The scheduler daemon in-process: slots, claims, catch-up and missed runs, hot reload, the
graceful-stop sink, the dispatcher hook, logs, metrics and ``status``. Real stores on both
backends; the crash tests with real processes are in test_daemon_kill.py."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from daemon_support import (
    claims_by_slot,
    cli_env,
    deployment,
    playbook_yaml,
    status_json,
    wait_for,
)
from sqlalchemy import Engine, create_engine, func, select
from support import AS_OF, REPO, TZ, dictionary

from engine.core.clock import Clock
from engine.core.observability import Metrics, event, redact, setup_logging
from engine.daemon.folder import PlaybookFolder
from engine.daemon.scheduler import Daemon, DaemonConfig, Interrupted, InterruptibleSink
from engine.daemon.timesource import SlotTrigger, TimeSource
from engine.execution.executor import Executor
from engine.execution.sinks import Decision, RecordingSink, RunInfo
from engine.store import claims
from engine.store.db import create_engine_tables, open_store
from engine.store.models import (
    action_ledger,
    daemons,
    run_claims,
    run_data_issues,
    runs,
    schedule_state,
)

DICTIONARY = dictionary()
HOURLY = "0 * * * *"


def frozen_at(moment: dt.datetime) -> TimeSource:
    """A schedule clock reading ``moment`` now and running at real speed (tests last seconds,
    slots are an hour apart)."""
    return TimeSource.rehearsal(moment, speed=1.0)


def count(store: Engine, table: Any, *where: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


# --- slots ----------------------------------------------------------------------------------


def test_slot_trigger_fires_monday_to_friday_as_crontab_means() -> None:
    friday_evening = dt.datetime(2026, 11, 20, 18, 0, tzinfo=TZ)
    fire = SlotTrigger("0 9 * * 1-5", TZ, TimeSource()).get_next_fire_time(None, friday_evening)
    assert fire.astimezone(TZ) == dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)  # Monday
    # why SlotTrigger exists: APScheduler 3's from_crontab reads 1-5 as Tuesday-Saturday
    theirs = CronTrigger.from_crontab("0 9 * * 1-5", timezone=TZ)
    assert theirs.get_next_fire_time(None, friday_evening).date() == dt.date(2026, 11, 21)


def test_rehearsal_trigger_gives_every_slot_once_in_order() -> None:
    origin = dt.datetime(2026, 11, 20, 0, 0, 30, tzinfo=TZ)
    clock = TimeSource(origin=origin, epoch=1_000_000.0, speed=3600)
    trigger = SlotTrigger(HOURLY, TZ, clock)
    wall = clock.to_wall(origin)
    fires = [trigger.get_next_fire_time(None, wall)]
    for _ in range(47):
        fires.append(trigger.get_next_fire_time(fires[-1], wall))
    slots = [clock.from_wall(f).astimezone(TZ) for f in fires]
    expected = [dt.datetime(2026, 11, 20, 1, tzinfo=TZ) + dt.timedelta(hours=h) for h in range(48)]
    assert [s.replace(microsecond=0) for s in slots] == expected
    assert all(b - a == dt.timedelta(seconds=1) for a, b in itertools.pairwise(fires))


# --- claims ---------------------------------------------------------------------------------


def test_claims_contract(db_url: str) -> None:
    engine = open_store(db_url)
    try:
        create_engine_tables(engine)
        lease = dt.timedelta(seconds=30)
        t0 = dt.datetime(2026, 11, 23, 1, 0)
        slot = {"playbook_id": "p", "due_at": t0, "content_hash": "h" * 64, "lease": lease}
        with engine.begin() as conn:
            first = claims.try_claim(conn, slot="2026-11-23T09:00", owner="A", now=t0, **slot)
            again = claims.try_claim(conn, slot="2026-11-23T09:00", owner="B", now=t0, **slot)
        assert first is not None and again is None  # exactly one daemon wins a slot

        with engine.begin() as conn:
            assert claims.resumable(conn, "p", t0, 3, t0) == []  # the lease is live
            assert claims.held_elsewhere(conn, "p", "B", t0)
            assert not claims.held_elsewhere(conn, "p", "A", t0)
        later = t0 + lease + dt.timedelta(seconds=1)  # A died: its lease lapsed
        with engine.begin() as conn:
            [stale] = claims.resumable(conn, "p", later, 3, later)
            took = claims.take_over(
                conn, stale, owner="B", content_hash="h", now=later, lease=lease
            )
            raced = claims.take_over(
                conn, stale, owner="C", content_hash="h", now=later, lease=lease
            )
        assert took and not raced
        with engine.begin() as conn:
            done = {"status": claims.DONE, "now": later, "run_id": None, "duration_ms": 5}
            assert not claims.finish(conn, stale.id, owner="A", lag_ms=0, error=None, **done)
            assert claims.finish(conn, stale.id, owner="B", lag_ms=0, error=None, **done)
            assert claims.last_slot(conn, "p") == "2026-11-23T09:00"

        # interrupted by a signal: anyone may resume it at once, no lease to wait for
        with engine.begin() as conn:
            cid = claims.try_claim(conn, slot="2026-11-23T10:00", owner="A", now=t0, **slot)
            assert cid is not None
            claims.finish(
                conn,
                cid,
                owner="A",
                status=claims.INTERRUPTED,
                now=t0,
                run_id=None,
                duration_ms=1,
                lag_ms=0,
                error="stopped",
            )
            [interrupted] = claims.resumable(conn, "p", t0, 3, t0)
            assert claims.take_over(
                conn, interrupted, owner="B", content_hash="h", now=t0, lease=lease
            )

        # missed slots: recorded once, however often a daemon notices them
        with engine.begin() as conn:
            args = {"playbook_id": "p", "content_hash": "h", "owner": "B", "now": t0}
            late = [("2026-11-22T09:00", t0), ("2026-11-22T10:00", t0)]
            assert claims.record_missed(conn, slots=late, reason="late", **args) == 2
            assert claims.record_missed(conn, slots=late, reason="late", **args) == 0
        with engine.connect() as conn:
            statuses = dict(conn.execute(select(run_claims.c.slot, run_claims.c.status)).all())
        assert statuses == {
            "2026-11-22T09:00": "missed",
            "2026-11-22T10:00": "missed",
            "2026-11-23T09:00": "done",
            "2026-11-23T10:00": "running",
        }

        # enabled since: kept while enabled, reset after a disable or a new schedule
        with engine.begin() as conn:
            t1, t2, t3 = (t0 + dt.timedelta(hours=h) for h in (1, 2, 3))
            assert claims.mark_enabled(conn, "p", since=t0, cron=HOURLY, now=t0) == t0
            assert claims.mark_enabled(conn, "p", since=t1, cron=HOURLY, now=t1) == t0
            claims.mark_disabled(conn, "p", t1)
            assert claims.enabled_since(conn, "p") is None
            assert claims.mark_enabled(conn, "p", since=t2, cron=HOURLY, now=t2) == t2
            assert claims.mark_enabled(conn, "p", since=t3, cron="30 * * * *", now=t3) == t3
    finally:
        engine.dispose()


# --- hot reload -------------------------------------------------------------------------------


def _folder(settings: Any, store: Engine) -> PlaybookFolder:
    def make(renderer: Any) -> Executor:
        return Executor(store, settings, DICTIONARY, renderer)

    return PlaybookFolder(settings, DICTIONARY, make)


def test_reload_keeps_last_good_version_and_stops_disabled_or_deleted(tmp_path: Path) -> None:
    settings = deployment(tmp_path, {"a.yaml": playbook_yaml("care-a", HOURLY, title="第一版")})
    folder = _folder(settings, create_engine("sqlite://"))
    first = folder.poll()
    assert first is not None and [v.id for v in first.started] == ["care-a"]
    v1 = folder.active()["care-a"]
    assert folder.poll() is None  # nothing changed on disk: nothing reloaded

    path = settings.playbooks_dir / "a.yaml"
    path.write_text(playbook_yaml("care-a", HOURLY).replace("tier: vip", "tierr: vip"), "utf-8")
    broken = folder.poll()
    assert broken is not None and not broken.started and not broken.stopped
    [problem] = broken.problems
    assert problem.kept is v1 and problem.diagnostics[0].code.startswith("PB")
    assert problem.diagnostics[0].line > 1  # located, as `validate` shows it
    assert folder.active()["care-a"] is v1  # the last good version keeps running

    path.write_text(playbook_yaml("care-a", HOURLY, title="第二版"), "utf-8")
    fixed = folder.poll()
    assert fixed is not None and [v.id for v in fixed.replaced] == ["care-a"] and not fixed.problems
    assert folder.active()["care-a"].playbook.title == "第二版"

    path.write_text(playbook_yaml("care-a", "30 * * * *", title="第二版"), "utf-8")
    moved = folder.poll()
    assert moved is not None and [v.id for v in moved.started] == ["care-a"]  # a new schedule

    (settings.playbooks_dir / "b.yaml").write_text(playbook_yaml("care-b", HOURLY), "utf-8")
    path.write_text(playbook_yaml("care-a", HOURLY, enabled=False), "utf-8")
    changes = folder.poll()
    assert changes is not None and changes.stopped == [("care-a", "disabled")]
    assert [v.id for v in changes.started] == ["care-b"]
    (settings.playbooks_dir / "b.yaml").unlink()
    changes = folder.poll()
    assert changes is not None and changes.stopped == [("care-b", "deleted")]
    assert folder.active() == {}


def test_broken_template_keeps_rendering_the_last_good_text(
    tmp_path: Path, demo_store: Engine
) -> None:
    settings = deployment(tmp_path, {"a.yaml": playbook_yaml("care-a", HOURLY)})
    template = settings.templates_dir / "vip_inactive_60d.sms.j2"
    template.write_text("旧模板 {{ customer | polite_name }}", "utf-8")
    folder = _folder(settings, demo_store)
    folder.poll()
    clock = Clock.at(AS_OF, TZ)

    def bodies() -> set[str]:
        version = folder.active()["care-a"]
        sink = RecordingSink()
        version.executor.execute(version.playbook, clock, sink)
        return {e.row["body"] for d in sink.decisions for e in d.effects if e.kind == "sms"}

    before = bodies()
    assert before and all("旧模板" in b for b in before)
    template.write_text("新模板 {{ customer.no_such_field }}", "utf-8")
    changes = folder.poll()
    assert changes is not None and changes.problems and changes.problems[0].kept is not None
    assert bodies() == before  # the kept version renders the template it was validated with
    template.write_text("新模板 {{ customer | polite_name }}", "utf-8")
    folder.poll()
    assert all("新模板" in b for b in bodies())


# --- catch-up, missed runs, re-enabling ---------------------------------------------------


def _daemon(store: Engine, settings: Any, at: dt.datetime, **config: Any) -> Daemon:
    cfg = DaemonConfig(grace=config.pop("grace", dt.timedelta(minutes=90)), **config)
    return Daemon(store, settings, DICTIONARY, config=cfg, time_source=frozen_at(at))


def test_start_catches_up_within_grace_and_records_older_slots_missed(
    tmp_path: Path, demo_store: Engine, demo_url: str
) -> None:
    settings = deployment(tmp_path, {"hourly.yaml": playbook_yaml("hourly", HOURLY)})
    # a daemon ran the playbook from 04:00:30 and died before its first slot ...
    _daemon(demo_store, settings, AS_OF - dt.timedelta(hours=5) + dt.timedelta(seconds=30)).reload(
        initial=True
    )
    # ... and the next one starts at 09:00:30 with a grace of 90 minutes
    later = _daemon(demo_store, settings, AS_OF + dt.timedelta(seconds=30))
    later.reload(initial=True)
    later.reconcile("hourly")

    got = {slot: row.status for slot, row in claims_by_slot(demo_store, "hourly").items()}
    assert got == {
        "2026-11-23T05:00": "missed",
        "2026-11-23T06:00": "missed",
        "2026-11-23T07:00": "missed",  # 2 h late: beyond the grace
        "2026-11-23T08:00": "done",  # 1 h late: caught up, as of its own slot
        "2026-11-23T09:00": "done",
    }
    with demo_store.connect() as conn:
        windows = sorted(conn.execute(select(runs.c.window)).scalars())
        ledger = set(conn.execute(select(action_ledger.c.window).distinct()).scalars())
    assert windows == ["2026-11-23T08:00", "2026-11-23T09:00"] and ledger == set(windows)
    missed = later.metrics.registry.get_sample_value(
        "care_missed_runs_total", {"playbook": "hourly"}
    )
    assert missed == 3

    # nothing runs twice: the same daemon again, or another one
    later.reconcile("hourly")
    _daemon(demo_store, settings, AS_OF + dt.timedelta(seconds=40)).reconcile("hourly")
    assert count(demo_store, runs) == 2 and count(demo_store, run_claims) == 5

    doc = status_json(tmp_path, demo_url)
    [pb] = doc["playbooks"]
    assert pb["id"] == "hourly" and pb["last_run"]["status"] == "done"
    assert pb["last_run"]["slot"] == "2026-11-23T09:00" and pb["last_run"]["matched"] > 0
    assert doc["missed"]["total"] == 3 and doc["tasks"]["open"] > 0
    assert doc["outbox"]["pending"] > 0 and doc["outbox"]["dead_letters"] == 0
    text = subprocess.run(
        [sys.executable, str(REPO / "runner.py"), "status", "--db", demo_url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=cli_env(),
        check=True,
    ).stdout
    assert "Missed slots (not run within the grace period): 3" in text
    assert "Daemons: 0 running" in text and "hourly" in text


def test_playbooks_of_one_slot_share_their_data_issue_counts(
    tmp_path: Path, demo_store: Engine
) -> None:
    """The first playbook of a slot counts the fields every active playbook tests; each run
    still records exactly its own fields' counts, as a run of it alone would."""
    audiences = {
        "by-email": "    - email: {is_null: false}\n    - tier: vip\n",
        "by-activity": "    - last_active_at: {older_than: 30d}\n    - aum: {gte: 0}\n",
    }
    settings = deployment(
        tmp_path,
        {f"{pid}.yaml": playbook_yaml(pid, HOURLY, audience=a) for pid, a in audiences.items()},
    )
    # enabled since 08:00:30, so the 09:00 slot is due for both
    _daemon(demo_store, settings, AS_OF - dt.timedelta(minutes=59, seconds=30)).reload(initial=True)
    daemon = _daemon(demo_store, settings, AS_OF + dt.timedelta(seconds=30))
    daemon.reload(initial=True)
    for pid in audiences:
        daemon.reconcile(pid)
    with demo_store.connect() as conn:
        recorded = {
            (r.playbook_id, r.field): {
                "empty": r.empty,
                "malformed": r.malformed,
                "implausible": r.implausible,
            }
            for r in conn.execute(
                select(runs.c.playbook_id, run_data_issues).join(
                    runs, runs.c.id == run_data_issues.c.run_id
                )
            )
        }
    alone: dict[tuple[str, str], dict[str, int]] = {}
    for pid, version in daemon.folder.active().items():
        clock = Clock.at(AS_OF, TZ)
        outcome = version.executor.execute(version.playbook, clock, RecordingSink(mask=True))
        alone.update({(pid, k): v for k, v in outcome.data_issues.items()})
    assert count(demo_store, runs) == len(audiences)
    assert recorded == alone
    assert ("by-email", "email") in recorded  # the demo store leaves many e-mails empty


def test_reenabled_playbook_does_not_replay_its_backlog(tmp_path: Path, demo_store: Engine) -> None:
    settings = deployment(tmp_path, {"hourly.yaml": playbook_yaml("hourly", HOURLY)})
    first = _daemon(demo_store, settings, AS_OF - dt.timedelta(hours=5) + dt.timedelta(seconds=30))
    first.reload(initial=True)
    (settings.playbooks_dir / "hourly.yaml").write_text(
        playbook_yaml("hourly", HOURLY, enabled=False), "utf-8"
    )
    changes = first.reload()
    assert changes is not None and changes.stopped == [("hourly", "disabled")]
    with demo_store.connect() as conn:
        assert conn.execute(select(schedule_state.c.enabled_since)).scalar() is None

    # re-enabled five hours later: it starts afresh, nothing is replayed or reported missed
    (settings.playbooks_dir / "hourly.yaml").write_text(playbook_yaml("hourly", HOURLY), "utf-8")
    again = _daemon(demo_store, settings, AS_OF + dt.timedelta(seconds=30))
    again.reload(initial=True)
    again.reconcile("hourly")
    assert claims_by_slot(demo_store, "hourly") == {} and count(demo_store, runs) == 0


# --- graceful stop ----------------------------------------------------------------------------


class StopAfterFirstBatch(InterruptibleSink):
    """What SIGTERM does to a run in progress: the signal arrives while a batch is written."""

    def write(self, info: RunInfo, decisions: Sequence[Decision]) -> set[str]:
        lost = super().write(info, decisions)
        self.stopping.set()
        return lost


def test_stopping_finishes_the_batch_in_hand_and_starts_no_other(
    tmp_path: Path, demo_store: Engine
) -> None:
    everyone = "    - tier: {in: [mass, gold, vip, private]}\n"
    settings = deployment(
        tmp_path, {"all.yaml": playbook_yaml("care-all", HOURLY, audience=everyone)}
    )
    folder = _folder(settings, demo_store)
    folder.poll()
    version = folder.active()["care-all"]
    sink = StopAfterFirstBatch(demo_store, threading.Event())
    with pytest.raises(Interrupted):
        version.executor.execute(version.playbook, Clock.at(AS_OF, TZ), sink, batch_size=400)
    assert count(demo_store, action_ledger) == 400  # the first batch, committed; nothing more
    with demo_store.connect() as conn:
        status, error = conn.execute(select(runs.c.status, runs.c.error)).one()
    assert status == "failed" and "stopped between batches" in error


# --- the dispatcher hook, logs and metrics -----------------------------------------------


def test_dispatcher_hook_runs_rounds_until_nothing_is_due(
    tmp_path: Path, demo_store: Engine
) -> None:
    settings = deployment(tmp_path, {})
    calls: list[dt.datetime] = []
    backlog = [3, 0, 0, 0]

    def one_round(now: dt.datetime) -> Mapping[str, int]:
        calls.append(now)
        if len(calls) == 3:
            raise RuntimeError("gateway 13812345678 refused")  # counted, logged, survived
        return {"claimed": backlog.pop(0) if backlog else 0, "sent": 1}

    config = DaemonConfig(dispatch_interval=0.05, tick=60, reload_interval=60)
    daemon = Daemon(demo_store, settings, DICTIONARY, config=config, dispatch=one_round)
    daemon.start()
    try:
        wait_for("four dispatcher rounds", lambda: len(calls) >= 4, timeout=20)
    finally:
        daemon.stop()
    assert all(c.tzinfo is not None for c in calls)
    assert daemon.metrics.registry.get_sample_value("care_dispatch_errors_total") == 1
    with demo_store.connect() as conn:
        row = conn.execute(select(daemons)).one()
    assert row.stopped_at is not None and row.state["dispatcher"] is True


def test_redact_masks_personal_data_in_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    text = "to 13812345678 and +8613812345678, id 110101199003071234, mail zhang.wei@example.cn"
    assert redact(text) == (
        "to 138****5678 and +86*******5678, id 110***********1234, mail z***@example.cn"
    )
    handler = setup_logging("json")
    log = logging.getLogger("engine.daemon")
    try:
        event(log, "run.finished", playbook="p", error="IntegrityError: 13912345678", n=3)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "run.finished" and line["n"] == 3 and line["level"] == "info"
    assert "13912345678" not in json.dumps(line) and "139****5678" in line["error"]


def test_metrics_text_file_has_the_counters_monitoring_scrapes(tmp_path: Path) -> None:
    metrics = Metrics()
    metrics.runs.labels("p", "done").inc()
    metrics.missed.labels("p").inc(2)
    metrics.lag.labels("p").set(1.5)
    metrics.reload_failures.inc()
    metrics.dead_letters.set(4)
    path = tmp_path / "care.prom"
    metrics.write_textfile(str(path))
    text = path.read_text()
    for line in (
        'care_runs_total{playbook="p",status="done"} 1.0',
        'care_missed_runs_total{playbook="p"} 2.0',
        'care_scheduler_lag_seconds{playbook="p"} 1.5',
        "care_reload_failures_total 1.0",
        "care_outbox_dead_letters 4.0",
    ):
        assert line in text
