"""The engine tables' schema version: Alembic revisions under ``engine/store/migrations``.

Three kinds of store meet ``init-db``:

- **empty**: the tables are created from the models and stamped at the newest revision;
- **made by release 2026-11** (no ``alembic_version``, and its tables are exactly that
  release's, compared column by column with :mod:`engine.store.migrations.baseline`): stamped
  at the baseline, then upgraded in place, data kept. A store that is neither empty nor that
  (a bank's own ``runs`` table, an older release, a half-made store) is refused (E0512)
  before anything is written;
- **versioned**: upgraded from its revision to the newest; one newer than this code knows is
  refused (an older engine must not write into a newer schema).

Every other command checks the revision with one query (:func:`require_current`): a store an
upgrade is pending for is refused with the one command that fixes it, and so is one with the
engine's tables but no ``alembic_version`` (made by release 2026-11): whatever creates the
engine's tables (``init-db``, ``create_all``, ``demo-data``) stamps them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Inspector, inspect

from engine.core.errors import StoreError
from engine.core.i18n import choose_lang, localize, t
from engine.store.migrations import baseline

BASELINE = "0001"
LOCATION = Path(__file__).with_name("migrations")


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(LOCATION))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    # read once per process: the revisions are files of the installed package, and every
    # command asks for the head (require_current) before it starts
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this code knows."""
    found = _script().get_current_head()
    assert found is not None
    return found


def known() -> set[str]:
    return {s.revision for s in _script().walk_revisions()}


def revision(engine: Engine) -> str | None:
    """The store's revision, or None when it has never been stamped."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str | None:
    """Bring the engine tables to the newest revision and say what was done, in one line;
    None for a store without engine tables (create them, then :func:`stamp_head`)."""
    current = revision(engine)
    newest = head()
    if current is not None and current not in known():
        raise _newer(current)
    if current == newest:
        return f"the store's engine tables are current (revision {newest})"
    if current is None:
        found = inspect(engine)
        present = set(found.get_table_names())
        if not present & (baseline.ENGINE.keys() | baseline.ON_FIRST_USE.keys()):
            return None
        require_baseline(found, present)  # before anything is written
    with engine.begin() as conn:
        config = _config(conn)
        if current is None:
            command.stamp(config, BASELINE)  # made by release 2026-11: its schema, unstamped
            command.upgrade(config, "head")
            return f"upgraded the store's engine tables from release 2026-11 to {newest}"
        command.upgrade(config, "head")
    return f"upgraded the store's engine tables from revision {current} to {newest}"


def require_baseline(found: Inspector, present: set[str]) -> None:
    """Refuse an unversioned store unless its engine tables are release 2026-11's: all of
    them or none (the console's may be any), each with exactly that release's columns."""
    problems: list[tuple[str, str]] = []
    lang = choose_lang()
    there = [name for name in baseline.ENGINE if name in present]
    absent = [name for name in baseline.ENGINE if name not in present]
    if there and absent:
        problems.append(
            (absent[0], t("E0512.absent", absent=", ".join(absent), there=", ".join(there)))
        )
    for name, columns in (baseline.ENGINE | baseline.ON_FIRST_USE).items():
        if name not in present:
            continue
        have = [c["name"] for c in found.get_columns(name)]
        lacking = [c for c in columns if c not in have]
        extra = [c for c in have if c not in columns]
        if lacking:
            problems.append((name, t("E0512.lacking", table=name, columns=", ".join(lacking))))
        if extra:
            problems.append((name, t("E0512.extra", table=name, columns=", ".join(extra))))
    if problems:
        said = "; ".join(str(localize(p, lang)) for _, p in problems)
        raise StoreError(
            str(localize(t("E0512", problems=said), lang)),
            code="E0512",
            where=f"table {problems[0][0]}",
            hint=localize(t("E0512.hint"), lang),
        )


def stamp_head(bind: Engine | Connection) -> None:
    """A store whose tables were just created from the models is at the newest revision.

    Written through a migration context, not Alembic's env.py: creating a test's store must
    stay cheap. A connection is the caller's transaction (the demo generator's)."""
    if isinstance(bind, Connection):
        MigrationContext.configure(bind).stamp(_script(), "head")
        return
    with bind.begin() as conn:
        MigrationContext.configure(conn).stamp(_script(), "head")


def require_current(engine: Engine) -> None:
    """Refuse a store whose engine tables an upgrade is pending for, or that is newer."""
    found = inspect(engine)
    if not found.has_table("alembic_version"):
        if found.has_table("runs"):  # the engine's tables, never stamped: release 2026-11
            raise StoreError(
                "the store was made by an earlier release (its engine tables have no schema "
                f"revision); this engine needs {head()}",
                code="E0511",
                hint="upgrade it in place, data kept: `python runner.py init-db` "
                "(with the same --db)",
            )
        return
    current = revision(engine)
    if current is None or current == head():
        return
    if current not in known():
        raise _newer(current)
    raise StoreError(
        f"the store's engine tables are at revision {current}; this engine needs {head()}",
        code="E0511",
        hint="upgrade it in place, data kept: `python runner.py init-db` (with the same --db)",
    )


def _newer(current: str) -> StoreError:
    return StoreError(
        f"the store's engine tables are at revision {current}, newer than this engine knows "
        f"({head()})",
        code="E0510",
        hint="run the engine release that upgraded this store; an older one must not write into it",
    )
