"""The morning preview, the effect report and the operations page over real HTTP: the
preview's numbers are the CLI's dry-run (what users compare against), a branch leader sees
only their branch, each page is refused to the roles without its permission, and a dead
letter is retried or cancelled only with the session's CSRF token."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from typing import Any

from conftest import Site, csrf_of
from sqlalchemy import select, update
from support import AS_OF_DATE, cli

from engine.core.dictionary import load_dictionary
from engine.playbook.validation import Validator
from engine.reports.effect import effect_report
from engine.store.models import branches, customers, outbox

DAY = AS_OF_DATE.isoformat()  # the demo store's Monday


def numbers(html: str, attribute: str) -> dict[str, int]:
    """``attribute="key">1,234<`` → {key: 1234}: the numbers a page marks for machines."""
    found = re.findall(rf'{attribute}="([\w-]+)">([\d,]+)<', html)
    return {key: int(value.replace(",", "")) for key, value in found}


def row(html: str, attribute: str, key: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(key)}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={key}"
    return found.group(1)


def dry_run(site: Site, day: str = DAY) -> dict[str, Any]:
    """``runner.py dry-run --format json`` on the site's store, from the copied project."""
    result = cli("dry-run", "--db", _db(site), "--as-of", day, "--format", "json", cwd=site.root)
    assert result.stdout.startswith("{"), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _db(site: Site) -> str:
    return str(site.store.url)


def expected(report: dict[str, Any], keep: Any = lambda c: True) -> dict[str, int]:
    """Totals over the report's playbooks for the customers ``keep`` accepts."""
    totals: Counter[str] = Counter()
    for p in report["playbooks"]:
        matched = {c for c in p["matched"] if keep(c)}
        acted = {a["customer_id"] for a in p["actions"] if keep(a["customer_id"])}
        held_out = {c for c in p["held_out"] if keep(c)}
        totals["matched"] += len(matched)
        totals["acted"] += len(acted)
        totals["suppressed"] += len(matched - acted - held_out)
        for a in p["actions"]:
            if keep(a["customer_id"]):
                totals[a["type"]] += 1
    return dict(totals)


def branch_of_customers(site: Site) -> dict[str, str]:
    with site.store.connect() as conn:
        return {
            r.id: r.branch_id for r in conn.execute(select(customers.c.id, customers.c.branch_id))
        }


def test_the_preview_shows_the_cli_dry_run_of_the_day(site: Site) -> None:
    with site.client("editor") as client:
        page = client.get("/preview", params={"day": DAY})
    assert page.status_code == 200
    report = dry_run(site)
    want = expected(report)
    shown = numbers(page.text, "data-total")
    assert want["acted"] > 0 and len([k for k in want if k not in ("matched", "acted")]) > 1
    for key in ("matched", "acted", "suppressed"):
        assert shown[key] == want[key], key
    kinds = {k: n for k, n in want.items() if k not in ("matched", "acted", "suppressed")}
    assert {k: shown[k] for k in kinds} == kinds
    # the funnel of the CLI's own counts, playbook by playbook
    for p in report["playbooks"]:
        cells = numbers(row(page.text, "data-playbook", p["id"]), "data-key")
        c = p["counts"]
        assert cells["matched"] == c["matched"]
        assert cells["acted"] == c["customers_acted"]
        assert cells["suppressed"] == c["customers_suppressed"]
        for kind, n in c["actions"].items():
            assert cells[f"action-{kind}"] == n
    # by branch: every branch's actions add up to the totals
    by_branch = re.findall(r'<tr data-branch="([^"]+)">(.*?)</tr>', page.text, re.S)
    assert len(by_branch) > 1
    assert sum(numbers(cells, "data-key")["acted"] for _, cells in by_branch) == want["acted"]
    # readable: thousands separators and Chinese dates; personal data never shown
    assert "2026年11月23日" in page.text
    if want["matched"] >= 1000:
        assert f"{want['matched']:,}" in page.text


def test_the_preview_defaults_to_today_in_the_banks_time_zone(site: Site) -> None:
    today = dt.datetime.now(site.settings.timezone).date()
    with site.client("auditor") as client:
        page = client.get("/preview")
    assert page.status_code == 200
    assert f"{today.year}年{today.month}月{today.day}日" in page.text
    with site.client("editor") as client:
        bad = client.get("/preview", params={"day": "tomorrow"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


def test_a_leader_sees_only_the_numbers_of_their_own_branch(site: Site) -> None:
    with site.store.connect() as conn:
        other = conn.execute(
            select(branches.c.id).where(branches.c.id != site.branch_id).limit(1)
        ).scalar_one()
    with site.client("leader") as client:
        page = client.get("/preview", params={"day": DAY, "branch": other})
    assert page.status_code == 200
    of = branch_of_customers(site)
    report = dry_run(site)
    mine = expected(report, lambda c: of.get(c) == site.branch_id)
    everyone = expected(report)
    assert 0 < mine["acted"] < everyone["acted"]
    shown = numbers(page.text, "data-total")
    for key, n in mine.items():
        assert shown[key] == n, key
    assert re.findall(r'<tr data-branch="([^"]+)">', page.text) == [site.branch_id]
    assert f'data-branch="{other}"' not in page.text
    assert 'name="branch"' not in page.text  # no filter to pick another branch
    # an editor choosing that branch sees the same numbers the leader does
    with site.client("editor") as client:
        chosen = client.get("/preview", params={"day": DAY, "branch": site.branch_id})
    assert numbers(chosen.text, "data-total") == shown


def test_each_page_is_refused_to_the_roles_without_its_permission(site: Site) -> None:
    with site.client("manager") as client:
        for path in ("/preview", "/report", "/operations"):
            assert client.get(path).status_code == 403, path
    for role in ("editor", "leader", "approver", "auditor"):
        with site.client(role) as client:
            assert client.get("/operations").status_code == 403, role
    with site.client("admin") as client:
        assert client.get("/preview").status_code == 403
        assert client.get("/operations").status_code == 200
    with site.client() as anonymous:
        assert anonymous.get("/report").status_code == 303


def run_vip_inactive(site: Site) -> None:
    """A real run of one SMS playbook: outbox rows to report on and to turn dead."""
    run = cli(
        "run", "--db", _db(site), "--as-of", f"{DAY}T09:00", "--playbook", "vip-inactive-60d",
        cwd=site.root,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


def test_the_effect_report_is_the_engines_effect_report(site: Site) -> None:
    run_vip_inactive(site)
    since, until = AS_OF_DATE - dt.timedelta(days=6), AS_OF_DATE + dt.timedelta(days=1)
    with site.client("approver") as client:
        page = client.get("/report", params={"from": since.isoformat(), "to": until.isoformat()})
    assert page.status_code == 200
    settings = site.settings
    dictionary = load_dictionary(settings.dictionary_path)
    playbooks = Validator(settings, dictionary).validate_paths([settings.playbooks_dir]).playbooks
    as_of = dt.datetime.combine(until, dt.time(23, 59, 59), settings.timezone)
    doc = effect_report(
        site.store,
        dictionary,
        playbooks,
        as_of=as_of,
        since=since,
        until=until,
        tz=settings.timezone,
    )
    acted = 0
    for p in doc["playbooks"]:
        cells = numbers(row(page.text, "data-playbook", p["id"]), "data-key")
        assert cells["acted"] == p["triggered"]["customers"]
        assert cells["sent"] == p["messages"]["sent"]
        acted += p["triggered"]["customers"]
    assert acted > 0
    assert numbers(page.text, "data-total")["customers"] == acted
    assert "2026年11月17日" in page.text


def _dead_letters(site: Site, n: int) -> list[int]:
    """Dead letters made for real: queued by a real run, then failed the way the dispatcher
    fails a message after its last attempt."""
    with site.store.begin() as conn:
        ids = [
            r.id
            for r in conn.execute(
                select(outbox.c.id)
                .where(outbox.c.status == "pending")
                .order_by(outbox.c.id)
                .limit(n)
            )
        ]
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(
                status="failed", attempts=3, last_error="HTTP 400 (attempt 3)", claimed_until=None
            )
        )
    assert len(ids) == n
    return ids


def _status(site: Site, message_id: int) -> str:
    with site.store.connect() as conn:
        return str(
            conn.execute(select(outbox.c.status).where(outbox.c.id == message_id)).scalar_one()
        )


def test_a_dead_letter_is_retried_or_cancelled_with_the_csrf_token_only(site: Site) -> None:
    with site.store.connect() as conn:
        queued = conn.execute(select(outbox.c.id).where(outbox.c.status == "pending")).first()
    if queued is None:
        run_vip_inactive(site)
    first, second, third = _dead_letters(site, 3)
    with site.store.connect() as conn:
        phone = conn.execute(select(outbox.c.recipient).where(outbox.c.id == first)).scalar_one()

    with site.client("admin") as client:
        page = client.get("/operations")
        assert page.status_code == 200
        dead = row(page.text, "id", f"message-{first}")
        assert "HTTP 400 (attempt 3)" in dead and "重试 Retry" in dead and "取消 Cancel" in dead
        assert phone not in page.text  # the recipient is masked
        assert numbers(page.text, "data-total")["dead"] >= 3
        token = csrf_of(client, "/operations")

        # without the token: refused, and nothing changes
        refused = client.post(f"/operations/outbox/{first}/retry", headers={"HX-Request": "true"})
        assert refused.status_code == 403
        refused = client.post(f"/operations/outbox/{first}/cancel", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        assert _status(site, first) == "failed"

        # htmx: the row comes back, changed
        retried = client.post(
            f"/operations/outbox/{first}/retry",
            headers={"HX-Request": "true", "X-CSRF-Token": token},
        )
        assert retried.status_code == 200
        assert retried.text.lstrip().startswith(f'<tr id="message-{first}"')
        assert 'data-status="pending"' in retried.text and "重试 Retry" not in retried.text
        assert _status(site, first) == "pending"

        # a plain form: back to the page
        cancelled = client.post(f"/operations/outbox/{second}/cancel", data={"csrf_token": token})
        assert cancelled.status_code == 303
        assert cancelled.headers["location"].startswith("/operations")
        assert _status(site, second) == "cancelled"
        with site.store.connect() as conn:
            error = conn.execute(
                select(outbox.c.last_error).where(outbox.c.id == second)
            ).scalar_one()
        assert error.startswith("HTTP 400 (attempt 3)") and "cancelled by an operator" in error

        after = client.get("/operations")
        assert f'id="message-{first}"' not in after.text
        assert f'id="message-{second}"' not in after.text

    # a role without outbox.manage cannot, even with its own valid token
    with site.client("editor") as client:
        token = csrf_of(client, "/playbooks")
        denied = client.post(f"/operations/outbox/{third}/cancel", data={"csrf_token": token})
        assert denied.status_code == 403
    assert _status(site, third) == "failed"


def test_operations_shows_broken_files_slots_and_calendar_coverage(site: Site) -> None:
    broken = site.settings.playbooks_dir / "broken.yaml"
    broken.write_text(
        "id: broken-one\ntitle: x\ntrigger:\n  schedule: 'not a cron'\n", encoding="utf-8"
    )
    try:
        with site.client("admin") as client:
            page = client.get("/operations")
    finally:
        broken.unlink()
    assert page.status_code == 200
    problems = re.search(r'<ul class="problems" id="reload-errors">(.*?)</ul>', page.text, re.S)
    assert problems and "playbooks/broken.yaml:" in problems.group(1)
    assert re.search(r"playbooks/broken\.yaml:\d+:\d+", problems.group(1))
    assert "[PB" in problems.group(1)
    assert str(site.root) not in page.text  # paths as `validate` prints them
    assert 'id="slots"' in page.text and "vip-inactive-60d" in page.text
    assert "没有守护进程在运行" in page.text  # no daemon runs in this test
    from engine.core.workcalendar import library_years

    first, last = library_years()
    assert f"{first}–{last}年" in page.text
    assert "CN-2025.yaml" in page.text  # the shipped example file is listed
