"""The measuring process: ``python -m engine.bench.child build|measure URL N …``.

The parent runs each store size in a child of its own so the child's peak resident memory
(``wait4``'s ``ru_maxrss``) is the memory of that run alone, and builds the demo store in
another child first so generating the data does not count. Results go to a JSON file.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.bench import (
    audiences,
    console,
    delivery,
    events,
    pack,
    partitioned,
    render,
    writes,
)
from engine.bench.figures import peak_mb, reset_peak
from engine.bench.lab import AS_OF, Lab
from engine.bench.stores import ensure
from engine.core.errors import EngineError, describe_failure
from engine.core.settings import Settings
from engine.store.db import open_store

SECTIONS: dict[str, Callable[[Lab, int], Any]] = {
    "pack": pack.measure,
    "audiences": audiences.measure,
    "render": render.measure,
    "writes": writes.measure,
    "dispatch": delivery.measure,
    "events": events.measure,
    "console": console.measure,
}

PARTITIONS = "partitions"
"""Section 9, run only when ``bench --partitions`` names the K to measure
(:func:`engine.bench.partitioned.measure`)."""


def build(url: str, customers: int, given: bool) -> dict[str, Any]:
    store = open_store(url)
    try:
        seconds = ensure(store, customers, AS_OF, given=given)
    finally:
        store.dispose()
    return {"built_s": None if seconds is None else round(seconds, 2)}


def measure(
    url: str, repeats: int, sections: list[str], partitions: tuple[int, ...] = ()
) -> dict[str, Any]:
    lab = Lab.open(url, Settings())
    out: dict[str, Any] = {}
    try:
        for name in sections:
            reset_peak()
            started = time.perf_counter()
            try:
                if name == PARTITIONS:
                    result = partitioned.measure(lab, repeats, partitions)
                else:
                    result = SECTIONS[name](lab, repeats)
            except Exception as exc:  # one failing section must not hide the others
                result = {"error": describe_failure(exc), "trace": traceback.format_exc(-3)}
            out[name] = {
                "result": result,
                "wall_s": round(time.perf_counter() - started, 2),
                "peak_rss_mb": peak_mb(),
            }
            print(f"  {name}: {out[name]['wall_s']} s", file=sys.stderr, flush=True)
    finally:
        lab.store.dispose()
    return out


def main(argv: list[str]) -> None:
    mode, url, customers, result_path = argv[0], argv[1], int(argv[2]), Path(argv[3])
    if mode == "build":
        try:
            data = build(url, customers, given=argv[4:] == ["given"])
        except EngineError as exc:
            print(exc.render(), file=sys.stderr)
            sys.exit(1)
    else:
        counts = tuple(int(k) for k in argv[6].split(",")) if argv[6:] else ()
        data = measure(url, int(argv[4]), argv[5].split(","), counts)
    result_path.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
