"""The effect report as one self-contained page, in the dry-run report's style.

Built from the JSON document, so the page shows the numbers machines see; every number a
reader compares carries a ``data-`` attribute, which the Chromium test reads back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.reports.dryrun import REASONS
from engine.reports.effect_text import percent, points, simulated_banner, verdict_text
from engine.reports.html import _CSS, bar_chart
from engine.reports.html import _esc as esc

_EXTRA_CSS = """
.banner{background:#fff3cd;border:1px solid #e0b84a;color:#5c4400;border-radius:8px;
padding:8px 12px;margin:0 auto 16px;max-width:960px;font-weight:600}
.goal h3{font-size:.9rem;margin:12px 0 4px;color:#3a4454}
.goal p{font-size:.85rem;margin:6px 0}
.verdict{font-weight:600;margin:8px 0 0}
.verdict.lift{color:#2e7d4f}.verdict.harm{color:#b3261e}
.verdict.not_enough_data,.verdict.no_holdout,.verdict.no_clear_effect{color:#5b6575}
"""
_TREATED, _HOLDOUT = "#2e9d5b", "#8a63d2"


def rate_chart(goal: Mapping[str, Any], chart_id: str, width: int = 420) -> str:
    """Goal rate per arm as bars from 0 to 100%, with the 95% interval as a whisker."""
    arms = [("执行组 treated", goal["treated"], _TREATED)]
    if goal["holdout"] is not None:
        arms.append(("对照组 holdout", goal["holdout"], _HOLDOUT))
    label_w, bar_h, gap, scale = 110, 24, 12, width - 110 - 60
    height = len(arms) * (bar_h + gap) + gap + 14
    parts = [
        f'<svg id="{esc(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, arm, colour) in enumerate(arms):
        y = gap + i * (bar_h + gap)
        rate = arm["rate"] or 0.0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" font-size="12" text-anchor="end">'
            f"{esc(label)}</text>"
            f'<rect class="rate" data-arm="{"treated" if i == 0 else "holdout"}" '
            f'data-rate="{rate:.6f}" x="{label_w}" y="{y}" width="{max(1.0, scale * rate):.1f}" '
            f'height="{bar_h}" rx="3" fill="{colour}"/>'
        )
        if arm["ci95"]:
            lo, hi = (label_w + scale * v for v in arm["ci95"])
            mid = y + bar_h / 2
            parts.append(
                f'<path d="M{lo:.1f} {mid - 6}v12M{lo:.1f} {mid}H{hi:.1f}M{hi:.1f} {mid - 6}v12" '
                'stroke="#1d2430" stroke-width="1.5" fill="none"/>'
            )
        parts.append(
            f'<text x="{label_w + scale * rate + 6:.1f}" y="{y + bar_h + 10}" font-size="11" '
            f'fill="#3a4454">{percent(arm["rate"])} ({arm["met"]:,}/{arm["n"]:,})</text>'
        )
    axis = height - 4
    parts.append(
        f'<text x="{label_w}" y="{axis}" font-size="10" fill="#5b6575">0%</text>'
        f'<text x="{label_w + scale}" y="{axis}" font-size="10" fill="#5b6575" '
        'text-anchor="end">100%</text></svg>'
    )
    return "".join(parts)


def _counts_rows(p: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    t, m = p["triggered"], p["messages"]
    rows = [
        ("执行客户 customers acted", t["customers"], "#3b6fd8"),
        ("对照组 held out", t["held_out"], _HOLDOUT),
        ("已送达 sent", m.get("sent", 0), _TREATED),
        ("失败 failed", m.get("failed", 0), "#b3261e"),
        ("待发 pending", m.get("pending", 0), "#9aa3b2"),
    ]
    return rows


def _suppressed_rows(p: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    """Short labels (Chinese and the stable reason id): the English ones are long."""
    return [
        (f"{REASONS.get(k, (k, k))[0]} {k}", float(v), "#d9822b")
        for k, v in p["suppressed"].items()
    ]


def _goal_block(p: Mapping[str, Any], min_arm: int) -> str:
    goal = p["goal"]
    if goal is None:
        return '<p class="sub">没有效果目标 no goal (add goal: to measure the effect)</p>'
    treated, holdout, found = goal["treated"], goal["holdout"], goal["lift"]
    attrs = {
        "data-verdict": goal["verdict"],
        "data-treated-n": treated["n"],
        "data-treated-met": treated["met"],
        "data-holdout-n": holdout["n"] if holdout else "",
        "data-holdout-met": holdout["met"] if holdout else "",
    }
    rows = [
        f"<tr><td>{name}</td><td class='num'>{arm['n']:,}</td><td class='num'>{arm['met']:,}</td>"
        f"<td class='num'>{percent(arm['rate'])}</td><td class='num'>"
        + (f"{percent(arm['ci95'][0])}–{percent(arm['ci95'][1])}" if arm["ci95"] else "—")
        + f"</td><td class='num'>{arm['pending']:,}</td></tr>"
        for name, arm in (("执行组 treated", treated), ("对照组 holdout", holdout))
        if arm is not None
    ]
    lift_line = ""
    if found is not None:
        attrs["data-difference"] = f"{found['difference']:.6f}"
        attrs["data-ci-low"] = f"{found['ci95'][0]:.6f}"
        attrs["data-ci-high"] = f"{found['ci95'][1]:.6f}"
        if goal["verdict"] != "not_enough_data":
            rel = found["relative"]
            lift_line = (
                f"<p>提升 lift <b>{points(found['difference'])}</b> 个百分点 points "
                f"(95% CI {points(found['ci95'][0])} to {points(found['ci95'][1])})"
                + (f", relative {rel * 100:+.0f}%" if rel is not None else "")
                + "</p>"
            )
    data = " ".join(f'{k}="{esc(v)}"' for k, v in attrs.items())
    chart = rate_chart(goal, "rates-" + str(p["id"]))
    return (
        f'<div class="goal" {data}><h3>目标 Goal: {esc(goal["description"])}</h3>'
        f'<div class="chart">{chart}</div>'
        "<table><tr><th>组 arm</th><th class='num'>n</th><th class='num'>达成 met</th>"
        "<th class='num'>rate</th><th class='num'>95% CI</th><th class='num'>pending</th></tr>"
        + "".join(rows)
        + "</table>"
        + lift_line
        + f'<p class="verdict {esc(goal["verdict"])}">{esc(verdict_text(goal, min_arm))}</p></div>'
    )


def render_effect_html(report: Mapping[str, Any], title: str = "剧本效果评估 Effect report") -> str:
    since = report["since"] or "—"
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<div class="meta">{esc(since)} … {esc(report["until"])} · as of {esc(report["as_of"])}'
        f" · {len(report['playbooks'])} playbook(s)</div>",
    ]
    banner = simulated_banner(report)
    if banner:
        body.append(f'<div class="banner" id="simulated">{esc(banner)}</div>')
    for p in report["playbooks"]:
        tasks = p["tasks"]
        outcomes = ", ".join(f"{k} {v:,}" for k, v in tasks["outcomes"].items()) or "—"
        body.append(
            f'<section id="pb-{esc(p["id"])}" data-customers="{p["triggered"]["customers"]}" '
            f'data-held-out="{p["triggered"]["held_out"]}" data-sent="{p["messages"]["sent"]}" '
            f'data-failed="{p["messages"]["failed"]}" data-tasks-done="{tasks["done"]}">'
            f"<h2>{esc(p['title'])}</h2>"
            f'<div class="sub">{esc(p["id"])} · runs {p["runs"]:,} · holdout '
            f"{p['holdout_percent']:g}% · tasks open {tasks['open']:,}, done {tasks['done']:,} "
            f"({esc(outcomes)})</div>"
            '<div class="charts"><div class="chart"><h3>执行与送达 Actions and delivery</h3>'
            + bar_chart(_counts_rows(p), chart_id=f"counts-{p['id']}")
            + '</div><div class="chart"><h3>拦截(按运行计) Suppressed, per run</h3>'
            + bar_chart(_suppressed_rows(p), chart_id=f"suppressed-{p['id']}")
            + "</div></div>"
            + _goal_block(p, report["min_arm"])
            + "</section>"
        )
    body.append(
        '<div class="meta">每位客户按其在期间内的首次记录计一次;窗口未结束的计为 pending。'
        "Each customer counts once, from their first record in the period; windows not yet "
        "ended are pending. 95% intervals: Wilson per arm, Newcombe (hybrid score) for the "
        f"difference. Arms under {report['min_arm']} customers: not enough data.</div>"
    )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )
