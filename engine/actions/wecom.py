"""``wecom``: a 企业微信 (WeCom) message the customer's manager confirms and sends.

WeCom's mass-send never sends without the member's confirmation, and limits how many mass
messages a customer receives. So the engine does not send: it writes a task for the manager
(routed like ``task``, by role through the data dictionary's ``assignees``) carrying the text
rendered from a template, ready to copy into WeCom. The per-customer limits of
``config/policy.yaml`` (``messages.wecom.per_customer``) hold back a message over them
(``wecom_limit``); the manager closes the task as sent or not sent, and the sent ones count.

No consent channel is checked: the customer chose to add the manager as a WeCom contact and
refuses mass messages inside WeCom itself, and the manager reads each text before it goes.
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
from engine.actions.task import (
    PRIORITIES,
    REASON_PATTERN,
    ROLES,
    due_fields,
    known_assignee,
    parse_due,
)
from engine.actions.templates import TITLE, check_template, within
from engine.core.deadlines import Deadline
from engine.core.dictionary import DataDictionary

KIND = "wecom"  # the task's kind: what the limits count and the console shows as a message
# WeCom takes text messages up to 4,000 bytes; Chinese is 3 bytes a character in UTF-8
MESSAGE = ("wecom", 1_300)


@dataclass(frozen=True)
class WecomAction:
    kind: ClassVar[str] = "wecom"
    assignee: str
    title: jinja2.Template
    template_name: str
    template: jinja2.Template
    due_in: Deadline
    priority: str
    reason: str | None = None  # None: the playbook's id


@register
class Wecom:
    key: ClassVar[str] = "wecom"
    consent_channel: ClassVar[str | None] = None
    channel: ClassVar[str | None] = None
    label: ClassVar[tuple[str, str]] = ("企业微信", "WeCom message the manager confirms")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "企业微信消息:生成客户经理任务,附预填文本,由客户经理确认后发送。"
            "A WeCom message: a task for the manager with the text ready to copy and send.",
            "required": ["title", "template"],
            "additionalProperties": False,
            "properties": {
                "template": {
                    "type": "string",
                    "pattern": r"^[\w./-]+\.j2$",
                    "description": "消息文本模板(templates/ 下)。Message template in templates/.",
                },
                "title": {
                    "type": "string",
                    "minLength": 1,
                    "description": "任务标题(可用模板变量)。Task title; may use variables.",
                },
                "assignee": {
                    "type": "string",
                    "enum": list(ROLES),
                    "default": "manager",
                    "description": "由谁发送:manager 客户经理 / senior_manager 高级客户经理 / "
                    "branch_leader 网点负责人。Who sends it, by role in the customer's branch.",
                },
                "reason": {
                    "type": "string",
                    "pattern": REASON_PATTERN,
                    "description": "原因(默认剧本编号);同一客户同一原因只保留一个未完成任务。"
                    "Why (default: the playbook id); one open task per customer and reason.",
                },
                "due_in": {
                    "type": "string",
                    "default": "1d",
                    "description": "发送时限:日历时间如 1d、12h,或工作日如 '1 workday'。"
                    "Time allowed to send: calendar time (1d, 12h) or business days"
                    " ('1 workday').",
                },
                "priority": {
                    "type": "string",
                    "enum": list(PRIORITIES),
                    "default": "normal",
                    "description": "优先级:low 低 / normal 普通 / high 高 / urgent 紧急。",
                },
            },
        }

    def parse(self, raw: Mapping[str, Any], path: Path, ctx: ParseContext) -> WecomAction | None:
        due_in = parse_due(raw, path, ctx, "1d")
        ok = due_in is not None
        title, _ = check_template(ctx, (*path, "title"), source=str(raw["title"]), budget=TITLE)
        name = str(raw["template"])
        body, _ = check_template(ctx, (*path, "template"), name=name, budget=MESSAGE)
        assignee = str(raw.get("assignee", "manager"))
        if not known_assignee(assignee, path, ctx):
            ok = False
        if not ok or title is None or body is None or due_in is None:
            return None
        return WecomAction(
            assignee=assignee,
            title=title,
            template_name=name,
            template=body,
            due_in=due_in,
            priority=str(raw.get("priority", "normal")),
            reason=str(raw["reason"]) if "reason" in raw else None,
        )

    def reads(self, action: WecomAction, dictionary: DataDictionary) -> set[str]:
        owner = dictionary.assignees.get(action.assignee)
        return {owner} if owner else set()

    def effect(
        self, action: WecomAction, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped:
        owner_field = run.dictionary.assignees.get(action.assignee)
        assignee = subject.values.get(owner_field) if owner_field else None
        if not assignee:
            return Skipped(f"no_{action.assignee}")
        title = within(run.renderer.render(action.title, subject.context), TITLE, action.title)
        text = within(
            run.renderer.render(action.template, subject.context).strip(), MESSAGE, action.template
        )
        return Effect(
            kind=self.key,
            action_index=index,
            customer_id=subject.customer_id,
            target="tasks",
            row={
                "assignee_id": str(assignee),
                "assignee_role": action.assignee,
                "queue": None,
                "kind": KIND,
                "reason": action.reason or run.playbook_id,
                "checklist": None,
                "title": title,
                "body": text,
                "priority": action.priority,
                **due_fields(action.due_in, run),
            },
            consent_channel=None,
        )
