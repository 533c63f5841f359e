"""``bench``: the performance benchmark, side by side with its physical baselines."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.bench import report as bench_report
from engine.bench.child import PARTITIONS
from engine.bench.run import Plan, all_sections, default_sections, run, sizes_for
from engine.core.errors import UsageError
from engine.store.partitions import MAX_PARTITIONS


@click.command("bench")
@click.option("--customers", default=1_000_000, show_default=True, type=click.IntRange(100))
@click.option(
    "--sizes",
    default=None,
    help="comma-separated store sizes for the growth curve (default: 10000, 100000 and N)",
)
@click.option("--db", "db_url", default=None, help="measure this store (SQLAlchemy URL) only")
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgresql", "both"]),
    default="sqlite",
    show_default=True,
    help="postgresql starts a throwaway cluster on 127.0.0.1 (initdb must be installed)",
)
@click.option(
    "--store-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="folder of the SQLite demo stores, reused between runs (default: data/bench)",
)
@click.option("--repeat", "repeats", default=3, show_default=True, type=click.IntRange(1))
@click.option(
    "--sections", default=None, help=f"comma-separated subset of: {', '.join(all_sections())}"
)
@click.option(
    "--partitions",
    default=None,
    help="comma-separated K (e.g. 1,2,4): also measure the pack's real run split across K "
    "processes (runner.py run --partition k/K); PostgreSQL only, K=1 is the baseline",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out/bench.json"),
    show_default=True,
    help="the JSON report",
)
@click.option(
    "--markdown",
    type=click.Path(path_type=Path),
    default=None,
    help="also write the tables as Markdown (for BENCHMARKS.md)",
)
def bench(
    customers: int,
    sizes: str | None,
    db_url: str | None,
    backend: str,
    store_dir: Path | None,
    repeats: int,
    sections: str | None,
    partitions: str | None,
    out: Path,
    markdown: Path | None,
) -> None:
    """Measure the whole pack, audiences, rendering, writes, dispatch and events against
    their baselines, on demo stores of growing size; print a table and write JSON."""
    wanted = default_sections() if sections is None else tuple(sections.split(","))
    unknown = [s for s in wanted if s not in all_sections()]
    if unknown:
        raise UsageError(
            f"unknown section(s) {', '.join(unknown)}",
            code="E0302",
            hint=f"known: {', '.join(all_sections())}",
        )
    counts = _counts(partitions)
    if counts and PARTITIONS not in wanted:
        wanted = (*wanted, PARTITIONS)
    if PARTITIONS in wanted and not counts:
        raise UsageError(
            "the partitions section needs --partitions",
            code="E0302",
            hint="e.g. --partitions 1,2,4",
        )
    try:
        size_list = [int(s) for s in sizes.split(",")] if sizes else None
    except ValueError as exc:
        raise UsageError(f"--sizes {sizes!r} is not a list of numbers", code="E0302") from exc
    if db_url is not None:
        backends: tuple[str, ...] = ("postgresql" if db_url.startswith("postgres") else "sqlite",)
        size_list = [customers]
    else:
        backends = ("sqlite", "postgresql") if backend == "both" else (backend,)
    if counts and "postgresql" not in backends:
        raise UsageError(
            "--partitions measures PostgreSQL only: SQLite has one writer",
            code="E0302",
            hint="add --backend postgresql (or a postgresql --db)",
        )
    plan = Plan(
        customers=customers,
        sizes=sizes_for(customers, size_list),
        backends=backends,
        repeats=repeats,
        sections=wanted,
        db_url=db_url,
        root=Path.cwd(),
        store_dir=store_dir.resolve() if store_dir else None,
        partitions=counts,
    )
    result = run(plan, progress=lambda text: click.echo(text, err=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    bench_report.print_report(result)
    if markdown is not None:
        markdown.write_text(bench_report.markdown(result), encoding="utf-8")
    click.echo(f"report written to {out}")


def _counts(text: str | None) -> tuple[int, ...]:
    """``--partitions 1,2,4`` checked at the edge: the K to measure, with 1 (the baseline)."""
    if text is None:
        return ()
    try:
        counts = {int(k) for k in text.split(",")}
    except ValueError as exc:
        raise UsageError(f"--partitions {text!r} is not a list of numbers", code="E0302") from exc
    if min(counts) < 1 or max(counts) > MAX_PARTITIONS:
        raise UsageError(
            f"--partitions {text!r}: each K must be 1 to {MAX_PARTITIONS}", code="E0302"
        )
    return tuple(sorted(counts | {1}))
