"""Governance end to end (issue 18), on SQLite and PostgreSQL, through ``runner.py`` as people
use it: an editor's change runs only after a different person approves it, two approvers above
the threshold, a file edited behind the workflow is reported and not run while another
playbook runs, rollback restores the earlier version's exact texts, bad input is a located
refusal with nothing half-published, and two publishers racing end with one live version.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from support import AS_OF_DATE, REPO, SETTINGS, assert_no_traceback, cli

from engine.console import accounts
from engine.console.roles import ROLES
from engine.core.dictionary import load_dictionary
from engine.core.settings import Settings
from engine.daemon.folder import PlaybookFolder
from engine.demo.generator import generate
from engine.execution.executor import Executor
from engine.governance import config as gov_config
from engine.governance import records
from engine.governance.gate import Gate
from engine.reports.history import history, history_text
from engine.store import audit
from engine.store.db import open_store
from engine.store.models import action_ledger, playbook_live, playbook_versions, runs

VIP = "vip-inactive-60d"
THANKS = "high-value-thanks"
RUN_AT = "2026-11-23T09:00"  # a Monday: both playbooks are due at 09:00
PASSWORD = "a long enough passphrase"

THANKS_YAML = """\
id: high-value-thanks
title: 高价值客户感谢短信
owner: 测试
enabled: true
category: service
priority: 40
trigger:
  schedule: "0 9 * * *"
audience:
  segment: high-value
actions:
  - sms: {template: thanks.sms.j2}
limits:
  once_per_customer: 30d
"""


def governance_yaml(*, enabled: bool = True, audience_over: int = 10_000) -> str:
    return f"""\
version: 1
enabled: {str(enabled).lower()}
approvers:
  marketing: {{roles: [approver]}}
  service: {{roles: [approver]}}
second_approver:
  audience_over: {audience_over}
people:
  pause: 1
  rollback: 2
"""


@dataclass
class Bank:
    root: Path
    url: str
    store: Engine

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = cli(*args, "--db", self.url, cwd=self.root)
        assert_no_traceback(result)
        return result

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def refused(self, code: str, *args: str) -> str:
        result = self.cli(*args)
        assert result.returncode != 0, result.stdout
        assert f"error[{code}]" in result.stderr, result.stderr
        return result.stderr

    def runs(self) -> dict[str, str | None]:
        with self.store.connect() as conn:
            rows = conn.execute(select(runs.c.playbook_id, runs.c.version_hash)).all()
        return {r.playbook_id: r.version_hash for r in rows}

    def version(self, number: int, playbook_id: str = VIP) -> dict[str, object]:
        with self.store.connect() as conn:
            row = records.version(conn, playbook_id, number)
        assert row is not None
        return row

    def live_states(self, playbook_id: str = VIP) -> list[int]:
        with self.store.connect() as conn:
            rows = conn.execute(
                select(playbook_versions.c.number).where(
                    playbook_versions.c.playbook_id == playbook_id,
                    playbook_versions.c.state == "live",
                )
            ).all()
        return [r.number for r in rows]


def deployment(root: Path, governance: str | None) -> Path:
    """A bank's folder: two playbooks (one naming a segment), their templates, the segments."""
    for folder in ("schemas", "segments", "config"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "playbooks").mkdir()
    (root / "templates").mkdir()
    shutil.copy(REPO / "playbooks/vip_inactive_60d.yaml", root / "playbooks")
    for name in ("vip_inactive_60d.sms.j2", "vip_inactive_60d.task.j2"):
        shutil.copy(REPO / "templates" / name, root / "templates")
    (root / "playbooks/high_value_thanks.yaml").write_text(THANKS_YAML, encoding="utf-8")
    (root / "templates/thanks.sms.j2").write_text(
        "{{ customer | polite_name }}您好,感谢您一直以来的信任。", encoding="utf-8"
    )
    target = root / "config/governance.yaml"
    target.unlink()
    if governance is not None:
        target.write_text(governance, encoding="utf-8")
    return root


def open_bank(root: Path, url: str) -> Iterator[Bank]:
    store = open_store(url)
    try:
        generate(store, customers=300, seed=11, as_of=AS_OF_DATE)
        for name, role in (("ed", "editor"), ("amy", "approver"), ("bob", "approver")):
            accounts.add(store, name, role, PASSWORD)
        yield Bank(root, url, store)
    finally:
        store.dispose()


@pytest.fixture
def bank(tmp_path: Path, db_url: str) -> Iterator[Bank]:
    yield from open_bank(deployment(tmp_path / "bank", governance_yaml()), db_url)


def live_version(b: Bank, playbook_id: str, approver: str = "amy") -> None:
    """Submit (as ed), approve and publish the files as they are."""
    out = b.ok("playbook", "submit", playbook_id, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
    number = out.split("@", 1)[1].split(":", 1)[0]
    b.ok("playbook", "approve", playbook_id, number, "--as", approver)
    b.ok("playbook", "publish", playbook_id, number, "--as", approver)


# --- the life cycle ---------------------------------------------------------------------------


def test_an_editors_change_runs_only_after_a_different_person_approves_it(bank: Bank) -> None:
    out = bank.ok("playbook", "submit", VIP, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
    assert "version 1 submitted" in out and "audience estimate" in out
    assert "+++ new/playbooks/vip_inactive_60d.yaml" in out  # the diff against nothing live

    refusal = bank.refused("E0636", "playbook", "approve", VIP, "1", "--as", "ed")
    assert "may not approve" in refusal and f"{VIP}@1" in refusal
    refusal = bank.refused("E0637", "playbook", "approve", VIP, "1")  # cli:USER, no role
    # not approved yet: nothing runs, and the run says why
    out = bank.cli("run", "--as-of", RUN_AT).stdout
    assert f"{VIP}: skipped: no approved live version" in out
    assert bank.runs() == {}

    bank.ok("playbook", "approve", VIP, "1", "--as", "amy", "--comment", "消保审查通过")
    bank.ok("playbook", "publish", VIP, "1", "--as", "amy")
    out = bank.cli("run", "--as-of", RUN_AT).stdout
    assert f"{VIP}: run " in out
    v1 = bank.version(1)
    assert bank.runs() == {VIP: v1["hash"]}  # the run names the version that produced it
    with bank.store.connect() as conn:
        ledger_runs = set(conn.execute(select(action_ledger.c.run_id)).scalars())
        run_ids = set(conn.execute(select(runs.c.id)).scalars())
    assert ledger_runs and ledger_runs <= run_ids  # ledger, outbox, tasks refer via their run

    # every step is in the audit log, chained and intact
    actions = [e["action"] for e in audit.entries(bank.store, action="playbook.")]
    assert actions == ["playbook.published", "playbook.approved", "playbook.submitted"]
    assert audit.verify(bank.store).intact
    # the version stored the estimate and the approvers can see it
    assert v1["estimate"]["audience"] > 0 and v1["approvals_needed"] == 1  # type: ignore[index]
    # a customer's contact history names the version that decided each action, and who
    # approved it
    with bank.store.connect() as conn:
        someone = conn.execute(select(action_ledger.c.customer_id).limit(1)).scalar_one()
    found = history(bank.store, someone, SETTINGS.timezone)
    decided = [e for e in found.entries if e["kind"] in ("sms", "task", "held_out")]
    assert decided and all(e["version_number"] == 1 for e in decided)
    assert all(e["approved_by"] == ["amy"] for e in decided)
    assert "v1 approved by amy" in history_text(found)


def test_above_the_threshold_it_takes_two_approvers(tmp_path: Path, db_url: str) -> None:
    root = deployment(tmp_path / "bank", governance_yaml(audience_over=0))
    for b in open_bank(root, db_url):
        out = b.ok("playbook", "submit", VIP, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
        assert "needs 2 approver(s)" in out
        out = b.ok("playbook", "approve", VIP, "1", "--as", "amy")
        assert "approval 1 of 2" in out
        b.refused("E0638", "playbook", "approve", VIP, "1", "--as", "amy")  # not twice
        b.refused("E0635", "playbook", "publish", VIP, "1", "--as", "amy")  # not yet approved
        out = b.ok("playbook", "approve", VIP, "1", "--as", "bob")
        assert "approved (2 of 2)" in out
        b.ok("playbook", "publish", VIP, "1", "--as", "bob")
        assert b.live_states() == [1]


def test_a_file_edited_behind_the_workflow_is_reported_and_not_run_while_another_runs(
    bank: Bank,
) -> None:
    live_version(bank, VIP)
    live_version(bank, THANKS)
    assert "segments/high-value.yaml" in bank.version(1, THANKS)["files"]  # type: ignore[operator]
    template = bank.root / "templates/vip_inactive_60d.sms.j2"
    template.write_text(template.read_text(encoding="utf-8") + "限时加息!", encoding="utf-8")

    result = bank.cli("run", "--as-of", RUN_AT)
    assert result.returncode == 1  # reported as a problem …
    assert f"{VIP}: skipped: changed outside the workflow" in result.stdout
    assert "changed outside the workflow and not run: vip-inactive-60d" in result.stderr
    assert set(bank.runs()) == {THANKS}  # … while the other playbook ran as usual
    assert bank.runs()[THANKS] == bank.version(1, THANKS)["hash"]

    status = bank.ok("status")
    assert "Not run by governance: 1 (1 changed outside the workflow" in status
    diff = bank.ok("playbook", "diff", VIP)
    assert "+" in diff and "限时加息" in diff

    # the daemon loads the folders through the same gate
    settings = Settings(root=bank.root)
    dictionary = load_dictionary(settings.dictionary_path)
    folder = PlaybookFolder(
        settings,
        dictionary,
        lambda renderer: Executor(bank.store, settings, dictionary, renderer),
    )
    folder.gate = Gate(bank.store, settings)
    changes = folder.poll()
    assert changes is not None
    assert set(folder.active()) == {THANKS}
    assert [(w.playbook_id, w.reason) for w in changes.withheld] == [
        (VIP, "changed_outside_workflow")
    ]
    # a segment edited behind the workflow stops the playbook that names it, too
    segment = bank.root / "segments/high-value.yaml"
    segment.write_text(segment.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    changes = folder.poll()
    assert changes is not None and folder.active() == {}
    assert (THANKS, "changed_outside_workflow") in [(pid, why) for pid, why in changes.stopped]


def test_pause_stops_the_playbook_and_the_daemon_notices_without_a_file_change(
    bank: Bank,
) -> None:
    live_version(bank, VIP)
    settings = Settings(root=bank.root)
    dictionary = load_dictionary(settings.dictionary_path)
    folder = PlaybookFolder(
        settings, dictionary, lambda r: Executor(bank.store, settings, dictionary, r)
    )
    folder.gate = Gate(bank.store, settings)
    folder.poll()
    assert set(folder.active()) == {VIP}
    bank.ok("playbook", "pause", VIP, "--as", "bob")  # one person pauses
    changes = folder.poll()  # no file changed: the store's live pointer did
    assert changes is not None and (VIP, "paused") in changes.stopped
    assert f"{VIP}: skipped: paused" in bank.cli("run", "--as-of", RUN_AT).stdout
    bank.ok("playbook", "resume", VIP, "--as", "amy")
    folder.poll()
    assert set(folder.active()) == {VIP}


def test_rollback_restores_the_earlier_versions_exact_texts(bank: Bank) -> None:
    playbook = bank.root / "playbooks/vip_inactive_60d.yaml"
    template = bank.root / "templates/vip_inactive_60d.sms.j2"
    first = {p: p.read_bytes() for p in (playbook, template)}
    live_version(bank, VIP)
    template.write_text("{{ customer | polite_name }}您好,新版短信。", encoding="utf-8")
    playbook.write_text(
        playbook.read_text(encoding="utf-8").replace("max_per_run: 500", "max_per_run: 300"),
        encoding="utf-8",
    )
    live_version(bank, VIP, approver="bob")
    assert bank.live_states() == [2]

    out = bank.ok("playbook", "rollback", VIP, "1", "--as", "amy")
    assert "1 more person(s) must confirm" in out  # rollback takes two people here
    assert template.read_bytes() != first[template]
    bank.refused("E0638", "playbook", "rollback", VIP, "1", "--as", "amy")
    bank.ok("playbook", "rollback", VIP, "1", "--as", "bob")
    assert {p: p.read_bytes() for p in first} == first  # byte for byte
    assert bank.live_states() == [1]
    assert bank.version(2)["state"] == "retired"
    bank.cli("run", "--as-of", RUN_AT)
    assert bank.runs()[VIP] == bank.version(1)["hash"]
    versions = bank.ok("playbook", "versions", VIP)
    assert "rollback_requested" in versions and "rolled_back" in versions


# --- bad input: located refusals, nothing half-published -----------------------------------


def test_approving_a_version_that_no_longer_validates_is_refused(bank: Bank) -> None:
    bank.ok("playbook", "submit", VIP, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
    # the bank renames a field of its data dictionary after the submission
    dictionary = bank.root / "schemas/data_dictionary.yaml"
    text = dictionary.read_text(encoding="utf-8")
    dictionary.write_text(text.replace("  last_active_at:\n", "  last_seen_at:\n"), "utf-8")
    refusal = bank.refused("E0633", "playbook", "approve", VIP, "1", "--as", "amy")
    assert f"{VIP}@1" in refusal and "last_active_at" in refusal
    assert bank.version(1)["state"] == "submitted"


def test_a_rejection_needs_a_comment_and_ends_the_version(bank: Bank) -> None:
    bank.ok("playbook", "submit", VIP, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
    bank.refused("E0645", "playbook", "reject", VIP, "1", "--as", "amy", "--comment", " ")
    bank.ok("playbook", "reject", VIP, "1", "--as", "amy", "--comment", "短信缺少退订说明")
    assert bank.version(1)["state"] == "rejected"
    bank.refused("E0635", "playbook", "approve", VIP, "1", "--as", "bob")


def test_publishing_over_a_newer_live_version_is_refused_and_writes_nothing(bank: Bank) -> None:
    live_version(bank, VIP)
    template = bank.root / "templates/vip_inactive_60d.sms.j2"
    template.write_text("第二版", encoding="utf-8")
    bank.ok("playbook", "submit", VIP, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
    template.write_text("第三版", encoding="utf-8")
    bank.ok("playbook", "submit", VIP, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
    bank.ok("playbook", "approve", VIP, "2", "--as", "amy")
    bank.ok("playbook", "approve", VIP, "3", "--as", "bob")
    bank.ok("playbook", "publish", VIP, "3", "--as", "bob")
    assert template.read_text(encoding="utf-8") == "第三版"
    refusal = bank.refused("E0639", "playbook", "publish", VIP, "2", "--as", "amy")
    assert "live version is now 3" in refusal
    assert template.read_text(encoding="utf-8") == "第三版"
    assert bank.live_states() == [3]
    assert not list((bank.root / "templates").glob(".*"))  # no staged file left behind


def test_the_live_pointer_is_compare_and_set(bank: Bank) -> None:
    """Two writers who saw the same pointer: the first moves it, the second finds it moved."""
    records.ensure_tables(bank.store)
    records.ensure_live_row(bank.store, VIP, "test")
    with bank.store.connect() as conn:
        seen = records.live(conn, VIP)
    assert seen is not None
    with bank.store.begin() as conn:
        assert records.move_live(conn, seen, "amy", version_id=None, paused=True)
    with bank.store.begin() as conn:
        assert not records.move_live(conn, seen, "bob", version_id=None, paused=False)
    with bank.store.connect() as conn:
        assert conn.execute(select(playbook_live.c.paused)).scalar_one() is True


def test_a_missing_or_broken_governance_file(tmp_path: Path, sqlite_url: str) -> None:
    for b in open_bank(deployment(tmp_path / "bank", None), sqlite_url):
        refusal = b.refused("E0631", "playbook", "submit", VIP, "--as", "ed")
        assert "governance.yaml" in refusal
        # without the file governance is off: run behaves as it always did
        assert f"{VIP}: run " in b.ok("run", "--as-of", RUN_AT)
        assert b.runs()[VIP] is None
        (b.root / "config/governance.yaml").write_text(
            "version: 1\nenabled: yes please\n", encoding="utf-8"
        )
        for args in (("playbook", "submit", VIP, "--as", "ed"), ("run", "--as-of", RUN_AT)):
            refusal = b.refused("E0630", *args)
            assert "governance.yaml:2:" in refusal  # located at the bad value
        (b.root / "config/governance.yaml").write_text(
            "version: 1\nenabled: true\napprover: {}\n", encoding="utf-8"
        )
        assert "did you mean 'approvers'" in b.refused("E0630", "run", "--as-of", RUN_AT)


def test_governance_off_runs_every_file_as_before(tmp_path: Path, sqlite_url: str) -> None:
    root = deployment(tmp_path / "bank", governance_yaml(enabled=False))
    for b in open_bank(root, sqlite_url):
        out = b.ok("run", "--as-of", RUN_AT)
        assert f"{VIP}: run " in out and f"{THANKS}: run " in out
        assert b.runs() == {VIP: None, THANKS: None}


def test_the_roles_in_the_file_are_the_consoles() -> None:
    assert gov_config.ROLES == ROLES


# --- two approvers racing ----------------------------------------------------------------------


@pytest.mark.postgres
def test_two_processes_racing_to_publish_end_with_one_live_version(
    tmp_path: Path, pg_url: str
) -> None:
    for b in open_bank(deployment(tmp_path / "bank", governance_yaml()), pg_url):
        live_version(b, VIP)
        template = b.root / "templates/vip_inactive_60d.sms.j2"
        for n, text in ((2, "第二版"), (3, "第三版")):
            template.write_text(text, encoding="utf-8")
            b.ok("playbook", "submit", VIP, "--as", "ed", "--as-of", AS_OF_DATE.isoformat())
            b.ok("playbook", "approve", VIP, str(n), "--as", "amy")
        racers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "runner.py"),
                    "playbook",
                    "publish",
                    VIP,
                    str(n),
                    "--as",
                    who,
                    "--db",
                    pg_url,
                ],
                cwd=b.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n, who in ((2, "amy"), (3, "bob"))
        ]
        results = [(p.wait(timeout=120), *p.communicate()) for p in racers]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        loser_err = next(err for code, _, err in results if code == 1)
        assert "error[E0639]" in loser_err or "error[E0640]" in loser_err, loser_err
        winners = b.live_states()
        assert len(winners) == 1
        with b.store.connect() as conn:
            pointer = records.live(conn, VIP)
        winner = b.version(winners[0])
        assert pointer is not None and pointer.version_id == winner["id"]
        expected = winner["files"]["templates/vip_inactive_60d.sms.j2"]  # type: ignore[index]
        assert template.read_text(encoding="utf-8") == expected  # the winner's files, only
        assert not list((b.root / "templates").glob(".*"))
