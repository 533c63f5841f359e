"""Governance refusals: one error class, each reason with its own code (E0630–E0659) and its
words in English and Chinese from the catalog (``gov.<reason>``)."""

from __future__ import annotations

from typing import Any

from engine.core.errors import EngineError
from engine.core.i18n import choose_lang, localize, t

CODES: dict[str, str] = {
    "no_file": "E0631",
    "unknown_playbook": "E0632",
    "invalid": "E0633",
    "unknown_version": "E0634",
    "wrong_state": "E0635",
    "self_approval": "E0636",
    "not_allowed": "E0637",
    "already_approved": "E0638",
    "newer_live": "E0639",
    "race_lost": "E0640",
    "unknown_account": "E0641",
    "shared_template": "E0642",
    "write_failed": "E0643",
    "duplicate": "E0644",
    "comment_needed": "E0645",
    "not_live": "E0646",
    "no_change": "E0647",
}
"""E0630 is the governance file's own (config/governance.yaml, via engine/core/configfile)."""


class GovernanceError(EngineError):
    """A governance action refused: nothing was changed, in the store or on disk."""


def refuse(reason: str, where: str | None = None, **params: Any) -> GovernanceError:
    """The refusal ``reason`` in the user's language, located at ``where`` (a file or a
    playbook@version)."""
    lang = choose_lang()
    message = localize(t(f"gov.{reason}", **params), lang) or reason
    hint = localize(t(f"gov.{reason}.hint", **params), lang)
    return GovernanceError(message, code=CODES[reason], where=where, hint=hint)
