"""Human labels for stable identifiers (suppression reasons), shared by every report."""

from __future__ import annotations

from engine.reports.dryrun import REASONS


def reason_label(reason: str) -> str:
    zh, en = REASONS.get(reason, (reason, reason))
    return f"{zh} {en}"
