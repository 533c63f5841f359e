"""The daemon escalates overdue tasks on its own, up the ``tasks:`` ladder of the deployment's
policy file, and two daemons sharing a store write each escalation once. Real demo store on
both backends, real daemons with their real APScheduler jobs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from daemon_support import deployment, wait_for
from sqlalchemy import Engine, func, select
from support import (
    AS_OF,
    SETTINGS,
    TZ,
    dictionary,
    playbook_from_text,
)

from engine.core.clock import Clock
from engine.daemon.scheduler import Daemon, DaemonConfig
from engine.daemon.timesource import TimeSource
from engine.execution.executor import Executor
from engine.execution.sinks import StoreSink
from engine.policy import default_policy
from engine.rendering.renderer import Renderer
from engine.store.models import managers, tasks

DICTIONARY = dictionary()
POLICY = """version: 1
tasks:
  escalate_after: 12h
  escalation_due_in: 1d
  escalation_ladder: [manager, senior_manager, branch_leader]
"""
PLAYBOOK = """id: ladder
title: 回访逾期升级
trigger: {schedule: "0 9 * * *"}
audience:
  tier: [vip, private]
limits: {max_per_run: 3}
actions:
  - task: {title: "回访", due_in: 1d}
"""


def three_tasks_due_tomorrow(store: Engine, tmp_path: Path) -> None:
    renderer = Renderer(SETTINGS.templates_dir, DICTIONARY)
    executor = Executor(store, SETTINGS, DICTIONARY, renderer, default_policy())
    playbook = playbook_from_text(tmp_path, PLAYBOOK, name="ladder.yaml")
    outcome = executor.execute(playbook, Clock.at(AS_OF, TZ), StoreSink(store))
    assert outcome.effects["task"] == 3


def escalations(store: Engine, level: int) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(select(tasks).where(tasks.c.escalation_level == level)).all())


def a_deployment(tmp_path: Path) -> Any:
    root = tmp_path / "deploy"
    (root / "config").mkdir(parents=True)
    (root / "config" / "policy.yaml").write_text(POLICY, encoding="utf-8")
    return deployment(root, {})


def daemon_at(store: Engine, settings: Any, moment: dt.datetime) -> Daemon:
    config = DaemonConfig(escalate_interval=0.05, tick=60, reload_interval=60)
    clock = TimeSource.rehearsal(moment, speed=1.0)
    return Daemon(store, settings, DICTIONARY, config=config, time_source=clock)


def test_two_daemons_escalate_overdue_tasks_once_on_their_own(
    demo_store: Engine, tmp_path: Path
) -> None:
    three_tasks_due_tomorrow(demo_store, tmp_path)
    settings = a_deployment(tmp_path)
    # a day and 13 hours later: due a day after the run, so 13 hours late (policy: 12h)
    late = AS_OF + dt.timedelta(days=1, hours=13)
    first, second = daemon_at(demo_store, settings, late), daemon_at(demo_store, settings, late)
    first.start()
    second.start()
    try:
        wait_for("three escalations", lambda: len(escalations(demo_store, 1)) >= 3, timeout=20)
        # both keep escalating every 50 ms: give them many more rounds to duplicate one
        rounds = [first.escalate() + second.escalate() for _ in range(10)]
    finally:
        first.stop()
        second.stop()
    assert rounds == [0] * 10
    level1 = escalations(demo_store, 1)
    assert len(level1) == 3 and not escalations(demo_store, 2)
    with demo_store.connect() as conn:
        roles = dict(conn.execute(select(managers.c.id, managers.c.role)).all())
        parents = conn.execute(
            select(func.count(func.distinct(tasks.c.parent_id))).where(
                tasks.c.escalation_level == 1
            )
        ).scalar_one()
    assert parents == 3  # one escalation per overdue task
    assert {roles[r.assignee_id] for r in level1} == {"senior_manager"}
    assert all(r.kind == "escalation" and r.status == "open" for r in level1)


def test_the_daemon_does_not_escalate_a_task_that_is_not_late_enough(
    demo_store: Engine, tmp_path: Path
) -> None:
    three_tasks_due_tomorrow(demo_store, tmp_path)
    settings = a_deployment(tmp_path)
    # 11 hours past due: within the 12 hours the policy allows
    daemon = daemon_at(demo_store, settings, AS_OF + dt.timedelta(days=1, hours=11))
    daemon.start()
    try:
        assert daemon.escalate() == 0
    finally:
        daemon.stop()
    assert not escalations(demo_store, 1)
    # the same tasks, a further two hours on: escalated, by the job itself
    later = daemon_at(demo_store, settings, AS_OF + dt.timedelta(days=1, hours=13))
    later.start()
    try:
        wait_for("three escalations", lambda: len(escalations(demo_store, 1)) == 3, timeout=20)
    finally:
        later.stop()
