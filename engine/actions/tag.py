"""``tag``: set or remove a tag on the customer, in the engine's own ``engine_tags`` table.

The bank's ``customer_tags`` are never written; engine tags are readable in audiences as
the ``engine_tags`` field, so one playbook can mark customers another one acts on (or skips).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.actions.base import (
    Effect,
    ParseContext,
    Path,
    RunContext,
    Skipped,
    Subject,
    register,
)
from engine.core.dictionary import DataDictionary
from engine.core.i18n import t

MAX_TAG = 32  # the table's column


@dataclass(frozen=True)
class TagAction:
    kind: ClassVar[str] = "tag"
    tag: str
    remove: bool


@register
class Tag:
    key: ClassVar[str] = "tag"
    consent_channel: ClassVar[str | None] = None
    channel: ClassVar[str | None] = None
    label: ClassVar[tuple[str, str]] = ("客户标签", "Set or remove a customer tag")

    def schema(self) -> dict[str, Any]:
        text = {"type": "string", "minLength": 1, "maxLength": MAX_TAG}
        return {
            "type": "object",
            "description": "设置或移除剧本标签(engine_tags)。Set (add) or remove a tag.",
            "additionalProperties": False,
            "properties": {
                "add": {**text, "description": "加上的标签。Tag to set."},
                "remove": {**text, "description": "去掉的标签。Tag to remove."},
            },
        }

    def parse(self, raw: Mapping[str, Any], path: Path, ctx: ParseContext) -> TagAction | None:
        if ("add" in raw) == ("remove" in raw):
            ctx.report(
                "PB0143",
                t("PB0143"),
                path,
                t("PB0143.hint"),
                False,
            )
            return None
        if "add" in raw:
            return TagAction(str(raw["add"]), remove=False)
        return TagAction(str(raw["remove"]), remove=True)

    def reads(self, action: TagAction, dictionary: DataDictionary) -> set[str]:
        return set()

    def effect(
        self, action: TagAction, index: int, subject: Subject, run: RunContext
    ) -> Effect | Skipped:
        return Effect(
            kind=self.key,
            action_index=index,
            customer_id=subject.customer_id,
            target="tags",
            row={"tag": action.tag, "op": "remove" if action.remove else "add"},
            consent_channel=None,
        )
