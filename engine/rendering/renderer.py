"""One sandboxed Jinja environment for every message and task text.

Templates are written by marketing staff, so they run in Jinja's sandbox with undefined
variables as errors: a typo fails at validate time against a typed sample customer, never at
send time as an empty string. Filters cover what staff need in Chinese banking messages.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from engine.core.calendar import to_lunar
from engine.core.dictionary import DataDictionary
from engine.core.errors import TemplateError
from engine.core.i18n import Msg, t
from engine.core.masking import COMPOUND_SURNAMES, mask_email, mask_name, mask_phone
from engine.rendering.reads import source_reads
from engine.rendering.sandbox import MAX_OUTPUT, BudgetedSandbox, BudgetExceeded, start, stop

SMS_SINGLE = 70  # characters in a one-part SMS (UCS-2, as Chinese text always is)
SMS_PART = 67  # characters per part once a message is split


def sms_segments(text: str) -> int:
    """How many billed SMS parts ``text`` takes."""
    if len(text) <= SMS_SINGLE:
        return 1
    return math.ceil(len(text) / SMS_PART)


# --- filters -------------------------------------------------------------------------------


def yuan(value: Any) -> str:
    """12345.6 → ``12,345.60元``"""
    return f"{float(value):,.2f}元"


def wan(value: Any) -> str:
    """1234567 → ``123.46万元``"""
    return f"{float(value) / 10000:,.2f}万元"


def cn_date(value: Any) -> str:
    """2026-11-22 → ``2026年11月22日``"""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return f"{value.year}年{value.month}月{value.day}日"


def cn_datetime(value: Any) -> str:
    """2026-11-22 10:00 → ``2026年11月22日 10:00`` (a due time, an event's ``occurred_at``)"""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return f"{cn_date(value)} {value.hour:02d}:{value.minute:02d}"


_LUNAR_MONTHS = ("正", "二", "三", "四", "五", "六", "七", "八", "九", "十", "冬", "腊")
_LUNAR_TENS = ("初", "十", "廿", "三")
_DIGITS = "一二三四五六七八九十"


def lunar_day_name(day: int) -> str:
    """1 → 初一, 10 → 初十, 15 → 十五, 20 → 二十, 21 → 廿一, 30 → 三十"""
    if day == 10:
        return "初十"
    if day in (20, 30):
        return "二十" if day == 20 else "三十"
    return _LUNAR_TENS[day // 10] + _DIGITS[day % 10 - 1]


def lunar_date(value: Any) -> str:
    """2026-11-13 → ``农历十月初五``; a leap month reads 闰四月; months 11 and 12 are 冬月 and
    腊月, as customers say them. Dates outside the supported lunar years are an error."""

    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = value.date()
    lunar = to_lunar(value)
    if lunar is None:
        raise ValueError(f"no lunar date for {value} (outside the supported years)")
    leap = "闰" if lunar.leap else ""
    return f"农历{leap}{_LUNAR_MONTHS[lunar.month - 1]}月{lunar_day_name(lunar.day)}"


def honorific(gender: Any) -> str:
    """M → 先生, F → 女士; unknown → 客户 (never guess wrong)."""
    return {"M": "先生", "F": "女士"}.get(str(gender), "客户")


def surname(name: Any) -> str:
    text = "" if name is None else str(name)
    return text[:2] if text[:2] in COMPOUND_SURNAMES else text[:1]


def polite_name(customer: Mapping[str, Any]) -> str:
    """``{{ customer | polite_name }}`` → 张先生 / 欧阳女士"""
    return f"{surname(customer.get('name'))}{honorific(customer.get('gender'))}"


CUSTOMER_READERS = {"polite_name": ("name", "gender")}
"""The filters above that take the whole customer, with the fields each reads: the audience
of a template using them selects these (see :mod:`engine.rendering.reads`)."""

FILTERS = {
    "mask_phone": mask_phone,
    "mask_name": mask_name,
    "mask_email": mask_email,
    "yuan": yuan,
    "wan": wan,
    "cn_date": cn_date,
    "cn_datetime": cn_datetime,
    "lunar_date": lunar_date,
    "honorific": honorific,
    "surname": surname,
    "polite_name": polite_name,
}


class EventFields(dict[str, Any]):
    """``event`` in the templates of an event playbook: the match's first event (envelope,
    the type's fields, ``type_label``). Its own type, so a typo in ``event.<field>`` is told
    apart from one in ``customer.<field>`` and answered with the event's fields."""


NO_EVENT = "'event' is undefined"


class Renderer:
    """Renders template files from ``templates/`` and inline texts from playbooks."""

    def __init__(
        self,
        templates_dir: Path,
        dictionary: DataDictionary | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        """``overrides``: template texts by name that stand in for the files of the same name,
        so an edit can be checked and rendered, includes and all, before it is saved."""
        self.templates_dir = templates_dir
        self.dictionary = dictionary
        loader: jinja2.BaseLoader = jinja2.FileSystemLoader(str(templates_dir))
        if overrides:
            loader = jinja2.ChoiceLoader([jinja2.DictLoader(dict(overrides)), loader])
        self.env = BudgetedSandbox(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters.update(FILTERS)
        self.env.filters["label"] = self._label
        self._inline: dict[str, jinja2.Template] = {}
        # per template (by identity, the template kept alive beside it): the customer fields
        # it reads, None for any; inline templates keep their source for that
        self._sources: dict[int, str] = {}
        self._reads: dict[int, tuple[jinja2.Template, frozenset[str] | None]] = {}

    def file(self, name: str) -> jinja2.Template:
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
            raise TemplateError(
                t("PB0126", name=name, folder=self.templates_dir.name),
                code="PB0126",
                hint=t("PB0126.hint"),
            )
        template = self._load(name, None)
        self._check_references(name, template, set())
        return template

    def _load(self, name: str, by: str | None) -> jinja2.Template:
        """``name`` compiled, or the TemplateError an editor can act on (``by``: the template
        that includes, imports or extends it)."""
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound:
            raise self._missing(name, by) from None
        except jinja2.TemplateSyntaxError as exc:
            raise self._syntax(exc, name) from None

    def _missing(self, name: str, by: str | None) -> TemplateError:
        message = (
            t("PB0120", name=name, folder=self.templates_dir)
            if by is None
            else t("PB0120.include", name=name, by=by, folder=self.templates_dir)
        )
        return TemplateError(message, code="PB0120", where=by, hint=self._nearest(name))

    def _syntax(self, exc: jinja2.TemplateSyntaxError, name: str | None) -> TemplateError:
        which = exc.name or name  # the file the mistake is in, maybe one that was included
        return TemplateError(
            t("PB0121", problem=exc.message),
            code="PB0121",
            where=f"{self.templates_dir / which}:{exc.lineno}" if which else None,
        )

    def _check_references(self, name: str, template: jinja2.Template, seen: set[str]) -> None:
        """Every template ``name`` includes, imports or extends exists and parses, at any
        depth, whether or not the sample customer's rendering reaches it: an include in an
        ``{% if %}`` branch must not fail first at send time."""
        seen.add(name)
        source = self.source(template)
        if source is None:
            return
        try:
            tree = self.env.parse(source)
        except jinja2.TemplateSyntaxError:
            return  # get_template would have said so already
        for used in jinja2.meta.find_referenced_templates(tree):
            if used is None:
                raise TemplateError(t("PB0120.computed", by=name), code="PB0120", where=name)
            if used not in seen:
                self._check_references(used, self._load(used, name), seen)

    def inline(self, source: str) -> jinja2.Template:
        template = self._inline.get(source)
        if template is None:
            try:
                template = self.env.from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(t("PB0121", problem=exc.message), code="PB0121") from exc
            self._inline[source] = template
            self._sources[id(template)] = source
        return template

    def source(self, template: jinja2.Template) -> str | None:
        """The text a template was compiled from: a file's from the loader, an inline
        template's as given; None for one this renderer did not compile."""
        inline = self._sources.get(id(template))
        if inline is not None or template.name is None or self.env.loader is None:
            return inline
        try:
            source, _, _ = self.env.loader.get_source(self.env, template.name)
        except jinja2.TemplateNotFound:
            return None
        return str(source)

    def reads(self, template: jinja2.Template) -> frozenset[str] | None:
        """The customer fields ``template`` reads, None when it may read any (see
        :mod:`engine.rendering.reads`)."""
        known = self._reads.get(id(template))
        if known is None:
            keys = frozenset(f.key for f in self.dictionary) if self.dictionary else frozenset()
            source = self.source(template)
            found = (
                None if source is None else source_reads(self.env, source, keys, CUSTOMER_READERS)
            )
            known = self._reads[id(template)] = (template, found)
        return known[1]

    def render(self, template: jinja2.Template, context: Mapping[str, Any]) -> str:
        """The template's text for one context, or a :class:`TemplateError` saying why not.

        Whatever the template does (a missing include, a division by zero, a filter given a
        value it cannot take, a macro calling itself, a budget broken), the caller gets a
        ``TemplateError`` with a code, never another exception: one customer's text failing
        is that customer's problem, counted, not the run's.
        """
        token = start()
        try:
            parts: list[str] = []
            size = 0
            for part in template.generate(context):
                size += len(part)
                if size > MAX_OUTPUT:
                    raise BudgetExceeded(f"the text would be over {MAX_OUTPUT:,} characters")
                parts.append(part)
            return "".join(parts).strip()
        except BudgetExceeded as exc:
            raise TemplateError(
                t("PB0129", what=exc.what),
                code="PB0129",
                where=template.name,
                hint=t("PB0129.hint"),
            ) from None
        except RecursionError:
            raise TemplateError(
                t("PB0129", what=t("PB0129.recursion")),
                code="PB0129",
                where=template.name,
                hint=t("PB0129.hint"),
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise self._missing(str(exc.name), template.name or "") from None
        except jinja2.TemplateSyntaxError as exc:
            raise self._syntax(exc, template.name) from None
        except jinja2.UndefinedError as exc:
            message = str(exc.message)
            if message == NO_EVENT:
                raise TemplateError(
                    t("PB0128"), code="PB0128", where=template.name, hint=t("PB0128.hint")
                ) from exc
            event = context.get("event")
            if isinstance(event, EventFields) and f"{_EVENT_REPR} has no attribute '" in message:
                wrong = message.split("has no attribute '")[1].rstrip("'")
                close = difflib.get_close_matches(wrong, list(event), n=1)
                known = ", ".join(sorted(event))
                hint = t("PB0122.event.hint", known=known)
                if close:
                    hint = t("PB0122.event.guess", name=f"event.{close[0]}", known=known)
                raise TemplateError(
                    t("PB0122.event", type=event.get("type"), name=wrong),
                    code="PB0122",
                    where=template.name,
                    hint=hint,
                ) from exc
            problem: str | Msg = message
            if message.startswith(_DICT_REPR):  # Jinja's words; say the field instead
                wrong = message.split("has no attribute '")[1].rstrip("'")
                problem = t("PB0122.field", name=wrong)
            raise TemplateError(
                t("PB0122", problem=problem),
                code="PB0122",
                where=template.name,
                hint=self._variable_hint(message),
            ) from exc
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(t("PB0123", problem=exc), code="PB0123") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise TemplateError(
                t("PB0124", problem=exc), code="PB0124", where=template.name
            ) from exc
        except Exception as exc:  # any other failure is the template's, never the run's
            raise TemplateError(
                t("PB0124", problem=f"{type(exc).__name__}: {exc}"[:300]),
                code="PB0124",
                where=template.name,
            ) from exc
        finally:
            stop(token)

    def _label(self, code: Any, field_key: str) -> str:
        """``{{ customer.tier | label("tier") }}`` → 贵宾客户 (the enum's Chinese label); a related
        column as ``label("complaints.category")``."""
        table, _, column_key = field_key.rpartition(".")
        rel = self.dictionary.related.get(table) if self.dictionary and table else None
        if rel is not None:
            f = rel.columns.get(column_key)
        else:
            f = self.dictionary.get(field_key) if self.dictionary else None
        if f is None:
            raise TemplateError(t("PB0122.label", name=field_key), code="PB0122")
        return f.values.get(str(code), str(code))

    def _variable_hint(self, message: str) -> str:
        generic = t("PB0122.hint")
        if self.dictionary is None or "has no attribute '" not in message:
            return generic
        wrong = message.split("has no attribute '")[1].rstrip("'")
        guess = self.dictionary.suggest(wrong)
        column = self._column(wrong)
        if guess and (wrong in (guess.key, guess.label) or column is None):
            return t("hint.did_you_mean_field", name=f"customer.{guess.key}", label=guess.label)
        if column:
            return t("hint.did_you_mean_column", name=column[0], label=column[1], table=column[2])
        return generic

    def _column(self, wrong: str) -> tuple[str, str, str] | None:
        """The related-table column (a ``context:`` row's field) a typo most likely meant."""
        assert self.dictionary is not None
        names = {
            key: (key, f.label, table)
            for table, rel in self.dictionary.related.items()
            for key, f in rel.columns.items()
        }
        close = difflib.get_close_matches(wrong, list(names), n=1, cutoff=0.6)
        return names[close[0]] if close else None

    def _nearest(self, name: str) -> str | None:
        known = self.env.list_templates() if self.templates_dir.is_dir() else []
        close = difflib.get_close_matches(name, known, n=1)
        return t("hint.did_you_mean", name=close[0]) if close else None


def template_context(
    customer: Mapping[str, Any],
    *,
    playbook_id: str,
    playbook_title: str,
    bank_name: str,
    now: dt.datetime,
    rows: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables every template sees; the same at validate time and at run time.
    ``rows``: the playbook's ``context:`` selections, each a list of related rows."""
    return {
        **(rows or {}),
        "customer": customer,
        "playbook": {"id": playbook_id, "title": playbook_title},
        "bank": {"name": bank_name},
        "today": now.date(),
        "now": now,
    }


_DICT_REPR = "'dict object' has no attribute '"
_EVENT_REPR = f"'{EventFields.__module__}.{EventFields.__name__} object'"
