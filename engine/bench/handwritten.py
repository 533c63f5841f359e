"""The audiences of the shipped playbooks written by hand, as a DBA would for the demo store:
joins for the lookups, literal values, one ``ORDER BY``. Section 2 runs them through the raw
driver beside the compiled queries and checks both return the same customers.

The select list is the same data (every scalar field of the data dictionary) in the same
order, so the two differ only in shape and in the layers around them. A playbook without an
entry here is reported as having no hand-written baseline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from engine.conditions.clock import Clock

FIELDS = (
    "customer_id",
    "name",
    "gender",
    "birth_date",
    "birthday_calendar",
    "phone",
    "email",
    "branch_id",
    "branch_name",
    "manager_id",
    "manager_name",
    "manager_phone",
    "senior_manager_id",
    "branch_leader_id",
    "tier",
    "aum",
    "avg_daily_deposit",
    "risk_level",
    "occupation",
    "opened_on",
    "last_active_at",
    "lifecycle_stage",
    "relationship_level",
    "preferred_channel",
    "holdings_total",
)
"""The scalar fields the select list below returns, in order (checked against the
dictionary before use)."""

SELECT = """SELECT c.id AS _key, c.id, c.name, c.gender, c.birth_date, c.birthday_calendar,
  c.phone, c.email, c.branch_id, b.name, c.manager_id, m.name, m.phone, sm.id, bl.id, c.tier,
  c.aum, c.avg_daily_deposit, c.risk_level, c.occupation, c.opened_on, c.last_active_at,
  c.lifecycle_stage, c.relationship_level, c.preferred_channel,
  (SELECT COALESCE(SUM(h.amount), 0) FROM holdings h WHERE h.customer_id = c.id)
FROM customers c
LEFT JOIN branches b ON b.id = c.branch_id
LEFT JOIN managers m ON m.id = c.manager_id
LEFT JOIN (SELECT branch_id, MIN(id) AS id FROM managers WHERE role = 'senior_manager'
           GROUP BY branch_id) sm ON sm.branch_id = c.branch_id
LEFT JOIN (SELECT branch_id, MIN(id) AS id FROM managers WHERE role = 'branch_leader'
           GROUP BY branch_id) bl ON bl.branch_id = c.branch_id
"""


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


WHERE: dict[str, Callable[[Clock], str]] = {
    "vip-inactive-60d": _vip_inactive,
    "care-survey-email": _care_survey,
    "large-withdrawal-alert": _gold_and_up,
    "redemption-not-reinvested": _gold_and_up,
}


def query(playbook_id: str, clock: Clock) -> str | None:
    where = WHERE.get(playbook_id)
    return None if where is None else f"{SELECT}{where(clock)}\nORDER BY c.id"
