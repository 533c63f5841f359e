"""Roles and what each may do. Least privilege: a role holds only the permissions its people
need, and every route names the one permission it requires (``routes.ROUTES``)."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    PLAYBOOKS_VIEW = "playbooks.view"  # read playbooks and templates, validate, diff
    PLAYBOOKS_EDIT = "playbooks.edit"  # save a playbook or template file
    PLAYBOOKS_PREVIEW = "playbooks.preview"  # audience estimate, sample texts, explain
    TASKS_OWN = "tasks.own"  # a manager's own tasks
    TASKS_BRANCH = "tasks.branch"  # every task of the leader's branch
    REPORTS_VIEW = "reports.view"  # the morning preview and the effect report
    ALL_BRANCHES = "branches.all"  # every branch's numbers; without it, one's own branch only
    OPERATIONS_VIEW = "operations.view"  # daemons, slots, broken files, outbox, events
    OUTBOX_MANAGE = "outbox.manage"  # retry or cancel a dead letter
    USERS_MANAGE = "users.manage"  # the accounts page
    PERSONAL_UNMASK = "personal.unmask"  # show one customer's name and phone (recorded)
    HISTORY_VIEW = "history.view"  # one customer's contact history (masked)
    AUDIT_VIEW = "audit.view"  # the audit log: who did what, who saw whose personal data
    VERSIONS_VIEW = "versions.view"  # playbook versions, their diffs, estimates and approvals
    VERSIONS_SUBMIT = "versions.submit"  # submit a saved playbook for approval
    # approve or reject, publish, pause, resume, roll back; config/governance.yaml decides
    # which of these people may approve which category, and nobody approves their own
    VERSIONS_REVIEW = "versions.review"


P = Permission

GRANTS: dict[str, frozenset[Permission]] = {
    # 营销/零售部: writes playbooks and templates, sees their audiences (masked)
    "editor": frozenset(
        {
            P.PLAYBOOKS_VIEW,
            P.PLAYBOOKS_EDIT,
            P.PLAYBOOKS_PREVIEW,
            P.REPORTS_VIEW,
            P.ALL_BRANCHES,
            P.VERSIONS_VIEW,
            P.VERSIONS_SUBMIT,
        }
    ),
    # 营销管理/消保审查: reads and previews what editors wrote; never edits it
    "approver": frozenset(
        {
            P.PLAYBOOKS_VIEW,
            P.PLAYBOOKS_PREVIEW,
            P.REPORTS_VIEW,
            P.ALL_BRANCHES,
            P.VERSIONS_VIEW,
            P.VERSIONS_REVIEW,
        }
    ),
    # 客户经理: their own tasks; calling a customer needs the real phone, shown on request
    "manager": frozenset({P.TASKS_OWN, P.PERSONAL_UNMASK}),
    # 网点负责人: the branch's tasks and the branch's morning preview
    # (and approves service playbooks where config/governance.yaml says so)
    "leader": frozenset({P.TASKS_BRANCH, P.REPORTS_VIEW, P.VERSIONS_VIEW, P.VERSIONS_REVIEW}),
    # 审计/合规: reads everything that was decided, and who looked at whom
    "auditor": frozenset(
        {
            P.PLAYBOOKS_VIEW,
            P.REPORTS_VIEW,
            P.ALL_BRANCHES,
            P.AUDIT_VIEW,
            P.HISTORY_VIEW,
            P.VERSIONS_VIEW,
        }
    ),
    # 运维/IT: keeps the engine running; no customer data beyond counts
    "admin": frozenset(
        {P.PLAYBOOKS_VIEW, P.OPERATIONS_VIEW, P.OUTBOX_MANAGE, P.USERS_MANAGE, P.AUDIT_VIEW}
    ),
}
ROLES: tuple[str, ...] = tuple(GRANTS)

ROLE_LABELS = {
    "editor": "营销编辑",
    "approver": "审批人",
    "manager": "客户经理",
    "leader": "网点负责人",
    "auditor": "审计",
    "admin": "运维管理员",
}


def allows(role: str, permission: Permission) -> bool:
    return permission in GRANTS.get(role, frozenset())
