"""Delivery from the command line, as IT and managers use it: ``run`` then ``dispatch`` to a
real HTTP gateway and SMTP server on 127.0.0.1, then ``outbox``, ``tasks`` and ``stats``.

``dispatch`` runs as a subprocess (the real entry point); the other commands go through the
same ``engine.cli.main`` in-process, exit codes included, to keep the suite quick."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateways import HttpGateway, SmtpServer
from sqlalchemy import select
from support import REPO, assert_no_traceback, cli

from engine.cli import main as cli_main
from engine.core.masking import mask_name
from engine.store.db import open_store
from engine.store.models import customers

# SQLite only: what is under test here is the command line (arguments, output, exit codes);
# the delivery beneath it runs on both backends in tests/delivery/test_dispatch.py.
pytestmark = pytest.mark.parametrize("demo_url", ["sqlite"], indirect=True)


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def engine_cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``engine.cli.main`` in-process (cwd set by the test) and capture what it prints."""

    def invoke(*args: str) -> Ran:
        capsys.readouterr()
        try:
            cli_main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return invoke


SURVEY = """id: survey-email
title: 服务满意度邮件
category: service
holdout_percent: 10
trigger: {schedule: "0 9 * * 1-5"}
audience:
  tier: [vip, private]
actions:
  - email: {subject: "{{ customer | polite_name }},邀请您评价服务", template: care_survey.email.j2}
  - tag: {add: 已邀请评价}
limits: {once_per_customer: 90d}
"""


@pytest.fixture
def deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, HttpGateway, SmtpServer]]:
    """A deployment folder (the current directory) whose channels point at the test's own
    gateways."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARE_DB", raising=False)
    for name in ("schemas", "templates"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "vip.yaml").symlink_to(REPO / "playbooks" / "vip_inactive_60d.yaml")
    (tmp_path / "playbooks" / "survey.yaml").write_text(SURVEY, encoding="utf-8")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "policy.yaml").symlink_to(REPO / "config" / "policy.yaml")
    with HttpGateway() as http, SmtpServer() as smtp:
        (tmp_path / "config" / "channels.yaml").write_text(
            f"""version: 1
retry: {{max_attempts: 3, first_delay_seconds: 0.01, max_delay_seconds: 0.02}}
sms: {{url: "{http.url("/sms")}", timeout_seconds: 2, json_fields: {{recipient: mobile}}}}
email: {{host: 127.0.0.1, port: {smtp.port}, sender: care@bank.example}}
webhooks:
  crm-followup: {{url: "{http.url("/hooks/crm")}"}}
""",
            encoding="utf-8",
        )
        yield tmp_path, http, smtp


def test_run_then_dispatch_delivers_sms_and_email_and_tasks_appear(
    clean_demo_url: str, deployment: tuple[Path, HttpGateway, SmtpServer], engine_cli: Any
) -> None:
    folder, http, smtp = deployment
    at = ("--db", clean_demo_url, "--as-of", "2026-11-23T09:00")
    preview = engine_cli("dry-run", *at, "--format", "json")
    assert preview.returncode == 0, preview.stderr
    for p in json.loads(preview.stdout)["playbooks"]:
        c = p["counts"]
        assert c["matched"] == c["customers_acted"] + c["customers_suppressed"] + c["held_out"]
        assert len(p["held_out"]) == c["held_out"]
    ran = engine_cli("run", *at)
    assert ran.returncode == 0, ran.stderr
    sent = cli("dispatch", "--once", *at, cwd=folder)
    assert sent.returncode == 0, sent.stderr
    assert_no_traceback(sent)
    stats = json.loads(engine_cli("stats", "--db", clean_demo_url, "--format", "json").stdout)
    assert set(stats) >= {"runs", "ledger", "outbox", "tasks"}
    assert stats["outbox"]["pending"] == stats["outbox"]["failed"] == 0
    assert stats["outbox"]["sent"] == len(http.ledger.delivered) + len(smtp.ledger.delivered)
    assert http.ledger.delivered and smtp.ledger.delivered
    first = next(iter(http.ledger.bodies.values()))["body"]
    assert first["mobile"].isdigit() and first["text"].startswith(
        "【示例银行】"
    )  # IT's field names
    mail = next(iter(smtp.ledger.bodies.values()))
    assert "邀请您评价服务" in mail["subject"] and "农历" in mail["body"]
    # the outbox lists what went, masked
    listed = json.loads(engine_cli("outbox", "--db", clean_demo_url, "--format", "json").stdout)
    assert listed and all(r["status"] == "sent" for r in listed)
    assert all("****" in r["recipient"] or "***@" in r["recipient"] for r in listed)
    # managers see their tasks; closing one takes an outcome
    tasks = json.loads(engine_cli("tasks", "--db", clean_demo_url, "--format", "json").stdout)
    assert tasks and stats["tasks"]["open"] == len(tasks)
    mine = tasks[0]["assignee_id"]
    as_csv = engine_cli("tasks", "--db", clean_demo_url, "--manager", mine, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows and {r["assignee_id"] for r in rows} == {mine}
    done = engine_cli(
        "tasks", "--db", clean_demo_url, "done", str(tasks[0]["id"]), "--outcome", "no-answer"
    )
    assert done.returncode == 0, done.stderr
    bad = engine_cli(
        "tasks", "--db", clean_demo_url, "done", str(tasks[1]["id"]), "--outcome", "maybe"
    )
    assert bad.returncode == 2 and "E0502" in bad.stderr and "no-answer" in bad.stderr
    again = engine_cli(
        "tasks", "--db", clean_demo_url, "done", str(tasks[0]["id"]), "--outcome", "reached"
    )
    assert again.returncode == 1 and "not open" in again.stderr
    assert_no_traceback(again)


def test_broken_channel_config_is_one_located_error(
    clean_demo_url: str, deployment: tuple[Path, HttpGateway, SmtpServer], engine_cli: Any
) -> None:
    folder, _, _ = deployment
    (folder / "config" / "channels.yaml").write_text(
        "version: 1\nsms: {url: gateway.bank.local/sms}\n", encoding="utf-8"
    )
    result = engine_cli("dispatch", "--once", "--db", clean_demo_url)
    assert result.returncode == 1
    assert "channels.yaml:2:" in result.stderr and "E0402" in result.stderr
    assert_no_traceback(result)


def test_outbox_retry_and_cancel(
    clean_demo_url: str, deployment: tuple[Path, HttpGateway, SmtpServer], engine_cli: Any
) -> None:
    _, http, _ = deployment
    at = ("--db", clean_demo_url, "--as-of", "2026-11-23T09:00")
    assert engine_cli("run", *at, "--playbook", "vip-inactive-60d").returncode == 0
    http.ledger.plan([], then="400")  # the gateway refuses everything: dead letters
    engine_cli("dispatch", "--once", *at)
    failed = json.loads(
        engine_cli(
            "outbox", "--db", clean_demo_url, "--status", "failed", "--format", "json"
        ).stdout
    )
    assert failed and all("HTTP 400" in r["last_error"] for r in failed)
    retried = engine_cli(
        "outbox", "--db", clean_demo_url, "retry", "--failed", "--as-of", "2026-11-23T09:01"
    )
    assert f"{len(failed)} message(s) queued again" in retried.stdout
    cancelled = engine_cli("outbox", "--db", clean_demo_url, "cancel", str(failed[0]["id"]))
    assert "1 message(s) cancelled" in cancelled.stdout
    http.ledger.plan([], then="ok")
    engine_cli("dispatch", "--once", "--db", clean_demo_url, "--as-of", "2026-11-23T09:05")
    assert len(http.ledger.delivered) == len(failed) - 1


def test_tasks_due_filters_masking_escalation_and_closing_the_ladder(
    clean_demo_url: str, deployment: tuple[Path, HttpGateway, SmtpServer], engine_cli: Any
) -> None:
    db = ("--db", clean_demo_url)
    monday = ("--as-of", "2026-11-23T09:00")
    assert engine_cli("run", *db, *monday, "--playbook", "vip-inactive-60d").returncode == 0

    def listed(*args: str) -> list[dict[str, Any]]:
        result = engine_cli("tasks", *db, "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    every = listed(*monday)
    assert every and all(t["due_local"].startswith("2026-11-26T") for t in every)  # due in 3d
    assert listed(*monday, "--due", "today") == []
    assert listed(*monday, "--due", "week") == every  # Thursday is in this week
    # names in rendered titles are masked unless asked for
    store = open_store(clean_demo_url)
    with store.connect() as conn:
        names = {r.id: r.name for r in conn.execute(select(customers.c.id, customers.c.name))}
    store.dispose()
    real = listed(*monday, "--show-personal-data")
    assert any(names[t["customer_id"]] in t["title"] for t in real)
    assert not any(names[t["customer_id"]] in t["title"] for t in every)
    assert any(mask_name(names[t["customer_id"]]) in t["title"] for t in every)
    # the policy's escalate_after is 1 workday: not on Friday morning, but once Friday's
    # working hours (09:00-17:30) have ended, one escalation per task, to a superior
    morning = engine_cli("tasks", *db, "--as-of", "2026-11-27T10:00", "escalate")
    assert morning.returncode == 0 and morning.stdout.startswith("0 "), morning.stdout
    friday = ("--as-of", "2026-11-27T17:45")
    up = engine_cli("tasks", *db, *friday, "escalate")
    assert up.returncode == 0, up.stderr
    created = int(up.stdout.split()[0])
    assert created > 0
    assert engine_cli("tasks", *db, *friday, "escalate").stdout.startswith("0 ")  # once
    escalations = [t for t in listed(*friday) if t["kind"] == "escalation"]
    assert len(escalations) == created
    assert {t["assignee_role"] for t in escalations} <= {"senior_manager", "branch_leader"}
    assert all(t["escalation_level"] == 1 for t in escalations)
    # due after one more workday: Monday's end of work, not Saturday night
    assert {t["due_local"] for t in escalations} == {"2026-11-30T17:30+08:00"}
    overdue = listed(*friday, "--due", "overdue")
    assert {t["id"] for t in overdue} == {t["id"] for t in every}  # the originals, not new ones
    # the superior sees it in their own list; closing the original resolves it
    boss = escalations[0]["assignee_id"]
    assert escalations[0]["id"] in {t["id"] for t in listed(*friday, "--manager", boss)}
    original = next(t for t in every if t["customer_id"] == escalations[0]["customer_id"])
    done = engine_cli("tasks", *db, *friday, "done", str(original["id"]), "--outcome", "reached")
    assert done.returncode == 0 and "1 escalation(s) resolved" in done.stdout, done.stdout
    assert escalations[0]["id"] not in {t["id"] for t in listed(*friday)}
