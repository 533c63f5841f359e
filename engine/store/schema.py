"""The engine tables' schema version: Alembic revisions under ``engine/store/migrations``.

Three kinds of store meet ``init-db``:

- **empty**: the tables are created from the models and stamped at the newest revision;
- **made by release 2026-11** (the engine's ``runs`` table, no ``alembic_version``): stamped at
  the baseline, then upgraded in place, data kept;
- **versioned**: upgraded from its revision to the newest; one newer than this code knows is
  refused (an older engine must not write into a newer schema).

Every other command checks the revision with one query (:func:`require_current`): a store an
upgrade is pending for is refused with the one command that fixes it. A store without
``alembic_version`` (made by the release before, or by a test's ``create_all``) is not
refused, so nothing changes for it until ``init-db`` runs.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from engine.core.errors import StoreError

BASELINE = "0001"
LOCATION = Path(__file__).with_name("migrations")


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(LOCATION))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None
    return found


def known() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}


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
    had_engine = inspect(engine).has_table("runs")
    with engine.begin() as conn:
        config = _config(conn)
        if current is None and had_engine:
            command.stamp(config, BASELINE)  # made by release 2026-11: its schema, unstamped
            command.upgrade(config, "head")
            return f"upgraded the store's engine tables from release 2026-11 to {newest}"
        if current is None:
            return None
        command.upgrade(config, "head")
    return f"upgraded the store's engine tables from revision {current} to {newest}"


def stamp_head(engine: Engine) -> None:
    """A store whose tables were just created from the models is at the newest revision."""
    with engine.begin() as conn:
        command.stamp(_config(conn), "head")


def require_current(engine: Engine) -> None:
    """Refuse a store whose engine tables an upgrade is pending for, or that is newer."""
    if not inspect(engine).has_table("alembic_version"):
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
