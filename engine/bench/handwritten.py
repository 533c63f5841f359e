"""The audiences of the shipped playbooks written by hand, as a DBA would for the demo store:
joins for the lookups, literal values, one ``ORDER BY``. Section 2 runs them through the raw
driver beside the compiled queries and checks both return the same customers.

The select list is the same data the engine's query selects (the fields the playbook's
actions and templates read), in the same order, so the two differ only in shape and in the
layers around them. A playbook without an
entry here is reported as having no hand-written baseline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

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


WHERE: dict[str, Callable[[Clock], str]] = {
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
