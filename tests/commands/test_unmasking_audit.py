"""Every command that can show or export personal data unmasked records it in the audit log
before showing it (PIPL: who saw whose data): dry-run in any format, explain, tasks, outbox,
history. The masked default records nothing."""

from __future__ import annotations

from support import AS_OF_DATE, cli

from engine.store import audit
from engine.store.db import open_store

DAY = AS_OF_DATE.isoformat()


def _entries(url: str) -> list[dict[str, object]]:
    store = open_store(url)
    try:
        audit.ensure_tables(store)
        return audit.entries(store, action="personal_data.show")
    finally:
        store.dispose()


def test_unmasked_output_is_recorded_and_masked_output_is_not(clean_demo_url: str) -> None:
    db = ("--db", clean_demo_url)
    masked = cli("dry-run", *db, "--as-of", DAY, "--playbook", "birthday-greeting")
    assert masked.returncode == 0 and _entries(clean_demo_url) == []
    shown = cli(
        "dry-run",
        *db,
        "--as-of",
        DAY,
        "--playbook",
        "birthday-greeting",
        "--format",
        "csv",
        "--show-personal-data",
    )
    assert shown.returncode == 0, shown.stderr
    assert cli("run", *db, "--as-of", DAY, "--playbook", "vip-visit-manager-30d").returncode == 0
    for command in (
        ("explain", "C0000000043", "--as-of", DAY),
        ("tasks",),
        ("history", "C0000000043"),
    ):
        result = cli(*command, *db, "--show-personal-data")
        assert result.returncode == 0, (command, result.stderr)
    subjects = [e["subject"] for e in reversed(_entries(clean_demo_url))]
    assert subjects == ["dry-run", "explain", "tasks", "history"], subjects
    assert all(str(e["actor"]).startswith("cli:") for e in _entries(clean_demo_url))
