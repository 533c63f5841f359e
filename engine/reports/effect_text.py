"""The effect report for a terminal: one block per playbook, the goal comparison in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.reports.labels import reason_label

VERDICTS: dict[str, tuple[str, str]] = {
    "lift": (
        "有效:执行组达成率高于对照组",
        "higher with the playbook: the 95% interval is above 0",
    ),
    "harm": ("执行组达成率低于对照组", "lower with the playbook: the 95% interval is below 0"),
    "no_clear_effect": ("差异不明显", "no clear difference: the 95% interval includes 0"),
    "not_enough_data": ("数据不足", "not enough data"),
    "no_holdout": (
        "无对照组,无法比较",
        "no holdout group to compare with (set holdout_percent to measure the effect)",
    ),
}


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def points(value: float) -> str:
    return f"{value * 100:+.1f}"


def verdict_text(goal: Mapping[str, Any], min_arm: int) -> str:
    zh, en = VERDICTS[goal["verdict"]]
    if goal["verdict"] == "not_enough_data":
        t, h = goal["treated"]["n"], (goal["holdout"] or {}).get("n", 0)
        en += (
            f": each arm needs at least {min_arm} customers whose window has ended "
            f"(treated {t}, holdout {h})"
        )
    return f"{zh} · {en}"


def simulated_banner(report: Mapping[str, Any]) -> str | None:
    sims = report.get("simulated") or []
    if not sims:
        return None
    parts = [f"from {s['start']}, {s['days']} days, seed {s['seed']}" for s in sims]
    return (
        "SIMULATED outcomes in this store 本库含模拟数据 (demo-outcomes " + "; ".join(parts) + ")"
    )


def render_text(report: Mapping[str, Any]) -> str:
    since = report["since"] or "the beginning"
    lines = [f"effect report · {since} … {report['until']} · as of {report['as_of']}"]
    banner = simulated_banner(report)
    if banner:
        lines.append(f"!! {banner}")
    for p in report["playbooks"]:
        t = p["triggered"]
        lines += [
            "",
            f"{p['id']}  {p['title']}",
            f"  runs {p['runs']:,} · customers acted {t['customers']:,} · "
            f"held out {t['held_out']:,} · ledger rows {t['ledger_rows']:,}",
            "  messages: " + " · ".join(f"{k} {v:,}" for k, v in p["messages"].items()),
            "  suppressed: "
            + (
                " · ".join(f"{reason_label(k)} {v:,}" for k, v in p["suppressed"].items()) or "none"
            ),
        ]
        tasks = p["tasks"]
        outcomes = ", ".join(f"{k} {v:,}" for k, v in tasks["outcomes"].items())
        lines.append(
            "  tasks: "
            + " · ".join(f"{s} {tasks[s]:,}" for s in ("open", "done", "cancelled"))
            + (f" (outcomes: {outcomes})" if outcomes else "")
        )
        goal = p["goal"]
        if goal is None:
            lines.append("  goal: none (add goal: to the playbook to measure its effect)")
            continue
        lines.append(f"  goal: {goal['description']}")
        lines.append("    " + _arm("treated 执行组", goal["treated"]))
        if goal["holdout"] is not None:
            lines.append("    " + _arm("holdout 对照组", goal["holdout"]))
        found = goal["lift"]
        if found is not None and goal["verdict"] != "not_enough_data":
            low, high = found["ci95"]
            rel = found["relative"]
            lines.append(
                f"    lift 提升 {points(found['difference'])} points (95% CI {points(low)} to "
                f"{points(high)})" + (f", relative {rel * 100:+.0f}%" if rel is not None else "")
            )
        lines.append(f"    → {verdict_text(goal, report['min_arm'])}")
    return "\n".join(lines) + "\n"


def _arm(name: str, arm: Mapping[str, Any]) -> str:
    ci = arm["ci95"]
    interval = f"95% CI {percent(ci[0])}–{percent(ci[1])}" if ci else "no ended window yet"
    pending = f" · pending {arm['pending']:,}" if arm["pending"] else ""
    return f"{name:<16} {percent(arm['rate']):>6} ({arm['met']:,}/{arm['n']:,}) {interval}{pending}"
