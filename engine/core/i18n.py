"""Validation messages in English and Chinese: one catalog, keyed by diagnostic code.

A checker builds a message with :func:`t` (``t("PB0107", what="field", name="tier_x")``).
The result is a :class:`Msg`: a ``str`` holding the English text, so everything that only
wants a string (logs, exceptions, tests, JSON) keeps working, and it remembers its key and
parameters, so a printer can render it again in Chinese with :func:`localize`. Parameters
that are messages themselves (a type name, a nested template error) are localized too.

Keys are the diagnostic code, or the code and a variant (``PB0102.list``) where one code
covers several situations; ``hint.*`` keys are the suggestions shared by many codes. A test
checks that every key has both languages with the same named parameters, that every code in
docs/errors.md has one, and that every key the code uses exists.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any, Literal

from engine.core.catalog import CATALOG as CATALOG  # the table this module renders from

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")


class Msg(str):
    """A catalog message: its English text, plus the key and parameters to render it again
    in another language."""

    key: str
    params: Mapping[str, Any]

    def __new__(cls, key: str, params: Mapping[str, Any]) -> Msg:
        obj = super().__new__(cls, _render(key, params, "en"))
        obj.key = key
        obj.params = dict(params)
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Msg, (self.key, self.params))


def t(key: str, /, **params: Any) -> Msg:
    """The message ``key`` with its parameters (a KeyError for an unknown key is a bug)."""
    return Msg(key, params)


def localize(text: str | None, lang: Lang) -> str | None:
    """``text`` in ``lang``: a :class:`Msg` is rendered again; any other string is as is."""
    if text is None:
        return None
    if isinstance(text, Msg):
        return _render(text.key, text.params, lang)
    return str(text)


def _render(key: str, params: Mapping[str, Any], lang: Lang) -> str:
    template = CATALOG[key][LANGS.index(lang)]
    values = {k: localize(v, lang) if isinstance(v, str) else v for k, v in params.items()}
    return template.format(**values)


def placeholders(template: str) -> set[str]:
    """The named parameters a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def choose_lang(flag: str | None = None, environ: Mapping[str, str] | None = None) -> Lang:
    """``--lang`` if given, else ``CARE_LANG``, else the locale (LC_ALL, LC_MESSAGES, LANG in
    POSIX order): zh… means Chinese, anything else English."""
    if flag in LANGS:
        return "zh" if flag == "zh" else "en"
    env = os.environ if environ is None else environ
    care = env.get("CARE_LANG", "").strip().lower()
    if care:
        return "zh" if care.startswith("zh") else "en"
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "").strip()
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"
