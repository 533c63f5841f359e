"""The words carriers and regulators require around a message: the SMS signature, the opt-out
sentences, and the segment count that includes them.

They are compliance's to word, not the engine's: they live in the contact policy
(``config/policy.yaml``, section ``messages``) beside quiet hours and caps, so the person who
answers for them edits one file. This module holds their typed form and the composition every
counter uses (validate, run, dry-run, the console's template preview), so what is counted is
what is sent. The policy loader checks the section together with the rest of the file; the
validator, which sits below the policy, reads just this section through :func:`load_texts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.configfile import ConfigFile, load_config
from engine.core.i18n import t

# Carriers register a signature of 2-12 characters inside 【】, sent first in every SMS.
SIGNATURE = re.compile(r"^【[^【】\s]{2,12}】$")
MARKETING = "marketing"


@dataclass(frozen=True)
class MessageTexts:
    """What every message carries besides its template: today's defaults until configured."""

    # Sent in front of every SMS: Chinese carriers require a registered signature.
    sms_signature: str = "【示例银行】"
    # Sent after every marketing SMS (工信部《通信短信息服务管理规定》: an easy opt-out).
    sms_opt_out: str = "回复TD退订"
    # Sent after every marketing e-mail, for the same reason.
    email_opt_out: str = "如不希望再收到此类邮件,请回复“退订”。"


def compose_sms(body: str, category: str, texts: MessageTexts) -> str:
    """Signature first (carriers require it), opt-out last for marketing messages, unless the
    template already says it."""
    text = f"{texts.sms_signature}{body}"
    if category == MARKETING and texts.sms_opt_out not in body:
        text += texts.sms_opt_out
    return text


def compose_email(body: str, category: str, texts: MessageTexts) -> str:
    """A marketing e-mail ends with the opt-out sentence, as marketing SMS do."""
    if category == MARKETING and texts.email_opt_out not in body:
        return f"{body}\n\n{texts.email_opt_out}"
    return body


# --- the ``messages`` section of config/policy.yaml -------------------------------------------

_WINDOW = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"marketing": {"type": "string"}, "service": {"type": "string"}},
}
_LIMIT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["max", "per"],
    "properties": {
        "max": {"type": "integer", "minimum": 1},
        "per": {"type": "string", "pattern": r"^\s*\d+\s*(min|h|d|w)\s*$"},
    },
}
MESSAGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sms": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "signature": {"type": "string"},
                "opt_out": {"type": "string"},
                "operator_window": _WINDOW,
            },
        },
        "email": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"opt_out": {"type": "string"}, "operator_window": _WINDOW},
        },
        "wecom": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "per_customer": {"type": "array", "minItems": 1, "items": _LIMIT},
            },
        },
    },
}
# The policy file as this module sees it: its own section checked, the rest the policy's.
_FILE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"messages": MESSAGES_SCHEMA}}


def parse_texts(cfg: ConfigFile) -> MessageTexts:
    """The ``messages`` texts of a checked policy file; a channel named without its opt-out,
    or a signature carriers would refuse, is an error at its key."""
    section = cfg.data.get("messages") or {}
    default = MessageTexts()
    sms = section.get("sms")
    email = section.get("email")
    signature, sms_opt_out = default.sms_signature, default.sms_opt_out
    if sms is not None:
        signature = str(sms.get("signature", signature)).strip()
        if not SIGNATURE.match(signature):
            at = ("messages", "sms", "signature")
            raise cfg.error(at, t("E0420", value=signature), t("E0420.hint"), code="E0420")
        sms_opt_out = _opt_out(cfg, sms, "sms")
    email_opt_out = default.email_opt_out if email is None else _opt_out(cfg, email, "email")
    return MessageTexts(signature, sms_opt_out, email_opt_out)


def _opt_out(cfg: ConfigFile, spec: dict[str, Any], channel: str) -> str:
    text = str(spec.get("opt_out") or "").strip()
    if not text:
        named = "opt_out" in spec
        at = ("messages", channel, "opt_out") if named else ("messages", channel)
        raise cfg.error(
            at, t("E0421", channel=channel), t(f"E0421.{channel}"), code="E0421", key=not named
        )
    return text


def load_texts(path: Path) -> MessageTexts:
    """The configured texts from the policy file at ``path``; the defaults without one.
    Only the ``messages`` section is checked here (the policy loader checks the whole)."""
    if not path.exists():
        return MessageTexts()
    return parse_texts(load_config(path, _FILE_SCHEMA, "E0401"))
