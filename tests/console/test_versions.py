"""Approval in the console over real HTTP and in Chromium: an editor submits the playbook as
saved; an approver reads the diff and the estimate, approves, publishes; a rejection needs a
reason; an editor cannot press an approver's buttons; each step is in the audit log; and the
pages fit a phone."""

from __future__ import annotations

import re

from browser import PHONE, browser, log_in, no_horizontal_scroll, shot
from conftest import PASSWORD, Site, csrf_of

from engine.store import audit

PLAYBOOK = "vip-inactive-60d"
FILE = "vip_inactive_60d.yaml"


def _post(site: Site, role: str, path: str, **form: str) -> tuple[int, str, str]:
    """(status, location, page text) of one form post as ``role``, following nothing."""
    with site.client(role) as client:
        token = csrf_of(client, "/versions")
        answer = client.post(path, data={"csrf_token": token, **form})
        body = answer.text
        if answer.status_code == 303:
            body = client.get(answer.headers["location"]).text
        return answer.status_code, answer.headers.get("location", ""), body


def test_submit_approve_publish_and_the_rules_around_them(site: Site) -> None:
    with site.client("editor") as editor:
        page = editor.get(f"/playbooks/{FILE}")
        assert page.status_code == 200 and f'action="/versions/{PLAYBOOK}/submit"' in page.text
    status, where, page = _post(site, "editor", f"/versions/{PLAYBOOK}/submit")
    assert status == 303 and where.startswith(f"/versions/{PLAYBOOK}/1"), page[:300]
    assert "待审批 submitted" in page and 'id="estimate"' in page
    audience = re.search(r'id="estimate">.*?<strong>([\d,]+)</strong>', page, re.S)
    assert audience and int(audience.group(1).replace(",", "")) > 0
    assert 'id="approve"' not in page  # an editor sees no approver's buttons …
    forbidden, _, _ = _post(site, "editor", f"/versions/{PLAYBOOK}/1/approve")
    assert forbidden == 403  # … and cannot press them
    # a rejection needs a reason: refused, nothing changed
    refused, _, text = _post(site, "approver", f"/versions/{PLAYBOOK}/1/reject", comment="")
    assert refused == 409 and "未能执行 Refused" in text
    with site.client("approver") as approver:
        shown = approver.get(f"/versions/{PLAYBOOK}/1").text
    assert "待审批 submitted" in shown and 'id="diff"' in shown and "+id: vip-inactive-60d" in shown
    status, _, page = _post(site, "approver", f"/versions/{PLAYBOOK}/1/approve", comment="同意")
    assert status == 303 and "已审批 approved" in page and 'id="publish"' in page
    status, _, page = _post(site, "approver", f"/versions/{PLAYBOOK}/1/publish")
    assert status == 303 and "运行中 live" in page and 'id="toggle"' in page
    actions = [e["action"] for e in audit.entries(site.store, action="playbook.")]
    for step in ("playbook.submitted", "playbook.approved", "playbook.published"):
        assert step in actions, actions
    assert audit.verify(site.store).intact
    with site.client("auditor") as auditor:
        listing = auditor.get("/versions").text
        assert f"/versions/{PLAYBOOK}/1" in listing and "运行中 live" in listing
        assert 'id="toggle"' not in auditor.get(f"/versions/{PLAYBOOK}/1").text  # reads only


def test_the_version_page_fits_a_phone(site: Site) -> None:
    status, where, _ = _post(site, "editor", "/versions/birthday-greeting/submit")
    assert status == 303
    with browser() as chrome:
        phone = chrome.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        log_in(phone, site.url, site.names["approver"], PASSWORD)
        phone.goto(site.url + where.lstrip("/").split("?")[0])
        phone.wait_for_selector("#summary")
        assert "待审批 submitted" in phone.inner_text("#summary")
        assert phone.locator("#approve").is_visible()
        assert no_horizontal_scroll(phone)
        shot(phone, "version-approver-phone")
        phone.goto(site.url + "versions")
        phone.wait_for_selector("#waiting")
        assert no_horizontal_scroll(phone)
        shot(phone, "versions-approver-phone")
