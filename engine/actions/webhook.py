"""``webhook``: tell another bank system (CRM, WeChat service account, …) about the customer.

The playbook names an endpoint that IT configured in ``config/channels.yaml``; a URL is
never written in a playbook. The JSON body is built at run time from the fields the playbook
lists (customer id, playbook and window always), so what leaves the bank is explicit.
"""

from __future__ import annotations

import json
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
from engine.actions.templates import BODY, check_template, within
from engine.channels.config import webhook_names
from engine.core.dictionary import DataDictionary
from engine.core.i18n import t


@dataclass(frozen=True)
class WebhookAction:
    kind: ClassVar[str] = "webhook"
    endpoint: str
    fields: tuple[str, ...]
    message: jinja2.Template | None


@register
class Webhook:
    key: ClassVar[str] = "webhook"
    consent_channel: ClassVar[str | None] = None  # bank-internal systems, not the customer
    channel: ClassVar[str | None] = "webhook"
    label: ClassVar[tuple[str, str]] = ("推送到行内系统", "Webhook to a system IT configured")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "推送到 IT 配置的接口(按名称)。"
            "Post to an endpoint configured by IT, by name; never a URL.",
            "required": ["endpoint"],
            "additionalProperties": False,
            "properties": {
                "endpoint": {
                    "type": "string",
                    "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$",
                    "description": "config/channels.yaml 中 webhooks 下的名称。"
                    "Name of an endpoint under webhooks in config/channels.yaml.",
                },
                "fields": {
                    "type": "array",
                    "items": {"type": "string"},
                    "uniqueItems": True,
                    "description": "随消息发送的客户字段。Customer fields to include.",
                },
                "message": {
                    "type": "string",
                    "description": "附带的文字(可用模板变量)。Optional text; may use variables.",
                },
            },
        }

    def parse(self, raw: Mapping[str, Any], path: Path, ctx: ParseContext) -> WebhookAction | None:
        ok = True
        endpoint = str(raw["endpoint"])
        known = webhook_names(ctx.settings.channels_path)
        if known is not None and endpoint not in known:
            ctx.report(
                "PB0140",
                t("PB0140", name=endpoint, file=ctx.settings.channels_path.name),
                (*path, "endpoint"),
                t("PB0140.hint", known=", ".join(known) or t("word.none")),
                False,
            )
            ok = False
        fields = tuple(str(f) for f in raw.get("fields", []))
        for i, name in enumerate(fields):
            if name not in ctx.dictionary:
                guess = ctx.dictionary.suggest(name)
                hint = (
                    t("hint.did_you_mean_field", name=guess.key, label=guess.label)
                    if guess
                    else None
                )
                problem = t("PB0107", what=t("word.field"), name=name)
                ctx.report("PB0107", problem, (*path, "fields", i), hint, False)
                ok = False
        message = None
        if "message" in raw:
            message, _ = check_template(
                ctx, (*path, "message"), source=str(raw["message"]), budget=BODY
            )
            ok = ok and message is not None
        return WebhookAction(endpoint, fields, message) if ok else None

    def reads(self, action: WebhookAction, dictionary: DataDictionary) -> set[str]:
        return set(action.fields)

    def effect(
        self, action: WebhookAction, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped:
        payload: dict[str, Any] = {
            "playbook_id": run.playbook_id,
            "customer_id": subject.customer_id,
            "fields": {f: _jsonable(subject.values.get(f)) for f in action.fields},
        }
        if action.message is not None:
            text = run.renderer.render(action.message, subject.context)
            payload["message"] = within(text, BODY, action.message)
        return Effect(
            kind=self.key,
            action_index=index,
            customer_id=subject.customer_id,
            target="outbox",
            row={
                "channel": "webhook",
                "recipient": action.endpoint,
                "subject": None,
                "body": json.dumps(payload, ensure_ascii=False, sort_keys=True),
            },
            consent_channel=None,
        )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list):
        return value
    return str(value)  # dates, datetimes, decimals: ISO / plain text
