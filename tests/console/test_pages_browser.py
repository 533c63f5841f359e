"""The report pages as people read them, in headless Chromium: the branch leader's morning
preview on a phone, the effect report, and the operator's operations page on a desktop.
Nothing wider than the screen; the screenshots are kept for people to look at."""

from __future__ import annotations

from browser import DESKTOP, PHONE, browser, log_in, no_horizontal_scroll, shot
from conftest import PASSWORD, Site


def site_calendar_warnings() -> list[str]:
    """What `status` warns about the shipped calendar today (a count that depends on the
    date: from 1 November of the last official year there is one)."""
    import datetime as dt

    from support import SETTINGS

    from engine.reports.calendar import coverage, load

    today = dt.datetime.now(SETTINGS.timezone).date()
    warnings: list[str] = coverage(*load(SETTINGS.calendar_dir), today)["warnings"]
    return warnings


def test_the_leaders_preview_fits_a_phone_and_the_operations_page_a_desktop(site: Site) -> None:
    with browser() as chrome:
        phone = chrome.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        log_in(phone, site.url, site.names["leader"], PASSWORD)
        phone.goto(site.url + "preview?day=2026-11-23")
        phone.wait_for_selector("main table")
        text = phone.inner_text("main")
        assert "2026年11月23日" in text
        assert no_horizontal_scroll(phone)
        shot(phone, "preview-leader-phone")
        phone.goto(site.url + "report")
        phone.wait_for_selector("main h1")
        assert no_horizontal_scroll(phone)
        shot(phone, "report-phone")

        desk = chrome.new_page(viewport=DESKTOP)
        log_in(desk, site.url, site.names["admin"], PASSWORD)
        desk.goto(site.url + "operations")
        desk.wait_for_selector("main h1")
        assert no_horizontal_scroll(desk)
        assert "日历" in desk.inner_text("main")
        shot(desk, "operations-desktop")
        desk.locator("#calendar").scroll_into_view_if_needed()
        calendar = desk.inner_text("#calendar")
        assert "CN-2025.yaml" in calendar and "官方节假日安排至" in calendar
        warned = desk.locator(".calendar-warning").count()
        assert warned == len(site_calendar_warnings())  # the same warnings as `status`
        shot(desk, "operations-calendar-desktop")
        desk.goto(site.url + "accounts")
        desk.wait_for_selector("#accounts")
        shot(desk, "accounts-desktop")
