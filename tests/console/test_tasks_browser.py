"""A relationship manager on a phone (390×844, headless Chromium): the task list, showing a
customer's phone to call them (recorded), closing a task with an outcome and a note, and
seeing it gone from the list."""

from __future__ import annotations

from browser import PHONE, browser, log_in, no_horizontal_scroll, shot, until
from conftest import PASSWORD, Site, Work, open_ids
from sqlalchemy import select

from engine.store.models import audit_log, tasks


def test_a_manager_closes_a_task_on_a_phone(site: Site, work: Work) -> None:
    mine = open_ids(site, tasks.c.assignee_id == work.manager_id)
    assert mine
    with browser() as chrome:
        page = chrome.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        log_in(page, site.url, site.names["manager"], PASSWORD)
        page.goto(site.url + "tasks?due=all")
        page.wait_for_selector("article.task")
        assert no_horizontal_scroll(page)
        shot(page, "tasks-phone")
        first = page.query_selector("article.task")
        assert first is not None
        card_id = first.get_attribute("id")
        assert card_id is not None
        task_id = int(card_id.removeprefix("task-"))
        assert task_id in mine
        reveal = first.query_selector("button:has-text('显示')")
        if reveal is not None:
            reveal.click()
            until(page, f"!!document.querySelector('#{card_id} a[href^=\"tel:\"]')")
            page.locator(f"#{card_id}").scroll_into_view_if_needed()
            shot(page, "tasks-phone-revealed")
        card = page.locator(f"#{card_id}")
        card.locator("select[name=outcome]").select_option("reached")
        card.locator("textarea[name=note]").fill("客户已接听,下周到网点")
        card.locator("button[type=submit]").click()
        until(page, f"!document.querySelector('#{card_id} form.close')")
        shot(page, "tasks-phone-closed")
        page.goto(site.url + "tasks?due=all")
        page.wait_for_selector("main")
        assert page.query_selector(f"#{card_id}") is None
    with site.store.connect() as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().one()
        unmasked = conn.execute(
            select(audit_log).where(
                audit_log.c.action == "personal_data.unmask",
                audit_log.c.subject == f"task:{task_id}",
            )
        ).all()
    assert row["status"] == "done" and row["outcome"] == "reached"
    assert row["note"] == "客户已接听,下周到网点"
    assert len(unmasked) == (1 if reveal is not None else 0)
