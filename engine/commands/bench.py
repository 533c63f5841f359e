"""``bench``: the performance benchmark, side by side with its physical baselines."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.bench import report as bench_report
from engine.bench.run import Plan, all_sections, run, sizes_for
from engine.core.errors import UsageError


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
    out: Path,
    markdown: Path | None,
) -> None:
    """Measure the whole pack, audiences, rendering, writes, dispatch and events against
    their baselines, on demo stores of growing size; print a table and write JSON."""
    wanted = tuple(all_sections()) if sections is None else tuple(sections.split(","))
    unknown = [s for s in wanted if s not in all_sections()]
    if unknown:
        raise UsageError(
            f"unknown section(s) {', '.join(unknown)}",
            code="E0302",
            hint=f"known: {', '.join(all_sections())}",
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
    plan = Plan(
        customers=customers,
        sizes=sizes_for(customers, size_list),
        backends=backends,
        repeats=repeats,
        sections=wanted,
        db_url=db_url,
        root=Path.cwd(),
        store_dir=store_dir.resolve() if store_dir else None,
    )
    result = run(plan, progress=lambda text: click.echo(text, err=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    bench_report.print_report(result)
    if markdown is not None:
        markdown.write_text(bench_report.markdown(result), encoding="utf-8")
    click.echo(f"report written to {out}")
