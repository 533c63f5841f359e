"""Template checks shared by action types at validate time."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import jinja2

from engine.actions.base import ParseContext, Path
from engine.core.errors import TemplateError
from engine.core.i18n import t
from engine.rendering.reads import unknown_fields

TITLE = ("title", 200)  # tasks.title is VARCHAR(200), and a phone shows one line of it
BODY = ("body", 4_000)  # a task's note, a webhook's message: read on a phone
EMAIL_BODY = ("email_body", 100_000)
SUBJECT = ("subject", 200)  # outbox.subject is VARCHAR(200); mail clients cut far earlier


def within(text: str, budget: tuple[str, int], template: jinja2.Template) -> str:
    """``text`` when it fits its field's budget; else a TemplateError (a customer whose text
    is too long at run time is held back as render_error, never written truncated)."""
    what, limit = budget
    if len(text) > limit:
        raise TemplateError(
            t("PB0132", what=t(f"budget.{what}"), length=f"{len(text):,}", limit=f"{limit:,}"),
            code="PB0132",
            where=template.name,
            hint=t("PB0132.hint"),
        )
    return text


def check_template(
    ctx: ParseContext,
    path: Path,
    *,
    name: str | None = None,
    source: str | None = None,
    budget: tuple[str, int] | None = None,
) -> tuple[jinja2.Template | None, str | None]:
    """Load and render a template against the sample customer; report problems at ``path``,
    including a rendering over ``budget`` (the field's name and its most characters).

    Returns the template and its sample rendering, or (None, None) after reporting.
    """
    try:
        template = ctx.renderer.file(name) if name else ctx.renderer.inline(source or "")
        text = ctx.renderer.render(template, ctx.sample)
    except TemplateError as exc:
        message = (
            t("template.at", message=exc.message, where=exc.where)
            if exc.where and name
            else exc.message
        )
        ctx.report(exc.code, message, path, exc.hint, False)
        return None, None
    unknown, hint = _unknown_fields(ctx, template)
    if unknown:
        ctx.report("PB0122", unknown, path, hint, False)
        return None, None
    if budget is not None and len(text) > budget[1]:
        what, limit = budget
        message = t("PB0132", what=t(f"budget.{what}"), length=f"{len(text):,}", limit=f"{limit:,}")
        ctx.report("PB0132", message, path, t("PB0132.hint"), False)
        return None, None
    if ctx.empty_sample is not None:
        try:
            ctx.renderer.render(template, ctx.empty_sample)
        except TemplateError as exc:
            names = [k for k, v in ctx.empty_sample.items() if v == []]
            message = t("PB0193", names=" / ".join(names), problem=exc.message)
            ctx.report("PB0193", message, path, t("PB0193.hint", name=names[0]), False)
            return None, None
    return template, text


def _unknown_fields(ctx: ParseContext, template: jinja2.Template) -> tuple[str, str | None]:
    """(message, hint) for the first ``customer.<name>`` the template uses that is not a field
    of the data dictionary, in any branch; ("", None) when there is none."""
    source = ctx.renderer.source(template)
    if source is None:
        return "", None
    known = frozenset(f.key for f in ctx.dictionary)
    names = unknown_fields(ctx.renderer.env, source, known)
    if not names:
        return "", None
    close = difflib.get_close_matches(names[0], sorted(known), n=1)
    hint = t("hint.did_you_mean", name=f"customer.{close[0]}") if close else t("PB0122.hint")
    where = f" ({template.name})" if template.name else ""
    return t("PB0122", problem=f"customer.{names[0]}{where}"), hint


def sample_value(kind: str, values: Mapping[str, str], pii: str | None) -> Any:
    """A typed stand-in value for a field, so templates are render-checked with real types."""
    import datetime as dt

    if pii == "phone":
        return "13800138000"
    if pii == "name":
        return "张三"
    if pii == "email":
        return "zhang.san@example.com"
    return {
        "string": "示例",
        "integer": 3,
        "number": 1.5,
        "money": 123456.78,
        "date": dt.date(1980, 2, 29),
        "datetime": dt.datetime(2026, 1, 31, 9, 30),
        "boolean": True,
        "enum": next(iter(values), "x"),
        "tags": ["代发工资"],
    }[kind]
