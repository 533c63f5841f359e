"""The benchmark's figures as rows: printed as rich tables, written as Markdown for
``BENCHMARKS.md``. The JSON report is the source; these only arrange it."""

from __future__ import annotations

from typing import Any

Row = tuple[
    str, str, str, str, str, str, str
]  # section, what, engine, baseline, ratio, cpu, target


def _t(d: dict[str, Any] | None) -> str:
    if not d:
        return "—"
    return f"{d['median_s']:.3f} s ({d['min_s']:.3f}–{d['max_s']:.3f})"


def _ok(value: float, target: float, lower_is_better: bool = True) -> str:
    good = value <= target if lower_is_better else value >= target
    return f"{'≤' if lower_is_better else '≥'} {target:g} {'✓' if good else '✗'}"


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    s = result["sections"]
    for name, section in s.items():
        if "error" in section["result"]:
            out.append((name, "failed", section["result"]["error"], "", "", "", ""))
    p = s.get("pack", {}).get("result", {})
    if "dry_run" in p:
        n = len(p["playbooks"])
        out.append(
            (
                "1 pack",
                f"dry-run, {n} playbooks vs one scan",
                _t(p["dry_run"]),
                _t(p["scan"]),
                f"{p['dry_run_ratio']:.2f}×",
                f"{p['dry_run_cpu_ratio']:.2f}×",
                _ok(p["dry_run_ratio"], 5),
            )
        )
        out.append(
            (
                "1 pack",
                "real run vs one scan",
                _t(p["run"]),
                _t(p["scan"]),
                f"{p['run_ratio']:.2f}×",
                f"{p['run_cpu_ratio']:.2f}×",
                _ok(p["run_ratio"], 5),
            )
        )
    for a in s.get("audiences", {}).get("result", []) if "audiences" in s else []:
        if not isinstance(a, dict):
            continue
        hand = a.get("hand")
        ratio = f"{a['ratio']:.2f}×" if hand else "—"
        cpu = f"{a['cpu_ratio']:.2f}×" if hand else "—"
        same = "" if not hand else ("" if a.get("same_customers") else " DIFFERENT ROWS")
        out.append(
            (
                "2 audience",
                f"{a['id']} ({a['rows']:,} rows){same}",
                _t(a["engine"]),
                _t(hand) if hand else a.get("note", ""),
                ratio,
                cpu,
                _ok(a["ratio"], 1.5) if hand else "",
            )
        )
    r = s.get("render", {}).get("result", {})
    if "ratio" in r:
        out.append(
            (
                "3 render",
                f"{r['renders']:,} texts, sandbox vs plain Jinja",
                _t(r["engine"]),
                _t(r["plain"]),
                f"{r['ratio']:.2f}×",
                f"{r['cpu_ratio']:.2f}×",
                _ok(r["ratio"], 1.5),
            )
        )
    w = s.get("writes", {}).get("result", {})
    if "ratio" in w:
        out.append(
            (
                "4 writes",
                f"{w['rows']:,} rows ({w['sink_customers_per_s']:,} customers/s)",
                _t(w["sink"]),
                _t(w["bare"]),
                f"{w['ratio']:.2f}×",
                f"{w['cpu_ratio']:.2f}×",
                _ok(w["ratio"], 2),
            )
        )
    d = s.get("dispatch", {}).get("result", {})
    if "dispatcher_msgs_per_s" in d:
        lo, hi = d["dispatcher_min_max"]
        blo, bhi = d["straight_min_max"]
        out.append(
            (
                "5 dispatch",
                f"{d['messages']:,} SMS, msgs/s vs httpx straight",
                f"{d['dispatcher_msgs_per_s']:,}/s ({lo:,}–{hi:,})",
                f"{d['straight_msgs_per_s']:,}/s ({blo:,}–{bhi:,})",
                f"{d['share_of_straight']:.0%}",
                "",
                _ok(d["dispatcher_msgs_per_s"], 2000, lower_is_better=False),
            )
        )
    e = s.get("events", {}).get("result", {})
    if "engine_events_per_s" in e:
        lo, hi = e["engine_min_max"]
        blo, bhi = e["raw_min_max"]
        out.append(
            (
                "6 events",
                f"{e['events']:,} events/s vs raw durable-rules",
                f"{e['engine_events_per_s']:,}/s ({lo:,}–{hi:,})",
                f"{e['raw_events_per_s']:,}/s ({blo:,}–{bhi:,})",
                f"{e['share_of_raw']:.0%}",
                "",
                "",
            )
        )
    c = s.get("console", {}).get("result", {})
    if "validate" in c:
        v, est, page = c["validate"], c["estimate"], c["page"]
        out.append(
            (
                "8 console",
                f"validation round trip ({v['playbook']}) vs the validator in process",
                f"{v['round_trip_ms']} ms",
                f"{v['validator_ms']} ms",
                f"{v['ratio']:.2f}×",
                "",
                _ok(v["round_trip_ms"], 150),
            )
        )
        out.append(
            (
                "8 console",
                f"audience estimate ({est['playbook']}, {est['matched']:,} matched) "
                "vs the dry-run command",
                _t(est["http"]),
                _t(est["cli"]),
                f"{est['cli_ratio']:.2f}×",
                "",
                _ok(est["cli_ratio"], 1.1),
            )
        )
        out.append(
            (
                "8 console",
                "audience estimate vs the same pass in process (no start-up)",
                _t(est["http"]),
                _t(est["dry_run"]),
                f"{est['ratio']:.2f}×",
                f"{est['cpu_ratio']:.2f}×",
                "",
            )
        )
        out.append(
            (
                "8 console",
                "editor page scripts, gzip",
                f"{page['gzip_kb']} KB",
                "",
                "",
                "",
                _ok(page["gzip_kb"], 500),
            )
        )
    out += _partition_rows(s.get("partitions", {}).get("result", {}))
    pack_peak = s.get("pack", {}).get("peak_rss_mb")
    out.append(
        (
            "7 memory",
            "peak RSS: pack section / whole child",
            f"{pack_peak} MB / {result['peak_rss_mb']} MB",
            "",
            "",
            "",
            _ok(result["peak_rss_mb"], 500),
        )
    )
    return out


def _cpu_total(entry: dict[str, Any]) -> float:
    server = entry["server_cpu"]["median_s"] if entry["server_cpu"] else 0.0
    return float(entry["process_cpu"]["median_s"]) + float(server)


def _partition_rows(q: dict[str, Any]) -> list[Row]:
    """Section 9 in the main table: each K's wall time against K = 1's (time ratio, so
    under 1× is faster), and all CPU (processes and server) against K = 1's."""
    if "not_applicable" in q:
        return [("9 partitions", q["not_applicable"], "", "", "", "", "")]
    if not q.get("partitions"):
        return []
    first = q["partitions"][0]
    return [
        (
            "9 partitions",
            f"pack real run, {e['partitions']} processes vs 1 (speedup {e['speedup']:.2f}×)"
            if e["partitions"] > 1
            else "pack real run, 1 process (the baseline)",
            _t(e["wall"]),
            _t(first["wall"]),
            f"{e['wall']['median_s'] / max(first['wall']['median_s'], 1e-9):.2f}×",
            f"{_cpu_total(e) / max(_cpu_total(first), 1e-9):.2f}×",
            "same work ✓" if e["same_work"] else "DIFFERENT WORK ✗",
        )
        for e in q["partitions"]
    ]


PARTITION_HEADERS = (
    "K",
    "wall: median (min–max)",
    "speedup vs K=1",
    "CPU of each process, s",
    "sum of process CPU, s",
    "peak MB of a process",
    "server CPU, s",
    "same work",
)


def partition_table(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Section 9 in detail, one row per K: medians of the repetitions."""
    q = result["sections"].get("partitions", {}).get("result", {})
    rows_out: list[tuple[str, ...]] = []
    for e in q.get("partitions", []):
        server = e["server_cpu"]
        rows_out.append(
            (
                str(e["partitions"]),
                _t(e["wall"]),
                f"{e['speedup']:.2f}×",
                " / ".join(f"{p['cpu']['median_s']:.1f}" for p in e["processes"]),
                _t(e["process_cpu"]),
                f"{max(p['peak_rss_mb'] for p in e['processes'])}",
                _t(server) if server else "not measured (server not on this machine)",
                "✓"
                if e["same_work"]
                else "✗ " + "; ".join(line for r in e["runs"] for line in r["different_work"]),
            )
        )
    return rows_out


HEADERS = (
    "section",
    "what",
    "engine: median (min–max)",
    "baseline",
    "ratio",
    "cpu ratio",
    "target",
)


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = report["machine"]
    console.print(
        f"[bold]machine[/]: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"load {m['load_at_start']} → {m.get('load_at_end')}"
    )
    for result in report["results"]:
        if set(result["sections"]) <= {"pack"} and result is not report["results"][-1]:
            continue
        table = Table(
            title=f"{result['backend']}, {result['customers']:,} customers, "
            f"{report['repeats']} runs each"
        )
        for h in HEADERS:
            table.add_column(h)
        for row in rows(result):
            table.add_row(*row)
        console.print(table)
        detail = partition_table(result)
        if detail:
            parts = Table(title="9 partitions: the pack's real run split across K processes")
            for h in PARTITION_HEADERS:
                parts.add_column(h)
            for prow in detail:
                parts.add_row(*prow)
            console.print(parts)
    growth = Table(title="growth: the whole pack (dry-run) by store size")
    for h in (
        "backend",
        "customers",
        "dry-run s",
        "run s",
        "scan s",
        "pack peak MB",
        "time growth / customer growth",
        "memory growth",
    ):
        growth.add_column(h)
    for g in report["scaling"]:
        growth.add_row(
            g["backend"],
            f"{g['customers']:,}",
            f"{g['dry_run_s']:.3f}",
            f"{g['run_s']:.3f}",
            f"{g['scan_s']:.3f}",
            f"{g['pack_peak_rss_mb']}",
            str(g.get("time_growth_per_customer_growth", "")),
            str(g.get("memory_growth", "")),
        )
    console.print(growth)


def plan_lines(result: dict[str, Any]) -> list[str]:
    """The query plans of every audience over its target, engine and twin, as Markdown."""
    found = result["sections"].get("audiences", {}).get("result", [])
    misses = [a for a in found if isinstance(a, dict) and a.get("plans")]
    if not misses:
        return []
    lines = [
        f"#### Query plans of the audiences over 1.5×, {result['backend']}, "
        f"{result['customers']:,} customers",
        "",
    ]
    for a in misses:
        plans = a["plans"]
        lines += [
            f"**{a['id']}** ({a['rows']:,} rows, {a['ratio']:.2f}×)",
            "",
            "<details><summary>engine: statement and plan</summary>",
            "",
            "```sql",
            plans["engine_sql"].strip(),
            f"-- parameters: {plans.get('engine_params', '')}",
            "```",
            "```",
            plans["engine"],
            "```",
            "</details>",
            "",
            "<details><summary>hand-written twin: statement and plan</summary>",
            "",
            "```sql",
            plans["hand_sql"].strip(),
            "```",
            "```",
            plans["hand"],
            "```",
            "</details>",
            "",
        ]
    return lines


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Measured {report['started_at']} on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB"
        f" ({m['os']}, Python {m['python']}, SQLite {m['sqlite']}); load average at start "
        f"{m['load_at_start']}, at end {m.get('load_at_end')}. Median of {report['repeats']} "
        "runs, min–max in brackets.",
        "",
    ]
    for result in report["results"]:
        if set(result["sections"]) <= {"pack"} and result is not report["results"][-1]:
            continue
        lines += [f"### {result['backend']}, {result['customers']:,} customers", ""]
        lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += [
            "| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows(result)
        ]
        lines.append("")
        lines += plan_lines(result)
        detail = partition_table(result)
        if detail:
            lines += [
                f"### 9 partitions: the pack's real run split across K processes, "
                f"{result['backend']}, {result['customers']:,} customers",
                "",
                "| " + " | ".join(PARTITION_HEADERS) + " |",
                "|" + "---|" * len(PARTITION_HEADERS),
            ]
            lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in detail]
            lines.append("")
    lines += [
        "### Growth (whole pack, dry-run)",
        "",
        "| backend | customers | dry-run s | run s | scan s | pack peak MB | time growth ÷ "
        "customer growth | memory growth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in report["scaling"]:
        lines.append(
            f"| {g['backend']} | {g['customers']:,} | {g['dry_run_s']:.3f} | {g['run_s']:.3f} | "
            f"{g['scan_s']:.3f} | {g['pack_peak_rss_mb']} | "
            f"{g.get('time_growth_per_customer_growth', '')} | {g.get('memory_growth', '')} |"
        )
    return "\n".join(lines) + "\n"
