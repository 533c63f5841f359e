"""Shared fixtures: a fresh, empty database per test on SQLite and on a real PostgreSQL.

The engine promises the same behaviour on both stores, so contract tests take ``db_url`` and
run once per backend. The PostgreSQL cluster is started lazily, once per session, only when a
test asks for it, so a SQLite-only run never pays for it.

Without PostgreSQL binaries the postgresql cases are skipped on a developer machine, but fail
under ``CI=true``: a CI run that silently skipped half its backends would prove nothing.

``pgcluster`` is imported as a top-level module: tests/ is no package, and pytest's default
(prepend) import mode puts this folder on sys.path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pgcluster import ClusterError, PgCluster, find_bindir
from sqlalchemy import Engine
from support import BACKENDS, demo_store_url

from engine.store.db import open_store

_NO_BINARIES = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH or in "
    "/usr/lib/postgresql/*/bin; install them (Debian: apt-get install postgresql) "
    "to run the postgresql tests"
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reaches the cluster as ``postgres``, however it asks for it.

    The db_url param carries the mark itself; this catches pg_url and pg_cluster users too,
    so ``-m "not postgres"`` really runs without PostgreSQL.
    """
    for item in items:
        if "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's throwaway PostgreSQL cluster, stopped and deleted at the end.

    Teardown runs when tests fail and under ``-x`` too: pytest finalises session fixtures at
    session finish whatever happened before.
    """
    bindir = find_bindir()
    if bindir is None:
        if _in_ci():
            pytest.fail(f"CI=true but {_NO_BINARIES}", pytrace=False)
        pytest.skip(_NO_BINARIES)
    cluster = PgCluster(bindir)
    try:
        problem = None
        try:
            cluster.start()
        except ClusterError as exc:
            problem = str(exc)
        if problem is not None:  # failed outside the except: no chained traceback in the report
            pytest.fail(f"could not start the test PostgreSQL cluster: {problem}", pytrace=False)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new, empty SQLite file under the test's own temp folder."""
    return f"sqlite:///{tmp_path / 'store.db'}"


_BACKEND_FIXTURES = {"sqlite": "sqlite_url", "postgresql": "pg_url"}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh, empty database; every test using it runs once per backend."""
    url: str = request.getfixturevalue(_BACKEND_FIXTURES[request.param])
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    """An opened engine on ``db_url``, disposed after the test so no connection outlives it."""
    engine = open_store(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def demo_url(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[str]:
    """One generated demo store per backend for a test module (module scope: each module
    that asks gets its own); a module that wants something else defines its own."""
    yield from demo_store_url(request, tmp_path_factory)
