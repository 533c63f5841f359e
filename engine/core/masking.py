"""Masking of personal data: names, phones, e-mails and ID numbers.

One place for the rule, because previews, reports, the task list, exports and log lines all
mask, and a customer's phone must look the same masked wherever it appears.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.dictionary import DataDictionary

COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
)


def mask_phone(value: Any) -> str:
    text = "" if value is None else str(value)
    if len(text) < 7:
        return "*" * len(text)
    return f"{text[:3]}{'*' * (len(text) - 7)}{text[-4:]}"


def mask_name(value: Any) -> str:
    text = "" if value is None else str(value)
    if not text:
        return text
    keep = 2 if text[:2] in COMPOUND_SURNAMES else 1
    return text[:keep] + "*" * max(1, len(text) - keep)


def mask_email(value: Any) -> str:
    text = "" if value is None else str(value)
    user, at, domain = text.partition("@")
    if not at:
        return mask_name(text)
    return f"{user[:1]}***@{domain}"


def mask_id(value: Any) -> str:
    text = "" if value is None else str(value)
    if len(text) <= 7:
        return "*" * len(text)
    return f"{text[:3]}{'*' * (len(text) - 7)}{text[-4:]}"


MASKS = {"phone": mask_phone, "name": mask_name, "email": mask_email, "id": mask_id}


def mask_values(values: Mapping[str, Any], dictionary: DataDictionary) -> dict[str, Any]:
    """A copy of a customer's values with every personal field masked."""
    out = dict(values)
    for f in dictionary:
        if f.pii and out.get(f.key) is not None:
            out[f.key] = MASKS[f.pii](out[f.key])
    return out
