"""The editor as a marketing editor uses it, in headless Chromium: log in, open a shipped
playbook, make a typo and see the located error with its suggestion, fix it, see the audience
estimate equal the CLI's dry-run, write a new playbook from scratch with completion and save
it, and render a template."""

from __future__ import annotations

import json
import re

from browser import DESKTOP, PHONE, browser, log_in, no_horizontal_scroll, shot, until
from conftest import PASSWORD, Site
from playwright.sync_api import Page
from support import cli

PLAYBOOK = "birthday_greeting.yaml"
DAY = "2026-11-24"


def validations(page: Page) -> int:
    return int(page.get_attribute("#editor", "data-validations") or 0)


def wait_for_validation(page: Page, after: int) -> list[dict[str, object]]:
    until(page, f"Number(document.querySelector('#editor').dataset.validations || 0) > {after}")
    return json.loads(page.get_attribute("#editor", "data-diagnostics") or "[]")


def put_cursor(page: Page, needle: str, offset: int) -> None:
    page.evaluate(
        """([needle, offset]) => {
            const view = window.careEditor.view;
            const at = view.state.doc.toString().indexOf(needle);
            if (at < 0) throw new Error('not in the document: ' + needle);
            view.dispatch({selection: {anchor: at + offset}});
            view.focus();
        }""",
        [needle, offset],
    )


def test_an_editor_fixes_a_typo_and_sees_the_dry_run_numbers(site: Site) -> None:
    with browser() as chrome:
        page = chrome.new_page(viewport=DESKTOP)
        log_in(page, site.url, site.names["editor"], PASSWORD)
        assert page.url.endswith("/playbooks")
        page.click(f"a[href='/playbooks/{PLAYBOOK}']")
        page.wait_for_selector(".cm-content")
        first = wait_for_validation(page, 0)
        assert first == []
        # the typo: audience → audiense, typed as a person types it
        seen = validations(page)
        put_cursor(page, "audience:", len("audien"))
        page.keyboard.press("Delete")
        page.keyboard.type("s")
        found = wait_for_validation(page, seen)
        typo = [d for d in found if d["code"] == "PB0101"]
        assert typo and "audience" in str(typo[0]["hint"]), found
        page.wait_for_selector(".cm-lint-marker-error")
        assert "错误" in page.inner_text("#status")
        shot(page, "editor-typo")
        # the fix
        seen = validations(page)
        put_cursor(page, "audiense:", len("audien"))
        page.keyboard.press("Delete")
        page.keyboard.type("c")
        assert wait_for_validation(page, seen) == []
        page.wait_for_selector(".cm-lint-marker-error", state="detached")
        # the audience estimate for a day, against the CLI's dry-run of the same day
        page.fill("input[name=day]", DAY)
        page.click("#estimate-button")
        page.wait_for_selector("#funnel")
        shown = {
            cell.get_attribute("data-key"): int(cell.inner_text().replace(",", ""))
            for cell in page.query_selector_all("#funnel td[data-key]")
        }
        shot(page, "editor-estimate")
    result = cli(
        "dry-run",
        "--db",
        str(site.store.url),
        "--playbook",
        "birthday-greeting",
        "--as-of",
        DAY,
        "--format",
        "json",
        cwd=site.root,
    )
    counts = json.loads(result.stdout)["playbooks"][0]["counts"]
    assert shown["matched"] == counts["matched"] > 0
    assert shown["acted"] == counts["customers_acted"]
    for kind, n in counts["actions"].items():
        assert shown[f"action-{kind}"] == n


NEW_HEAD = """\
id: vip-thanks
title: 贵宾客户感谢短信
owner: 零售营销部
category: service
"""


def test_a_new_playbook_written_from_scratch_with_completion_is_saved(site: Site) -> None:
    with browser() as chrome:
        page = chrome.new_page(viewport=DESKTOP)
        log_in(page, site.url, site.names["editor"], PASSWORD)
        page.click("a[href='/playbooks/new']")
        page.wait_for_selector(".cm-content")
        wait_for_validation(page, 0)
        page.fill("input[name=file]", "vip-thanks")
        page.evaluate("t => window.careEditor.setText(t)", NEW_HEAD)
        put_cursor(page, "category: service\n", len("category: service\n"))
        page.keyboard.type("tri")
        page.keyboard.press("Control+Space")
        page.wait_for_selector(".cm-tooltip-autocomplete")
        assert "trigger" in page.inner_text(".cm-tooltip-autocomplete")
        shot(page, "editor-completion")
        page.keyboard.press("Enter")
        text = page.evaluate("window.careEditor.getText()")
        assert re.search(r"^trigger", text, re.M), text
        seen = validations(page)
        # the rest, as the completion left the line (a key, perhaps with its colon)
        rest = (
            'trigger:\n  schedule: "0 9 * * *"\naudience:\n  tier: vip\n'
            "actions:\n  - sms:\n      template: birthday_greeting.sms.j2\n"
        )
        page.evaluate("t => window.careEditor.setText(t)", NEW_HEAD + rest)
        assert wait_for_validation(page, seen) == []
        page.click("#estimate-button")
        page.wait_for_selector("#funnel")
        page.click("#save-button")
        page.wait_for_selector("#saved-note")
        shot(page, "editor-new-saved")
    saved = site.root / "playbooks" / "vip-thanks.yaml"
    assert saved.read_text(encoding="utf-8") == NEW_HEAD + rest
    assert cli("validate", str(saved), cwd=site.root).returncode == 0
    saved.unlink()


def test_a_template_renders_live_and_the_editor_fits_a_phone(site: Site) -> None:
    with browser() as chrome:
        page = chrome.new_page(viewport=PHONE)
        log_in(page, site.url, site.names["editor"], PASSWORD)
        page.goto(site.url + "templates/birthday_greeting.sms.j2")
        page.wait_for_selector("#template-editor .cm-content")
        page.wait_for_selector("#segments")
        before = page.inner_text("#rendered-text")
        assert before.startswith("【示例银行】")
        page.evaluate(
            "() => { const v = window.careEditor.view;"
            " v.dispatch({selection: {anchor: v.state.doc.length}}); v.focus(); }"
        )
        page.keyboard.type("祝您周末愉快")
        until(
            page,
            "document.querySelector('#rendered-text') && "
            "document.querySelector('#rendered-text').innerText.includes('祝您周末愉快')",
        )
        assert no_horizontal_scroll(page)
        shot(page, "template-phone")
        page.goto(site.url + f"playbooks/{PLAYBOOK}")
        page.wait_for_selector(".cm-content")
        shot(page, "editor-phone")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth + 1).map(e => e.tagName + '.' + e.className).slice(0, 8)"
        )
        assert no_horizontal_scroll(page), wide
