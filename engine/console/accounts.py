"""Local console accounts: argon2id password hashes in the store, one role each.

This is the seam for a directory (OIDC, LDAP): :func:`authenticate` is the only place that
checks a password. A directory-backed login would replace it and map the directory's groups
onto :data:`roles.ROLES`; everything after login (sessions, permissions, masking) stays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.console.roles import ROLES
from engine.core.clock import utc_now
from engine.core.errors import UsageError
from engine.store import audit
from engine.store.models import CONSOLE_TABLES, console_accounts, managers

MIN_PASSWORD = 10
"""Characters a password needs at least; length beats composition rules (NIST SP 800-63B)."""

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the account does not exist, so a wrong name costs as long as a
# wrong password and the time taken does not tell which names exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    manager_id: str | None
    branch_id: str | None
    disabled: bool
    password_changed_at: dt.datetime


def ensure_tables(store: Engine) -> None:
    for table in CONSOLE_TABLES:
        table.create(store, checkfirst=True)
    audit.ensure_tables(store)


def add(
    store: Engine,
    name: str,
    role: str,
    password: str,
    *,
    manager_id: str | None = None,
    branch_id: str | None = None,
) -> Account:
    """Create an account; a manager account names the managers row it works as."""
    _check_name(name)
    _check_role(role)
    _check_password(password)
    ensure_tables(store)
    if role == "manager" and not manager_id:
        raise UsageError(
            "a manager account needs --manager-id",
            code="E0601",
            hint="the id of the managers row whose tasks this person works, e.g. M0001",
        )
    if role == "leader" and not branch_id:
        raise UsageError(
            "a leader account needs --branch", code="E0601", hint="the branch id, e.g. B001"
        )
    if manager_id:
        branch_id = _manager_branch(store, manager_id, branch_id)
    now = utc_now()
    try:
        with store.begin() as conn:
            conn.execute(
                insert(console_accounts).values(
                    name=name,
                    password_hash=_hasher.hash(password),
                    role=role,
                    manager_id=manager_id,
                    branch_id=branch_id,
                    created_at=now,
                    password_changed_at=now,
                )
            )
    except IntegrityError as exc:
        raise UsageError(
            f"an account named {name!r} exists already",
            code="E0602",
            hint="choose another name, or change its role with `users role`",
        ) from exc
    found = get(store, name)
    assert found is not None
    return found


def get(store: Engine, name: str) -> Account | None:
    c = console_accounts.c
    with store.connect() as conn:
        row = conn.execute(select(console_accounts).where(c.name == name)).mappings().first()
    return None if row is None else _account(row)


def all_accounts(store: Engine) -> list[Account]:
    ensure_tables(store)
    with store.connect() as conn:
        rows = conn.execute(select(console_accounts).order_by(console_accounts.c.name))
        return [_account(r) for r in rows.mappings()]


def authenticate(store: Engine, name: str, password: str) -> Account | None:
    """The account when ``password`` is its password and it is enabled, else None."""
    c = console_accounts.c
    with store.connect() as conn:
        row = conn.execute(select(console_accounts).where(c.name == name)).mappings().first()
    stored = row["password_hash"] if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled_at"] is not None:
        return None
    if _hasher.check_needs_rehash(stored):  # parameters grew stronger since it was set
        with store.begin() as conn:
            conn.execute(
                update(console_accounts)
                .where(c.name == name)
                .values(password_hash=_hasher.hash(password))
            )
    return _account(row)


def set_role(
    store: Engine,
    name: str,
    role: str,
    *,
    manager_id: str | None = None,
    branch_id: str | None = None,
) -> Account:
    _check_role(role)
    if manager_id:
        branch_id = _manager_branch(store, manager_id, branch_id)
    values: dict[str, object] = {"role": role}
    if manager_id is not None:
        values["manager_id"] = manager_id
    if branch_id is not None:
        values["branch_id"] = branch_id
    return _update(store, name, values)


def disable(store: Engine, name: str) -> Account:
    """Disabled at once: the next request of any open session of this account is refused."""
    return _update(store, name, {"disabled_at": utc_now()})


def enable(store: Engine, name: str) -> Account:
    return _update(store, name, {"disabled_at": None})


def set_password(store: Engine, name: str, password: str) -> Account:
    """A new password also ends every session opened with the old one."""
    _check_password(password)
    return _update(
        store, name, {"password_hash": _hasher.hash(password), "password_changed_at": utc_now()}
    )


def _update(store: Engine, name: str, values: dict[str, object]) -> Account:
    ensure_tables(store)
    c = console_accounts.c
    with store.begin() as conn:
        done = conn.execute(update(console_accounts).where(c.name == name).values(**values))
    if done.rowcount == 0:
        raise UsageError(f"no account named {name!r}", code="E0603", hint="see `users list`")
    found = get(store, name)
    assert found is not None
    return found


def _account(row: object) -> Account:
    r = dict(row)  # type: ignore[call-overload]
    return Account(
        name=r["name"],
        role=r["role"],
        manager_id=r["manager_id"],
        branch_id=r["branch_id"],
        disabled=r["disabled_at"] is not None,
        password_changed_at=r["password_changed_at"],
    )


def _manager_branch(store: Engine, manager_id: str, branch_id: str | None) -> str | None:
    """The branch of ``manager_id``; refuse an id the store does not know."""
    with store.connect() as conn:
        row = conn.execute(select(managers.c.branch_id).where(managers.c.id == manager_id)).first()
    if row is None:
        raise UsageError(
            f"no manager with id {manager_id!r} in the store",
            code="E0604",
            hint="use an id from the managers table (the task list's assignee ids)",
        )
    return branch_id or str(row.branch_id)


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not all(ch.isalnum() or ch in "._-@" for ch in name):
        raise UsageError(
            f"account name {name!r} is not allowed",
            code="E0605",
            hint="1-64 letters, digits and . _ - @",
        )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", code="E0606", hint="one of: " + ", ".join(ROLES))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(
            f"the password is shorter than {MIN_PASSWORD} characters",
            code="E0607",
            hint="a passphrase of a few words is easy to remember and hard to guess",
        )
