"""``run --partition k/K`` for k = 1..K together is one unpartitioned ``run`` (both backends):
the same ledger rows by (playbook, customer, window), and max_per_run split so the parts add
up to the cap."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from support import (
    AS_OF,
    SETTINGS,
    assert_no_traceback,
    clear_engine_tables,
    cli,
    dictionary,
    playbook_from_text,
    validator,
)

from engine.core.clock import Clock
from engine.execution.executor import Executor, Outcome
from engine.execution.selection import decide
from engine.execution.sinks import StoreSink
from engine.playbook.model import Playbook
from engine.rendering.renderer import Renderer
from engine.store.models import action_ledger, outbox, tasks
from engine.store.partitions import Partition

K = 4
DICTIONARY = dictionary()


def _executor(store: Engine, by: str | None = None) -> Executor:
    d = dataclasses.replace(DICTIONARY, partition_column=by)
    return Executor(store, SETTINGS, d, Renderer(SETTINGS.templates_dir, d))


def _ledger(store: Engine) -> set[tuple[str, str, str]]:
    c = action_ledger.c
    with store.connect() as conn:
        rows = conn.execute(select(c.playbook_id, c.customer_id, c.window)).all()
    assert len(rows) == len(set(rows))
    return {(str(p), str(cid), str(w)) for p, cid, w in rows}


def _count(store: Engine, table: object) -> int:
    with store.connect() as conn:
        return len(conn.execute(select(table)).all())  # type: ignore[call-overload]


def _pack(store: Engine, partition: Partition | None, by: str | None = None) -> list[Outcome]:
    playbooks = validator().validate_paths([SETTINGS.playbooks_dir]).playbooks
    selected = decide(
        store,
        _executor(store, by),
        playbooks,
        AS_OF,
        whole_day=True,
        dry_run=False,
        mask=False,
        partition=partition,
    )
    assert not selected.failed
    return selected.outcomes


@pytest.mark.parametrize("by", [None, "branch_id"], ids=["key", "partition_column"])
def test_four_partitions_of_the_pack_are_one_unpartitioned_run(
    demo_store: Engine, by: str | None
) -> None:
    reference = _pack(demo_store, None)
    expected = _ledger(demo_store)
    counts = (_count(demo_store, outbox), _count(demo_store, tasks))
    # the pack on this store: no cap binds, so the very same customers must be chosen
    assert not any(o.suppressed.get("max_per_run") for o in reference)
    assert len(expected) > 100
    clear_engine_tables(demo_store)
    parts = [_pack(demo_store, Partition(k, K), by) for k in range(1, K + 1)]
    assert _ledger(demo_store) == expected
    assert (_count(demo_store, outbox), _count(demo_store, tasks)) == counts
    for i, ref in enumerate(reference):
        matched = [p[i].matched_count for p in parts]
        assert sum(matched) == ref.matched_count, ref.playbook.id
        if by is None and ref.matched_count > 40:  # a few branches may all hash alike
            assert all(m > 0 for m in matched), (ref.playbook.id, matched)


BROAD = """\
id: partition-cap
title: 分区上限
enabled: true
category: service
trigger:
  schedule: "0 9 * * *"
audience:
  all:
    - tier: {in: [mass, gold, vip, private]}
actions:
  - task:
      assignee: manager
      kind: call
      title: "回访 {{ customer.name }}"
      due_in: 3d
      priority: normal
limits:
  max_per_run: 11
"""


def _run(store: Engine, playbook: Playbook, partition: Partition | None) -> Outcome:
    clock = Clock.at(AS_OF, SETTINGS.timezone)
    return _executor(store).execute(playbook, clock, StoreSink(store), partition=partition)


def test_max_per_run_is_split_so_the_partitions_add_up(demo_store: Engine, tmp_path: Path) -> None:
    playbook = playbook_from_text(tmp_path, BROAD)
    acted: Sequence[int] = [_run(demo_store, playbook, Partition(k, K)).acted for k in (1, 2, 3, 4)]
    assert list(acted) == [3, 3, 3, 2]  # 11 = 2 × 4 + 3: the first three get one more
    assert len(_ledger(demo_store)) == 11
    clear_engine_tables(demo_store)
    assert _run(demo_store, playbook, None).acted == 11


def test_run_partition_on_the_command_line(clean_demo_url: str) -> None:
    args = ["run", "--db", clean_demo_url, "--as-of", "2026-11-23", "--playbook"]
    done = cli(*args, "vip-inactive-60d", "--partition", "2/4")
    assert done.returncode == 0, done.stderr
    assert "[partition 2/4]" in done.stdout and "acted" in done.stdout
    assert_no_traceback(done)


def test_dry_run_of_each_partition_previews_its_share(clean_demo_url: str) -> None:
    """``dry-run --partition k/K`` previews what that partition's daemon would do: the
    partitions' previews together are the unpartitioned preview (an uncapped playbook)."""
    args = ["dry-run", "--db", clean_demo_url, "--as-of", "2026-11-23", "--format", "json"]
    pick = ["--playbook", "vip-inactive-60d"]

    def acted(*extra: str) -> list[str]:
        done = cli(*args, *pick, *extra)
        assert done.returncode == 0, done.stderr
        (entry,) = json.loads(done.stdout)["playbooks"]
        assert entry.get("partition") == (extra[1] if extra else None)
        assert not entry["counts"]["held_back"].get("max_per_run")  # the cap does not bind
        return sorted({a["customer_id"] for a in entry["actions"]})

    whole = acted()
    parts = [acted("--partition", f"{k}/2") for k in (1, 2)]
    assert whole and all(parts) and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == whole
    text = cli(*args[:-2], *pick, "--partition", "1/2")
    assert "[partition 1/2]" in text.stdout
    bad = cli(*args, *pick, "--partition", "5/4")
    assert bad.returncode != 0 and "E1040" in bad.stderr
    assert_no_traceback(bad)
