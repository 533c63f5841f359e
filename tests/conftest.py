"""Shared fixtures: a fresh, empty database per test on SQLite and on a real PostgreSQL, and
the generated demo store most tests run playbooks on.

The engine promises the same behaviour on both stores, so contract tests take ``db_url`` (or
``demo_url``) and run once per backend. The PostgreSQL cluster is started lazily, once per
session, only when a test asks for it, so a SQLite-only run never pays for it.

Without PostgreSQL binaries the postgresql cases are skipped on a developer machine, but fail
under ``CI=true``: a CI run that silently skipped half its backends would prove nothing.

The cluster is :mod:`engine.bench.pgcluster`, the one ``bench --backend postgresql`` starts
too: one implementation of "initdb, start on a free port, run as postgres when root, delete"
for both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from support import AS_OF_DATE, BACKENDS, DEMO_CUSTOMERS, clear_engine_tables

from engine.bench.pgcluster import ClusterError, PgCluster, find_bindir
from engine.demo.generator import generate
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


# --- the demo store ---------------------------------------------------------------------------
#
# Most tests that need realistic customers share these fixtures rather than generating their
# own store. A module that needs other data (another size, seed or anchor date, or a random
# store) builds it in a fixture of its own and says why.


@pytest.fixture(scope="module", params=BACKENDS)
def demo_url(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[str]:
    """URL of a generated demo store (``DEMO_CUSTOMERS`` customers), once per backend.

    Module scope: generating customers takes seconds, so a module's tests share one store, and
    each module that asks gets its own. A module may therefore change customer data for its
    own tests (tests/conditions/test_bad_data.py damages rows) without reaching another
    module; whoever widens the scope must give such modules a private store first.

    A module that needs one backend only narrows the parameter:
    ``pytestmark = pytest.mark.parametrize("demo_url", ["sqlite"], indirect=True)``.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
        cleanup = None
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = cluster.create_database()
        url, cleanup = cluster.url(name), (cluster, name)
    engine = open_store(url)
    try:
        generate(engine, customers=DEMO_CUSTOMERS, seed=11, as_of=AS_OF_DATE)
    finally:
        engine.dispose()
    yield url
    if cleanup:
        cleanup[0].drop_database(cleanup[1])


@pytest.fixture
def clean_demo_url(demo_url: str) -> str:
    """The module's demo store with the engine's tables emptied: no test sees another's runs,
    and the customers are not generated again."""
    engine = open_store(demo_url)
    try:
        clear_engine_tables(engine)
    finally:
        engine.dispose()
    return demo_url


@pytest.fixture
def demo_store(demo_url: str) -> Iterator[Engine]:
    """An opened engine on the module's demo store, its engine tables emptied first (as
    :func:`clean_demo_url`), disposed after the test: for tests that run playbooks."""
    engine = open_store(demo_url)
    try:
        clear_engine_tables(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def shared_demo_store(demo_url: str) -> Iterator[Engine]:
    """One engine on the module's demo store for all of the module's tests, engine tables left
    as they are: for modules that read customers once in module-scoped fixtures and write
    nothing another of their tests could trip over."""
    engine = open_store(demo_url)
    try:
        yield engine
    finally:
        engine.dispose()
