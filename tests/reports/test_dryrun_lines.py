"""One line per action in the text preview: a team-queue task names its queue, never None."""

from __future__ import annotations

from engine.actions.base import Effect
from engine.reports.dryrun import effect_line


def task(**row: object) -> Effect:
    base = {"priority": "normal", "title": "跟进", "due_local": "2026-11-24T09:00+08:00"}
    return Effect("task", 0, "C1", "tasks", {**base, **row}, None)


def test_a_team_queue_task_names_its_queue() -> None:
    line = effect_line(task(assignee_id=None, queue="网点服务台"))
    assert "None" not in line and "队列 queue 网点服务台" in line


def test_an_assigned_task_names_its_manager() -> None:
    assert "任务→M000001 [normal]" in effect_line(task(assignee_id="M000001", queue=None))
