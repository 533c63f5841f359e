"""The task list over real HTTP: who sees which tasks, closing one (with htmx and without),
what is refused, and showing a customer's real name and phone, which the audit log records.

The tasks are made the way the engine makes them: by running task playbooks on the demo
store (three shipped ones and a team-queue one written for the test); the manager and leader
accounts are then pointed at a manager who got tasks, and at that manager's branch."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from conftest import QUEUE, Work, branch_open_ids, open_ids
from sqlalchemy import select

from engine.core.masking import mask_phone
from engine.store.models import audit_log, customers, managers, tasks

CARD = re.compile(r'<article class="card task[^"]*" id="task-(\d+)"')


def cards(page: httpx.Response) -> set[int]:
    return {int(i) for i in CARD.findall(page.text)}


def csrf(client: httpx.Client) -> str:
    found = re.search(r'data-csrf="([^"]+)"', client.get("/tasks").text)
    assert found
    return found.group(1)


def task_row(site: Any, task_id: int) -> dict[str, Any]:
    with site.store.connect() as conn:
        return dict(conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().one())


def log_rows(site: Any) -> list[dict[str, Any]]:
    """The audit log's unmasking entries, oldest first."""
    with site.store.connect() as conn:
        query = (
            select(audit_log)
            .where(audit_log.c.action == "personal_data.unmask")
            .order_by(audit_log.c.id)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def test_a_manager_sees_their_own_tasks_and_no_one_elses(site: Any, work: Work) -> None:
    mine = open_ids(site, tasks.c.assignee_id == work.manager_id)
    others = open_ids(site, tasks.c.assignee_id == work.other_id)
    assert mine and others
    with site.client("manager") as client:
        page = client.get("/tasks", params={"due": "all"})
    assert page.status_code == 200
    assert cards(page) == mine
    assert not cards(page) & others
    # the masked customer, the playbook's title and a due date written for people
    assert "贵宾客户经理月度拜访" in page.text or "新客户开户第7天客户经理回访" in page.text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", page.text)
    assert 'name="outcome"' in page.text and "完成" in page.text


def test_the_due_tabs_filter(site: Any, work: Work) -> None:
    with site.client("manager") as client:
        every = cards(client.get("/tasks", params={"due": "all"}))
        overdue = client.get("/tasks", params={"due": "overdue"})
    # the demo's tasks were made on AS_OF, days before any day this suite runs: all late
    assert cards(overdue) == every
    assert overdue.text.count("已逾期 Overdue</span>") == len(every)


def test_a_leader_sees_the_whole_branch_with_assignees(site: Any, work: Work) -> None:
    expected = branch_open_ids(site, work.branch_id)
    with site.store.connect() as conn:
        name = conn.execute(select(managers.c.name).where(managers.c.id == work.other_id)).scalar()
    with site.client("leader") as client:
        page = client.get("/tasks", params={"due": "all"})
    assert page.status_code == 200
    shown = cards(page)
    assert shown == expected
    assert open_ids(site, tasks.c.assignee_id == work.manager_id) <= shown
    assert open_ids(site, tasks.c.assignee_id == work.other_id) <= shown
    assert f"{name}</span>" in page.text  # the assignee's name on the card
    assert len(shown) < len(open_ids(site))  # not the other branches'


def test_the_team_queue_lists_the_branchs_queue_tasks(site: Any, work: Work) -> None:
    t = tasks.c
    with site.store.connect() as conn:
        expected = set(
            conn.execute(
                select(t.id)
                .join(customers, customers.c.id == t.customer_id)
                .where(
                    t.queue == QUEUE, t.status == "open", customers.c.branch_id == work.branch_id
                )
            ).scalars()
        )
    assert expected and expected < open_ids(site, t.queue == QUEUE)
    with site.client("manager") as client:
        page = client.get("/tasks", params={"queue": QUEUE})
        listed = client.get("/tasks")
    assert cards(page) == expected
    assert "团队队列 " + QUEUE in listed.text  # the tab to reach it


def test_an_editor_may_not_open_the_task_list(site: Any, work: Work) -> None:
    with site.client("editor") as client:
        assert client.get("/tasks").status_code == 403
        assert client.get("/audit").status_code == 403


def test_closing_a_task_with_htmx_replaces_the_card(site: Any, work: Work) -> None:
    task_id = min(open_ids(site, tasks.c.assignee_id == work.manager_id))
    with site.client("manager") as client:
        token = csrf(client)
        done = client.post(
            f"/tasks/{task_id}/close",
            data={"outcome": "reached", "note": "客户约了下周二来网点"},
            headers={"HX-Request": "true", "X-CSRF-Token": token},
        )
        assert done.status_code == 200
        assert f'id="task-{task_id}"' in done.text and "已完成" in done.text
        assert "<html" not in done.text  # a fragment for the card, not a page
        assert task_id not in cards(client.get("/tasks", params={"due": "all"}))
    row = task_row(site, task_id)
    assert (row["status"], row["outcome"], row["note"]) == (
        "done",
        "reached",
        "客户约了下周二来网点",
    )


def test_closing_without_javascript_redirects_back(site: Any, work: Work) -> None:
    task_id = max(open_ids(site, tasks.c.assignee_id == work.manager_id))
    with site.client("manager") as client:
        token = csrf(client)
        done = client.post(
            f"/tasks/{task_id}/close",
            data={"outcome": "no_answer", "note": "", "due": "week", "csrf_token": token},
        )
    assert done.status_code == 303
    assert done.headers["location"] == "/tasks?due=week"
    row = task_row(site, task_id)
    assert (row["status"], row["outcome"], row["note"]) == ("done", "no_answer", None)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"outcome": "teleported"}, "请选择联系结果"),
        ({"outcome": "reached", "note": "长" * 501}, "500"),
    ],
)
def test_a_bad_close_is_a_located_message(
    site: Any, work: Work, data: dict[str, str], words: str
) -> None:
    task_id = min(open_ids(site, tasks.c.assignee_id == work.manager_id))
    with site.client("manager") as client:
        token = csrf(client)
        page = client.post(f"/tasks/{task_id}/close", data={**data, "csrf_token": token})
        fragment = client.post(
            f"/tasks/{task_id}/close",
            data=data,
            headers={"HX-Request": "true", "X-CSRF-Token": token},
        )
    assert page.status_code == 422
    assert words in page.text and f'id="task-{task_id}-error"' in page.text
    assert fragment.status_code == 200 and f'id="task-{task_id}-error"' in fragment.text
    assert task_row(site, task_id)["status"] == "open"


def test_closing_another_managers_task_is_refused(site: Any, work: Work) -> None:
    task_id = min(open_ids(site, tasks.c.assignee_id == work.other_id))
    before = task_row(site, task_id)
    with site.client("manager") as client:
        token = csrf(client)
        refused = client.post(
            f"/tasks/{task_id}/close", data={"outcome": "reached", "csrf_token": token}
        )
        reveal = client.post(f"/tasks/{task_id}/reveal", data={"csrf_token": token})
    assert refused.status_code == 403 and reveal.status_code == 403
    assert task_row(site, task_id) == before


def test_closing_without_the_csrf_token_is_refused(site: Any, work: Work) -> None:
    task_id = min(open_ids(site, tasks.c.assignee_id == work.manager_id))
    before = task_row(site, task_id)
    with site.client("manager") as client:
        refused = client.post(f"/tasks/{task_id}/close", data={"outcome": "reached"})
        forged = client.post(
            f"/tasks/{task_id}/close", data={"outcome": "reached", "csrf_token": "0" * 64}
        )
    assert refused.status_code == 403 and forged.status_code == 403
    assert task_row(site, task_id) == before


def test_a_leader_closes_a_branch_task(site: Any, work: Work) -> None:
    task_id = min(open_ids(site, tasks.c.assignee_id == work.other_id))
    with site.client("leader") as client:
        token = csrf(client)
        done = client.post(
            f"/tasks/{task_id}/close", data={"outcome": "visited", "csrf_token": token}
        )
    assert done.status_code == 303
    assert task_row(site, task_id)["status"] == "done"


def test_reveal_shows_one_customer_and_is_recorded(site: Any, work: Work) -> None:
    with site.client("manager") as client:
        page = client.get("/tasks", params={"due": "all"})
        shown = cards(page)
        with site.store.connect() as conn:
            listed = conn.execute(
                select(customers.c.id, customers.c.name, customers.c.phone)
                .join(tasks, tasks.c.customer_id == customers.c.id)
                .where(tasks.c.id.in_(shown))
            ).all()
        assert listed
        for _, name, phone in listed:  # nothing real before anyone asked
            assert phone not in page.text
            assert mask_phone(phone) in page.text
            assert f">{name}<" not in page.text
        task_id = min(shown)
        customer_id, name, phone = next(
            (c, n, p) for c, n, p in listed if c == task_row(site, task_id)["customer_id"]
        )
        before = len(log_rows(site))
        token = csrf(client)
        fragment = client.post(
            f"/tasks/{task_id}/reveal", headers={"HX-Request": "true", "X-CSRF-Token": token}
        )
    assert fragment.status_code == 200
    assert f'id="person-{task_id}"' in fragment.text
    assert name in fragment.text and f'href="tel:{phone}"' in fragment.text
    rows = log_rows(site)
    assert len(rows) == before + 1
    last = rows[-1]
    assert (last["actor"], last["subject"], last["customer_id"]) == (
        site.names["manager"],
        f"task:{task_id}",
        customer_id,
    )


def test_a_leader_may_not_unmask(site: Any, work: Work) -> None:
    task_id = min(open_ids(site, tasks.c.assignee_id == work.manager_id))
    before = len(log_rows(site))
    with site.client("leader") as client:
        token = csrf(client)
        page = client.get("/tasks", params={"due": "all"})
        refused = client.post(f"/tasks/{task_id}/reveal", data={"csrf_token": token})
    assert "/reveal" not in page.text
    assert refused.status_code == 403
    assert len(log_rows(site)) == before


def test_the_auditor_sees_who_looked_at_whom(site: Any, work: Work) -> None:
    task_id = max(open_ids(site, tasks.c.assignee_id == work.manager_id))
    with site.client("manager") as client:
        token = csrf(client)
        assert (
            client.post(f"/tasks/{task_id}/reveal", data={"csrf_token": token}).status_code == 200
        )
    customer_id = task_row(site, task_id)["customer_id"]
    with site.client("auditor") as client:
        page = client.get("/audit", params={"action": "personal_data"})
        assert client.get("/tasks").status_code == 403
    assert page.status_code == 200
    first = page.text.split("<tbody>", 1)[1].split("</tr>", 1)[0]  # newest first
    assert site.names["manager"] in first and customer_id in first and f"task:{task_id}" in first
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", first)


def test_the_auditor_reads_a_customers_history(site: Any, work: Work) -> None:
    task_id = min(open_ids(site, tasks.c.assignee_id == work.manager_id))
    customer_id = task_row(site, task_id)["customer_id"]
    with site.client("auditor") as client:
        page = client.get("/history", params={"customer": customer_id})
    assert page.status_code == 200
    assert 'id="history"' in page.text and "<strong>task</strong>" in page.text
    with site.store.connect() as conn:
        phone = conn.execute(
            select(customers.c.phone).where(customers.c.id == customer_id)
        ).scalar_one()
    assert phone not in page.text
