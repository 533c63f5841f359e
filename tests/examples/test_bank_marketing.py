"""The Bank Marketing example deployment, proven on the real UCI data (bank-full.csv).

The store is imported with the example's mapping on SQLite and PostgreSQL, and each shipped
playbook's audience is compared with plain Python over the raw file (read with the csv
module); the client number is the row's line in the file, so both sides name the same rows.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from support import BACKENDS, REPO, TZ, deployment_playbook, require_shared_data

from engine.core.clock import Clock
from engine.core.dictionary import load_dictionary
from engine.execution.executor import Executor, slot_on
from engine.execution.sinks import RecordingSink
from engine.store.db import create_engine_tables, open_store
from engine.store.importing import import_files
from engine.store.introspect import check_dictionary
from engine.store.mapping import load_mapping

EXAMPLE = REPO / "examples" / "bank_marketing"
RAW = REPO.parent / "shared" / "data" / "bank_marketing"


@pytest.fixture(autouse=True, scope="module")
def _shared_data() -> None:
    require_shared_data(RAW, "UCI data")


@pytest.fixture(scope="module", params=BACKENDS)
def bank_marketing_url(request: Any, tmp_path_factory: Any) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bm') / 'bm.db'}"
        cleanup = None
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = cluster.create_database()
        url, cleanup = cluster.url(name), (cluster, name)
    store = open_store(url)
    import_files(store, load_mapping(EXAMPLE / "schemas" / "import_mapping.yaml"), source_dir=RAW)
    create_engine_tables(store)
    store.dispose()
    yield url
    if cleanup:
        cleanup[0].drop_database(cleanup[1])


@cache
def raw() -> dict[int, dict[str, str]]:
    """bank-full.csv by line number (the header is line 1)."""
    with (RAW / "bank-full.csv").open(newline="", encoding="utf-8") as fh:
        return {line: row for line, row in enumerate(csv.DictReader(fh, delimiter=";"), start=2)}


def expected(playbook_id: str) -> list[str]:
    out = []
    for line, r in raw().items():
        pdays = int(r["pdays"])
        if playbook_id == "bm-not-contacted-180d":
            ok = (
                (pdays == -1 or pdays > 180)
                and r["y"] == "no"
                and r["default"] == "no"
                and float(r["balance"]) >= 1000
            )
        else:  # bm-previous-success
            ok = r["poutcome"] == "success" and r["y"] == "no"
        if ok:
            out.append(str(line))
    return out


def outcome(url: str, playbook_id: str) -> Any:
    settings, validator, playbook = deployment_playbook(EXAMPLE, playbook_id)
    dictionary = validator.dictionary
    store = open_store(url)
    try:
        at = slot_on(playbook, dt.date(2010, 11, 29), TZ)  # any weekday: no field uses dates
        assert at is not None
        executor = Executor(store, settings, dictionary, validator.renderer)
        return executor.execute(playbook, Clock.at(at, TZ), RecordingSink(), keep_details=True)
    finally:
        store.dispose()


@pytest.mark.parametrize("playbook_id", ["bm-not-contacted-180d", "bm-previous-success"])
def test_bank_marketing_audiences_equal_python_over_the_raw_file(
    bank_marketing_url: str, playbook_id: str
) -> None:
    done = outcome(bank_marketing_url, playbook_id)
    want = expected(playbook_id)
    assert want
    assert done.matched == want  # in client-number order, as the audience query sorts
    if playbook_id == "bm-not-contacted-180d":  # max_per_run: 2000, the rest held back
        assert done.acted == 2000 and done.suppressed["max_per_run"] == len(want) - 2000
    else:  # no phone numbers in the source: every SMS held back, every task kept
        assert done.suppressed == {"no_phone": len(want)} and done.effects == {"task": len(want)}


def test_bank_marketing_import_every_row_numbered_by_line(bank_marketing_url: str) -> None:
    store = open_store(bank_marketing_url)
    with store.connect() as conn:
        got = conn.execute(
            text(
                "SELECT client_no, age, job, balance, days_since_previous_contact, "
                "housing_loan, subscribed FROM bank_client ORDER BY client_no"
            )
        ).all()
    store.dispose()
    rows = raw()
    assert len(got) == len(rows) == 45211
    for no, age, job, balance, pdays, housing, subscribed in got:
        r = rows[no]
        assert (age, job, float(balance)) == (int(r["age"]), r["job"], float(r["balance"]))
        assert pdays == (None if r["pdays"] == "-1" else int(r["pdays"]))
        assert (bool(housing), bool(subscribed)) == (r["housing"] == "yes", r["y"] == "yes")


def test_bank_marketing_dictionary_fits_the_live_database(bank_marketing_url: str) -> None:
    store = open_store(bank_marketing_url)
    try:
        dictionary = load_dictionary(EXAMPLE / "schemas" / "data_dictionary.yaml")
        assert check_dictionary(store, dictionary).diagnostics == []
    finally:
        store.dispose()


def test_bank_marketing_reimport_replaces_rows(store: Engine, tmp_path: Path) -> None:
    """Importing again gives the same table, not twice the rows (mode: replace)."""
    head = (RAW / "bank-full.csv").read_bytes()[:20_000]
    (tmp_path / "bank-full.csv").write_bytes(head.rsplit(b"\n", 1)[0] + b"\n")
    mapping = load_mapping(EXAMPLE / "schemas" / "import_mapping.yaml")
    for _ in range(2):
        report = import_files(store, mapping, source_dir=tmp_path)
    with store.connect() as conn:
        count = conn.execute(text("SELECT COUNT(*) FROM bank_client")).scalar_one()
    lines = (tmp_path / "bank-full.csv").read_bytes().count(b"\n")
    assert count == report.tables[0].rows == lines - 1
