"""``sms``: a text message from a template, with the bank's signature and, for marketing,
the opt-out text (both from config/policy.yaml); length is counted in billed SMS parts at
validate time, signature and opt-out included."""

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
from engine.actions.compliance import compose_sms
from engine.actions.templates import check_template
from engine.core.dictionary import DataDictionary
from engine.core.i18n import t
from engine.rendering.renderer import sms_segments


@dataclass(frozen=True)
class SmsAction:
    kind: ClassVar[str] = "sms"
    template_name: str
    template: jinja2.Template
    max_segments: int


@register
class Sms:
    key: ClassVar[str] = "sms"
    consent_channel: ClassVar[str | None] = "sms"
    channel: ClassVar[str | None] = "sms"
    label: ClassVar[tuple[str, str]] = ("短信", "SMS text message")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "短信。Send an SMS rendered from a template in templates/.",
            "required": ["template"],
            "additionalProperties": False,
            "properties": {
                "template": {
                    "type": "string",
                    "description": "templates/ 下的模板文件名。Template file name in templates/.",
                    "pattern": r"^[\w./-]+\.j2$",
                },
                "max_segments": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 5,
                    "default": 2,
                    "description": "最多计费条数(70字一条,超出按67字/条)。"
                    "Most billed SMS parts allowed (70 chars, or 67 per part when split).",
                },
            },
        }

    def parse(self, raw: Mapping[str, Any], path: Path, ctx: ParseContext) -> SmsAction | None:
        name = str(raw["template"])
        max_segments = int(raw.get("max_segments", 2))
        template, sample = check_template(ctx, (*path, "template"), name=name)
        if template is None or sample is None:
            return None
        text = compose_sms(sample, ctx.category, ctx.texts)
        parts = sms_segments(text)
        if parts > max_segments:
            ctx.report(
                "PB0125",
                t("PB0125", length=len(text), parts=parts, budget=max_segments),
                (*path, "template"),
                t("PB0125.hint"),
                False,
            )
        return SmsAction(name, template, max_segments)

    def reads(self, action: SmsAction, dictionary: DataDictionary) -> set[str]:
        return {f for f in (dictionary.channels.get("sms"),) if f}

    def effect(
        self, action: SmsAction, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped:
        phone_field = run.dictionary.channels.get("sms")
        phone = subject.values.get(phone_field) if phone_field else None
        if not phone:
            return Skipped("no_phone")
        body = run.renderer.render(action.template, subject.context)
        text = compose_sms(body, run.category, run.texts)
        return Effect(
            kind=self.key,
            action_index=index,
            customer_id=subject.customer_id,
            target="outbox",
            row={
                "channel": "sms",
                "recipient": str(phone),
                "subject": None,
                "body": text,
                "segments": sms_segments(text),
            },
            consent_channel="sms",
        )
