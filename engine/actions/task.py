"""``task``: a call, visit or follow-up for the customer's relationship manager."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jinja2

from engine.actions.base import (
    Effect,
    ParseContext,
    Path,
    RunContext,
    Skipped,
    Subject,
    local_to_utc,
    register,
)
from engine.actions.templates import check_template
from engine.durations import DurationError, parse_duration

TASK_KINDS = {"call": "电话回访", "visit": "上门拜访", "follow_up": "跟进"}
PRIORITIES = {"low": "低", "normal": "普通", "high": "高", "urgent": "紧急"}


@dataclass(frozen=True)
class TaskAction:
    kind: ClassVar[str] = "task"
    assignee: str
    task_kind: str
    title: jinja2.Template
    body: jinja2.Template | None
    due_in: dt.timedelta
    priority: str


@register
class Task:
    key: ClassVar[str] = "task"
    consent_channel: ClassVar[str | None] = None
    label: ClassVar[tuple[str, str]] = ("客户经理任务", "Task for the relationship manager")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "客户经理任务。A call / visit / follow-up task for the manager.",
            "required": ["title"],
            "additionalProperties": False,
            "properties": {
                "assignee": {
                    "type": "string",
                    "enum": ["manager"],
                    "default": "manager",
                    "description": "任务分派给谁:manager = 客户的客户经理。"
                    "Who gets the task: manager = the customer's relationship manager.",
                },
                "kind": {
                    "type": "string",
                    "enum": list(TASK_KINDS),
                    "default": "call",
                    "description": "任务类型:call 电话回访 / visit 上门拜访 / follow_up 跟进。",
                },
                "title": {
                    "type": "string",
                    "minLength": 1,
                    "description": "任务标题(可用模板变量)。"
                    "Task title; may use template variables.",
                },
                "template": {
                    "type": "string",
                    "pattern": r"^[\w./-]+\.j2$",
                    "description": "任务说明模板(可选)。Optional template for the task's body.",
                },
                "due_in": {
                    "type": "string",
                    "default": "3d",
                    "description": "完成时限,如 3d、12h。Time allowed, e.g. 3d or 12h.",
                },
                "priority": {
                    "type": "string",
                    "enum": list(PRIORITIES),
                    "default": "normal",
                    "description": "优先级:low 低 / normal 普通 / high 高 / urgent 紧急。",
                },
            },
        }

    def parse(self, raw: Mapping[str, Any], path: Path, ctx: ParseContext) -> TaskAction | None:
        ok = True
        try:
            due_in = parse_duration(raw.get("due_in", "3d"))
        except DurationError as exc:
            ctx.report("PB0110", str(exc), (*path, "due_in"), None, False)
            ok, due_in = False, dt.timedelta(days=3)
        title, _ = check_template(ctx, (*path, "title"), source=str(raw["title"]))
        body = None
        if "template" in raw:
            body, _ = check_template(ctx, (*path, "template"), name=str(raw["template"]))
            ok = ok and body is not None
        if not ok or title is None:
            return None
        return TaskAction(
            assignee=str(raw.get("assignee", "manager")),
            task_kind=str(raw.get("kind", "call")),
            title=title,
            body=body,
            due_in=due_in,
            priority=str(raw.get("priority", "normal")),
        )

    def effect(
        self, action: TaskAction, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped:
        owner_field = run.dictionary.assignees.get(action.assignee)
        assignee = subject.values.get(owner_field) if owner_field else None
        if not assignee:
            return Skipped(f"no_{action.assignee}")
        title = run.renderer.render(action.title, subject.context)
        body = run.renderer.render(action.body, subject.context) if action.body else None
        due_local = run.clock.now + action.due_in
        return Effect(
            kind=self.key,
            action_index=index,
            customer_id=subject.customer_id,
            target="tasks",
            row={
                "assignee_id": str(assignee),
                "assignee_role": action.assignee,
                "kind": action.task_kind,
                "title": title,
                "body": body,
                "priority": action.priority,
                "due_at": local_to_utc(due_local, run.settings),
                "due_local": due_local.isoformat(timespec="minutes"),
            },
            consent_channel=None,
        )
