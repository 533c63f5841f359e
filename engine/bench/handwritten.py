"""The audiences of the shipped playbooks written by hand, as a DBA would for the demo store:
joins for the lookups, literal values, one ``ORDER BY``. Section 2 runs them through the raw
driver beside the compiled queries and checks both return the same customers.

The select list is the same data the engine's query selects (the fields the playbook's
actions and templates read), in the same order, so the two differ only in shape and in the
layers around them. Every shipped playbook has an entry (tests/bench/test_handwritten.py
checks each returns the engine's customers on both backends); one without an entry is
reported as having no hand-written baseline.

What the engine decides in Python before the query (is today a workday, the last workday
before a festival, which birth dates have a lunar anniversary today) is decided here the
same way and written into the SQL as literals, as a DBA would paste the day's values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from engine.core import calendar as cal
from engine.core.clock import Clock

SELECTED = {
    "customer_id": "c.id",
    "name": "c.name",
    "gender": "c.gender",
    "birth_date": "c.birth_date",
    "birthday_calendar": "c.birthday_calendar",
    "phone": "c.phone",
    "email": "c.email",
    "branch_id": "c.branch_id",
    "branch_name": "b.name",
    "manager_id": "c.manager_id",
    "manager_name": "m.name",
    "manager_phone": "m.phone",
    "senior_manager_id": "sm.id",
    "branch_leader_id": "bl.id",
    "tier": "c.tier",
    "aum": "c.aum",
    "avg_daily_deposit": "c.avg_daily_deposit",
    "risk_level": "c.risk_level",
    "occupation": "c.occupation",
    "opened_on": "c.opened_on",
    "last_active_at": "c.last_active_at",
    "lifecycle_stage": "c.lifecycle_stage",
    "relationship_level": "c.relationship_level",
    "preferred_channel": "c.preferred_channel",
    "holdings_total": (
        "(SELECT COALESCE(SUM(h.amount), 0) FROM holdings h WHERE h.customer_id = c.id)"
    ),
}
"""Each scalar field of the demo dictionary as a DBA would select it: the lookups as joins."""

JOINS = {
    "b": "LEFT JOIN branches b ON b.id = c.branch_id",
    "m": "LEFT JOIN managers m ON m.id = c.manager_id",
    "sm": """LEFT JOIN (SELECT branch_id, MIN(id) AS id FROM managers WHERE role = 'senior_manager'
           GROUP BY branch_id) sm ON sm.branch_id = c.branch_id""",
    "bl": """LEFT JOIN (SELECT branch_id, MIN(id) AS id FROM managers WHERE role = 'branch_leader'
           GROUP BY branch_id) bl ON bl.branch_id = c.branch_id""",
}


def select(fields: Sequence[str]) -> str | None:
    """SELECT … FROM with the joins ``fields`` need, in their order; None for a field this
    module has no hand-written form of (another deployment's dictionary)."""
    if any(f not in SELECTED for f in fields):
        return None
    exprs = [SELECTED[f] for f in fields]
    joins = [j for alias, j in JOINS.items() if any(e.startswith(f"{alias}.") for e in exprs)]
    head = ", ".join(["c.id AS _key", *exprs])
    return f"SELECT {head}\nFROM customers c\n" + "".join(j + "\n" for j in joins)


def _stamp(moment: dt.datetime) -> str:
    # the text form timestamps have in the demo store on SQLite; PostgreSQL parses it too
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _vip_inactive(clock: Clock) -> str:
    cutoff = clock.now.replace(tzinfo=None) - dt.timedelta(days=60)
    return f"""WHERE c.tier IN ('vip', 'private')
  AND c.last_active_at < '{_stamp(cutoff)}'
  AND NOT EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = '已流失')"""


def _care_survey(_clock: Clock) -> str:
    return """WHERE c.tier IN ('vip', 'private') AND c.preferred_channel = 'email'
  AND c.email IS NOT NULL"""


def _gold_and_up(_clock: Clock) -> str:
    return "WHERE c.tier IN ('gold', 'vip', 'private')"


def _new_customer_call(clock: Clock) -> str:
    today = clock.today
    older = (today - dt.timedelta(days=6)).isoformat()
    since = (today - dt.timedelta(days=20)).isoformat()
    return (
        f"WHERE c.opened_on < '{older}' AND c.opened_on >= '{since}' AND c.opened_on <= '{today}'"
    )


def _dormant_winback(_clock: Clock) -> str:
    return """WHERE c.lifecycle_stage IN ('dormant', 'churned') AND c.aum >= 50000
  AND (c.tier = 'gold'
       OR EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = '已流失'))"""


def _tier_upgrade(_clock: Clock) -> str:
    return """WHERE ((c.tier = 'mass' AND c.aum >= 45000 AND c.aum < 50000)
    OR (c.tier = 'gold' AND c.aum >= 450000 AND c.aum < 500000)
    OR (c.tier = 'vip' AND c.aum >= 5400000 AND c.aum < 6000000))
  AND (c.lifecycle_stage IS NULL OR c.lifecycle_stage NOT IN ('dormant', 'churned'))"""


def _churn_warning(clock: Clock) -> str:
    now = clock.now.replace(tzinfo=None)
    days = {n: _stamp(now - dt.timedelta(days=n)) for n in (30, 60, 90)}
    return f"""WHERE c.tier IN ('mass', 'gold')
  AND ((c.lifecycle_stage = 'new' AND c.last_active_at < '{days[30]}')
    OR (c.lifecycle_stage = 'growth' AND c.last_active_at < '{days[60]}')
    OR (c.lifecycle_stage = 'mature' AND c.last_active_at < '{days[90]}'))
  AND NOT EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = '已流失')"""


def _wealth_maturity(clock: Clock) -> str:
    today = clock.today
    week = today + dt.timedelta(days=7)
    # the maturity index first, as a DBA would: the few holdings maturing this week
    return f"""WHERE c.id IN (SELECT h.customer_id FROM holdings h
  WHERE h.maturity_date >= '{today}' AND h.maturity_date <= '{week}'
    AND h.product_type = 'wealth' AND h.amount >= 50000)"""


NOTHING = "WHERE 1 = 0"
_REACHED = "('reached', 'scheduled')"
_LOST = "NOT EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = '已流失')"


def _solar_days(target: dt.date, every: int | None = None) -> list[dt.date]:
    """Every date (from 1900) whose solar anniversary is ``target``: a literal list the
    date index can search, rather than taking each row's date apart."""
    found = []
    for year in range(1900, target.year):
        if every is not None and (target.year - year) % every:
            continue
        for month, day in cal.solar_month_days(target):
            if month == 2 and day == 29 and not cal.is_leap_year(year):
                continue
            found.append(dt.date(year, month, day))
    return found


def _in(column: str, days: Sequence[dt.date]) -> str:
    if not days:
        return "1 = 0"
    return f"{column} IN (" + ", ".join(f"'{d.isoformat()}'" for d in days) + ")"


def _complaint_critical(clock: Clock) -> str:
    return f"""WHERE c.id IN (SELECT p.customer_id FROM complaints p
  WHERE (p.severity IN ('high', 'critical') OR p.category = 'fraud')
    AND p.due_at < '{_stamp(clock.now.replace(tzinfo=None))}' AND p.resolved_at IS NULL)"""


def _complaint_escalation(clock: Clock) -> str:
    return f"""WHERE c.id IN (SELECT p.customer_id FROM complaints p
  WHERE (p.category IS NULL OR p.category <> 'fraud') AND p.severity IN ('low', 'medium')
    AND p.due_at < '{_stamp(clock.now.replace(tzinfo=None))}' AND p.resolved_at IS NULL)"""


def _aum_drop(clock: Clock) -> str:
    if not clock.calendar.is_workday(clock.today):
        return NOTHING
    cutoff = clock.today - dt.timedelta(days=30)
    # the latest snapshot on or before the cut-off, joined once per customer
    return f"""JOIN aum_snapshots s ON s.customer_id = c.id AND s.month = (
  SELECT MAX(s2.month) FROM aum_snapshots s2
  WHERE s2.customer_id = c.id AND s2.month <= '{cutoff}')
WHERE c.aum >= 0 AND s.aum > 0
  AND (c.aum - s.aum) * 100 <= -30 * s.aum AND c.aum - s.aum <= -100000"""


def _new_customer_welcome(clock: Clock) -> str:
    today = clock.today
    return f"WHERE c.opened_on >= '{today - dt.timedelta(days=1)}' AND c.opened_on <= '{today}'"


def _birthday(clock: Clock) -> str:
    lunar = cal.lunar_anniversary_births(clock.today, cal.YearsFilter())
    solar = _solar_days(clock.today)
    return f"""WHERE (c.birthday_calendar = 'lunar' AND {_in("c.birth_date", lunar)})
   OR ((c.birthday_calendar IS NULL OR c.birthday_calendar <> 'lunar')
       AND {_in("c.birth_date", solar)})"""


def _festival(name: str) -> Callable[[Clock], str]:
    festival = cal.find_festival(name)
    assert festival is not None

    def where(clock: Clock) -> str:
        upcoming = festival.date.next_after(clock.today)
        if upcoming is None or clock.calendar.last_workday_before(upcoming) != clock.today:
            return NOTHING
        return "WHERE c.tier IN ('gold', 'vip', 'private')"

    return where


def _anniversary_gift(clock: Clock) -> str:
    target = clock.today + dt.timedelta(days=3)
    days = _in("c.opened_on", _solar_days(target, every=5))
    return f"WHERE c.tier IN ('vip', 'private') AND {days}"


def _anniversary(clock: Clock) -> str:
    days = _in("c.opened_on", _solar_days(clock.today))
    return f"""WHERE {days}
  AND (c.lifecycle_stage IS NULL OR c.lifecycle_stage <> 'churned')"""


def _dormant_notice(clock: Clock) -> str:
    now = clock.now.replace(tzinfo=None)
    older, since = _stamp(now - dt.timedelta(days=335)), _stamp(now - dt.timedelta(days=365))
    return f"""WHERE c.last_active_at < '{older}' AND c.last_active_at >= '{since}'
  AND c.last_active_at <= '{_stamp(now)}' AND c.aum > 0"""


def _vip_visit(role: str, days: int) -> Callable[[Clock], str]:
    def where(clock: Clock) -> str:
        if not clock.calendar.is_workday(clock.today):
            return NOTHING
        now = clock.now.replace(tzinfo=None)
        since = _stamp(now - dt.timedelta(days=days))
        return f"""WHERE c.tier IN ('vip', 'private')
  AND NOT EXISTS (SELECT 1 FROM contacts ct JOIN managers cm ON cm.id = ct.manager_id
    WHERE ct.customer_id = c.id AND cm.role = '{role}' AND ct.outcome IN {_REACHED}
      AND ct.contacted_at >= '{since}' AND ct.contacted_at <= '{_stamp(now)}')
  AND {_LOST}"""

    return where


def _service_survey(clock: Clock) -> str:
    now = clock.now.replace(tzinfo=None)
    since, until = _stamp(now - dt.timedelta(hours=24)), _stamp(now)
    return f"""WHERE (c.id IN (SELECT ct.customer_id FROM contacts ct
      WHERE ct.channel IN ('phone', 'visit') AND ct.outcome = 'reached'
        AND ct.contacted_at >= '{since}' AND ct.contacted_at <= '{until}')
    OR c.id IN (SELECT p.customer_id FROM complaints p
      WHERE p.resolved_at >= '{since}' AND p.resolved_at <= '{until}'))
  AND NOT EXISTS (SELECT 1 FROM complaints p WHERE p.customer_id = c.id
    AND p.resolved_at IS NULL)"""


def _everyone(_clock: Clock) -> str:
    return ""


WHERE: dict[str, Callable[[Clock], str]] = {
    "complaint-overdue-critical": _complaint_critical,
    "complaint-overdue-escalation": _complaint_escalation,
    "aum-drop-alert": _aum_drop,
    "new-customer-welcome": _new_customer_welcome,
    "birthday-greeting": _birthday,
    "festival-mid-autumn-greeting": _festival("中秋"),
    "festival-new-year-greeting": _festival("元旦"),
    "festival-spring-greeting": _festival("春节"),
    "account-anniversary-gift": _anniversary_gift,
    "account-anniversary": _anniversary,
    "dormant-account-notice": _dormant_notice,
    "vip-visit-leader-180d": _vip_visit("branch_leader", 180),
    "vip-visit-manager-30d": _vip_visit("manager", 30),
    "vip-visit-senior-90d": _vip_visit("senior_manager", 90),
    "service-survey-sms": _service_survey,
    "referral-thank-you": _everyone,
    "new-customer-call-7d": _new_customer_call,
    "dormant-winback-call": _dormant_winback,
    "tier-upgrade-opportunity": _tier_upgrade,
    "lifecycle-churn-warning": _churn_warning,
    "wealth-maturity-call": _wealth_maturity,
    "vip-inactive-60d": _vip_inactive,
    "care-survey-email": _care_survey,
    "large-withdrawal-alert": _gold_and_up,
    "redemption-not-reinvested": _gold_and_up,
}


def query(playbook_id: str, clock: Clock, fields: Sequence[str]) -> str | None:
    where = WHERE.get(playbook_id)
    head = select(fields)
    return None if where is None or head is None else f"{head}{where(clock)}\nORDER BY c.id"
