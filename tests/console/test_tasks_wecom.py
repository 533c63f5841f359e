"""企业微信 messages on the manager's task list: the text ready to copy (masked until the
manager asks to see the customer, which is recorded), a copy button wired by console.js (the
CSP allows no inline script), and closing it as sent or not sent; on a phone, in a real
headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import PHONE, browser, log_in, no_horizontal_scroll, shot, until
from conftest import PASSWORD, Site, csrf_of
from sqlalchemy import select
from support import AS_OF

from engine.console import accounts
from engine.core.dictionary import load_dictionary
from engine.execution.executor import Executor
from engine.execution.selection import decide
from engine.playbook.validation import Validator
from engine.store.models import tasks

TEMPLATE = "您好,我是您的客户经理。本周六网点有理财讲座,欢迎您来参加,回复我即可报名。\n"
PLAYBOOK = """\
id: wecom-lecture
title: 企业微信讲座邀约
trigger: {schedule: "0 9 * * *"}
audience:
  tier: [vip, private]
actions:
  - wecom: {template: lecture.wecom.j2, title: "讲座邀约 {{ customer.name }}", due_in: 2d}
limits:
  max_per_run: 40
"""


@pytest.fixture(scope="module")
def wecom_manager(site: Site) -> Iterator[str]:
    """Run a WeCom playbook into the site's store; the manager account works the tasks of the
    manager who got the most."""
    (site.root / "templates" / "lecture.wecom.j2").write_text(TEMPLATE, encoding="utf-8")
    (site.root / "playbooks" / "wecom_lecture.yaml").write_text(PLAYBOOK, encoding="utf-8")
    dictionary = load_dictionary(site.settings.dictionary_path)
    validator = Validator(site.settings, dictionary)
    found = validator.validate_paths([site.settings.playbooks_dir / "wecom_lecture.yaml"])
    assert not found.errors, [d.message for d in found.errors]
    executor = Executor(site.store, site.settings, dictionary, validator.renderer)
    decide(site.store, executor, found.playbooks, AS_OF, whole_day=True, dry_run=False, mask=False)
    with site.store.connect() as conn:
        owners = conn.execute(
            select(tasks.c.assignee_id).where(tasks.c.kind == "wecom", tasks.c.status == "open")
        ).scalars()
        counts: dict[str, int] = {}
        for owner in owners:
            counts[owner] = counts.get(owner, 0) + 1
    manager = max(counts, key=lambda m: counts[m])
    accounts.set_role(site.store, site.names["manager"], "manager", manager_id=manager)
    yield manager


def wecom_tasks(site: Site, manager: str) -> list[int]:
    with site.store.connect() as conn:
        rows = conn.execute(
            select(tasks.c.id).where(
                tasks.c.kind == "wecom", tasks.c.assignee_id == manager, tasks.c.status == "open"
            )
        )
        return [r.id for r in rows]


def test_the_task_list_shows_the_text_ready_to_copy(site: Site, wecom_manager: str) -> None:
    ids = wecom_tasks(site, wecom_manager)
    assert ids
    with site.client("manager") as client:
        page = client.get("/tasks?due=all")
    assert page.status_code == 200
    assert f'id="wecom-text-{ids[0]}"' in page.text
    assert TEMPLATE.strip() in page.text
    assert f'data-copy="wecom-text-{ids[0]}"' in page.text
    assert "<script>" not in page.text  # behaviour lives in console.js
    assert 'value="sent"' in page.text and 'value="not_sent"' in page.text


def test_a_wecom_task_closes_as_sent_and_not_with_a_call_outcome(
    site: Site, wecom_manager: str
) -> None:
    first, second = wecom_tasks(site, wecom_manager)[:2]
    with site.client("manager") as client:
        token = csrf_of(client, "/tasks?due=all")
        wrong = client.post(
            f"/tasks/{first}/close", data={"outcome": "reached", "csrf_token": token}
        )
        assert wrong.status_code == 422  # a WeCom message is sent or not, never "reached"
        done = client.post(f"/tasks/{first}/close", data={"outcome": "sent", "csrf_token": token})
        assert done.status_code == 303
        client.post(f"/tasks/{second}/close", data={"outcome": "not_sent", "csrf_token": token})
    with site.store.connect() as conn:
        closed = dict(
            conn.execute(
                select(tasks.c.id, tasks.c.outcome).where(tasks.c.id.in_([first, second]))
            ).all()
        )
    assert closed == {first: "sent", second: "not_sent"}


def test_a_manager_copies_a_wecom_message_on_a_phone(site: Site, wecom_manager: str) -> None:
    mine = wecom_tasks(site, wecom_manager)
    with browser() as chrome:
        context = chrome.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        origin = site.url.rstrip("/")
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        page = context.new_page()
        log_in(page, site.url, site.names["manager"], PASSWORD)
        page.goto(site.url + "tasks?due=all")
        page.wait_for_selector(".wecom-text")
        card = page.locator("article.task", has=page.locator(".wecom-text")).first
        card_id = card.get_attribute("id")
        assert card_id is not None and int(card_id.removeprefix("task-")) in mine
        text = card.locator(".wecom-text")
        assert text.inner_text().strip() == TEMPLATE.strip()
        button = card.locator("button[data-copy]")
        assert button.is_visible()
        card.scroll_into_view_if_needed()
        assert no_horizontal_scroll(page)
        shot(page, "tasks-wecom-phone")
        button.click()
        until(page, f"document.querySelector('#{card_id} button[data-copy]').textContent"
                    ".includes('已复制')")  # fmt: skip
        assert page.evaluate("navigator.clipboard.readText()").strip() == TEMPLATE.strip()
        shot(page, "tasks-wecom-phone-copied")
        card = page.locator(f"#{card_id}")
        card.locator("select[name=outcome]").select_option("sent")
        card.locator("form.close button[type=submit]").click()
        until(page, f"!document.querySelector('#{card_id} form.close')")
        context.close()
    with site.store.connect() as conn:
        outcome = conn.execute(
            select(tasks.c.outcome).where(tasks.c.id == int(card_id.removeprefix("task-")))
        ).scalar_one()
    assert outcome == "sent"
