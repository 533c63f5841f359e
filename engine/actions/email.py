"""``email``: a message from a template with a subject line; marketing e-mail ends with the
opt-out sentence, as marketing SMS do."""

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
from engine.actions.compliance import compose_email
from engine.actions.templates import EMAIL_BODY, SUBJECT, check_template, within
from engine.core.dictionary import DataDictionary
from engine.core.i18n import t

MAX_SUBJECT = 200  # the outbox column; mail clients cut far earlier anyway


@dataclass(frozen=True)
class EmailAction:
    kind: ClassVar[str] = "email"
    subject: jinja2.Template
    template_name: str
    template: jinja2.Template


@register
class Email:
    key: ClassVar[str] = "email"
    consent_channel: ClassVar[str | None] = "email"
    channel: ClassVar[str | None] = "email"
    label: ClassVar[tuple[str, str]] = ("电子邮件", "E-mail message")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "电子邮件。Send an e-mail rendered from a template in templates/.",
            "required": ["subject", "template"],
            "additionalProperties": False,
            "properties": {
                "subject": {
                    "type": "string",
                    "minLength": 1,
                    "description": "邮件主题(可用模板变量)。Subject line; may use variables.",
                },
                "template": {
                    "type": "string",
                    "description": "templates/ 下的正文模板。Body template in templates/.",
                    "pattern": r"^[\w./-]+\.j2$",
                },
            },
        }

    def parse(self, raw: Mapping[str, Any], path: Path, ctx: ParseContext) -> EmailAction | None:
        subject, sample = check_template(ctx, (*path, "subject"), source=str(raw["subject"]))
        if sample is not None and len(sample) > MAX_SUBJECT:
            ctx.report(
                "PB0127",
                t("PB0127", length=len(sample), limit=MAX_SUBJECT),
                (*path, "subject"),
                t("PB0127.hint"),
                False,
            )
            subject = None
        name = str(raw["template"])
        body, _ = check_template(ctx, (*path, "template"), name=name, budget=EMAIL_BODY)
        if subject is None or body is None:
            return None
        return EmailAction(subject, name, body)

    def reads(self, action: EmailAction, dictionary: DataDictionary) -> set[str]:
        return {f for f in (dictionary.channels.get("email"),) if f}

    def effect(
        self, action: EmailAction, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped:
        field = run.dictionary.channels.get("email")
        address = subject.values.get(field) if field else None
        if not address:
            return Skipped("no_email")
        title = within(
            run.renderer.render(action.subject, subject.context), SUBJECT, action.subject
        )
        body = within(
            run.renderer.render(action.template, subject.context), EMAIL_BODY, action.template
        )
        return Effect(
            kind=self.key,
            action_index=index,
            customer_id=subject.customer_id,
            target="outbox",
            row={
                "channel": "email",
                "recipient": str(address),
                "subject": title,
                "body": compose_email(body, run.category, run.texts),
            },
            consent_channel="email",
        )
