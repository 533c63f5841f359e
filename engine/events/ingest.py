"""Events from a JSON Lines file: one JSON object per line, read lazily in batches, so a file
of any size streams through in constant memory. A line that is not JSON is rejected with its
line number, like any other bad event; it never stops the file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.core.errors import EngineError
from engine.events.processor import EventProcessor, Report
from engine.events.wire import loads
from engine.triggers.event_model import Rejected

BATCH = 1000


def read_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """``(file:line, decoded value or Rejected)`` for every non-blank line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise EngineError(
            f"cannot read {path}: {exc.strerror or exc}", code="E0702", hint="check the path"
        ) from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            source = f"{path.name}:{number}"
            try:
                yield source, loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                yield source, Rejected("bad_json", f"not a JSON object: {_first(exc)}")


def ingest(
    processor: EventProcessor,
    items: Iterator[tuple[str, Any]],
    clock: Callable[[], dt.datetime],
    batch: int = BATCH,
    *,
    store_only: bool = False,
) -> Report:
    """Feed items through the processor in batches; ``clock`` gives each batch's moment.
    ``store_only``: check and store them, match nothing (the daemon does that)."""

    def step(chunk: list[tuple[str, Any]]) -> Report:
        if store_only:
            return processor.accept(chunk, clock())[0]
        return processor.process(chunk, clock())

    total = Report()
    chunk: list[tuple[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= batch:
            total.merge(step(chunk))
            chunk = []
    if chunk:
        total.merge(step(chunk))
    return total


def _first(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120]
