"""``task``: a call, visit or follow-up for a person at the bank.

Routed by role (the customer's relationship manager, the branch's senior manager or branch
leader, found through the data dictionary's ``assignees``) or to a team queue by name; with a
due time, a priority and a checklist. While one task for a customer, kind and reason is open
no second one is created (the contact policy checks, a partial unique index guarantees).
"""

from __future__ import annotations

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
    register,
)
from engine.actions.templates import BODY, TITLE, check_template, within
from engine.core.clock import local_to_utc
from engine.core.deadlines import Deadline, parse_deadline
from engine.core.dictionary import DataDictionary
from engine.core.durations import DurationError
from engine.core.i18n import t

TASK_KINDS = {"call": "电话回访", "visit": "上门拜访", "follow_up": "跟进"}
PRIORITIES = {"low": "低", "normal": "普通", "high": "高", "urgent": "紧急"}
ROLES = {"manager": "客户经理", "senior_manager": "高级客户经理", "branch_leader": "网点负责人"}
QUEUE = "queue"
REASON_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,79}$"


@dataclass(frozen=True)
class TaskAction:
    kind: ClassVar[str] = "task"
    assignee: str  # a role, or "queue"
    task_kind: str
    title: jinja2.Template
    body: jinja2.Template | None
    due_in: Deadline
    priority: str
    queue: str | None = None
    reason: str | None = None  # None: the playbook's id
    checklist: tuple[str, ...] = ()


@register
class Task:
    key: ClassVar[str] = "task"
    consent_channel: ClassVar[str | None] = None
    channel: ClassVar[str | None] = None
    label: ClassVar[tuple[str, str]] = ("员工任务", "Task for a manager or a team queue")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "客户经理任务。A call / visit / follow-up task for the manager.",
            "required": ["title"],
            "additionalProperties": False,
            "properties": {
                "assignee": {
                    "type": "string",
                    "enum": list(ROLES),
                    "default": "manager",
                    "description": "任务分派给谁:manager 客户经理 / senior_manager 网点高级客户经理"
                    " / branch_leader 网点负责人。Who gets the task, by role in the customer's "
                    "branch.",
                },
                "queue": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 40,
                    "description": "改为派给团队队列(名称),不写 assignee。"
                    "A team queue's name instead of a person.",
                },
                "reason": {
                    "type": "string",
                    "pattern": REASON_PATTERN,
                    "description": "任务原因(默认剧本编号);同一客户同一原因只保留一个未完成任务。"
                    "Why (default: the playbook id); one open task per customer, kind, reason.",
                },
                "checklist": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                    "description": "待办清单。Steps to tick off.",
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
                    "description": "完成时限:日历时间如 3d、48h(含夜间与节假日),或工作日如"
                    " '3 workdays'(第3个工作日下班前)。Time allowed: calendar time (3d, 48h:"
                    " nights and holidays count) or business days ('3 workdays': the end of"
                    " the 3rd workday after creation).",
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
        due_in = parse_due(raw, path, ctx, "3d")
        ok = due_in is not None
        title, _ = check_template(ctx, (*path, "title"), source=str(raw["title"]), budget=TITLE)
        if "queue" in raw and "assignee" in raw:
            ctx.report(
                "PB0142",
                t("PB0142"),
                (*path, "queue"),
                t("PB0142.hint"),
                False,
            )
            ok = False
        assignee = QUEUE if "queue" in raw else str(raw.get("assignee", "manager"))
        if assignee != QUEUE and not known_assignee(assignee, path, ctx):
            ok = False
        body = None
        if "template" in raw:
            body, _ = check_template(
                ctx, (*path, "template"), name=str(raw["template"]), budget=BODY
            )
            ok = ok and body is not None
        if not ok or title is None or due_in is None:
            return None
        return TaskAction(
            assignee=assignee,
            task_kind=str(raw.get("kind", "call")),
            title=title,
            body=body,
            due_in=due_in,
            priority=str(raw.get("priority", "normal")),
            queue=str(raw["queue"]) if "queue" in raw else None,
            reason=str(raw["reason"]) if "reason" in raw else None,
            checklist=tuple(str(step) for step in raw.get("checklist", ())),
        )

    def reads(self, action: TaskAction, dictionary: DataDictionary) -> set[str]:
        owner = dictionary.assignees.get(action.assignee) if action.assignee != QUEUE else None
        return {owner} if owner else set()

    def effect(
        self, action: TaskAction, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped:
        assignee = None
        if action.assignee != QUEUE:
            owner_field = run.dictionary.assignees.get(action.assignee)
            assignee = subject.values.get(owner_field) if owner_field else None
            if not assignee:
                return Skipped(f"no_{action.assignee}")
        title = within(run.renderer.render(action.title, subject.context), TITLE, action.title)
        body = None
        if action.body is not None:
            body = within(run.renderer.render(action.body, subject.context), BODY, action.body)
        return Effect(
            kind=self.key,
            action_index=index,
            customer_id=subject.customer_id,
            target="tasks",
            row={
                "assignee_id": str(assignee) if assignee else None,
                "assignee_role": action.assignee,
                "queue": action.queue,
                "kind": action.task_kind,
                "reason": action.reason or run.playbook_id,
                "checklist": list(action.checklist) or None,
                "title": title,
                "body": body,
                "priority": action.priority,
                **due_fields(action.due_in, run),
            },
            consent_channel=None,
        )


# --- shared with the wecom action, which is a task too ---------------------------------------


def parse_due(
    raw: Mapping[str, Any], path: Path, ctx: ParseContext, default: str
) -> Deadline | None:
    """``due_in`` (calendar time or workdays), or None after reporting PB0110 at its line."""
    try:
        return parse_deadline(raw.get("due_in", default))
    except DurationError as exc:
        ctx.report("PB0110", exc.message, (*path, "due_in"), None, False)
        return None


def known_assignee(role: str, path: Path, ctx: ParseContext) -> bool:
    """Whether the data dictionary says who holds ``role`` for a customer (else PB0141)."""
    if role in ctx.dictionary.assignees:
        return True
    ctx.report(
        "PB0141", t("PB0141", role=role), (*path, "assignee"), t("PB0141.hint", role=role), False
    )
    return False


def due_fields(due_in: Deadline, run: RunContext) -> dict[str, Any]:
    """A task row's due time: naive UTC for the store, local with its offset for people."""
    due_local = due_in.due(run.clock.now, run.clock.calendar, run.workday_ends)
    tz = run.settings.timezone
    return {
        "due_at": local_to_utc(due_local, tz),
        "due_local": due_local.replace(tzinfo=tz).isoformat(timespec="minutes"),
    }
