"""A self-contained HTML dry-run report: one file, no scripts, readable on a phone.

Charts are inline SVG drawn here, so the report opens anywhere (mail attachment, intranet,
a manager's phone) without network access. It is built from the dry-run JSON document, so
the numbers on the page are the numbers machines see.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from engine.reports.labels import reason_label

_CSS = """
body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",
sans-serif;margin:0;padding:16px;background:#f6f7f9;color:#1d2430}
h1{font-size:1.3rem;margin:0 0 4px}
.meta{color:#5b6575;font-size:.85rem;margin-bottom:16px}
section{background:#fff;border-radius:10px;padding:14px 16px;margin:0 auto 16px;max-width:960px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:1.05rem;margin:0 0 2px}
.sub{color:#5b6575;font-size:.8rem;margin-bottom:10px;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{flex:1 1 280px;min-width:0}
.chart h3{font-size:.85rem;margin:6px 0;color:#3a4454}
svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:.8rem;margin-top:8px}
td,th{border-bottom:1px solid #e6e8ec;padding:4px 6px;text-align:left;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums}
.samples td{word-break:break-all}
.samples td:nth-child(-n+2){white-space:nowrap;word-break:normal}
"""
_COLORS = {"matched": "#3b6fd8", "suppressed": "#d9822b", "held_out": "#8a63d2", "acted": "#2e9d5b"}


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _text_width(text: str, size: float = 12) -> int:
    """Rough rendered width: CJK glyphs are square, Latin ones about half as wide."""
    return int(sum(size if ord(ch) > 0x2E80 else size * 0.55 for ch in text))


def bar_chart(rows: Sequence[tuple[str, float, str]], *, chart_id: str, width: int = 420) -> str:
    """Horizontal bars: (label, value, colour). Each bar carries data-value for checks."""
    if not rows:
        return '<p class="sub">—</p>'
    top = max(v for _, v, _ in rows) or 1
    longest = max(_text_width(label) for label, _, _ in rows)
    label_w, bar_h, gap = min(240, max(80, longest + 12)), 22, 8
    height = len(rows) * (bar_h + gap) + gap
    parts = [
        f'<svg id="{_esc(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value, colour) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(1.0, (width - label_w - 70) * value / top)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">'
            f"{_esc(label)}</text>"
            f'<rect class="bar" data-label="{_esc(label)}" data-value="{value:g}" x="{label_w}" '
            f'y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" fill="{colour}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">{value:,.0f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def funnel_rows(playbook: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    counts = playbook["counts"]
    """The same funnel as the text view: matched − held out − customers held back, by reason,
    = acted; the bars add up (single actions held back are not customers lost)."""
    rows = [("符合条件 matched", counts["matched"], _COLORS["matched"])]
    if counts.get("held_out"):
        rows.append(("− 对照组 held out", counts["held_out"], _COLORS["held_out"]))
    for reason, n in sorted(counts.get("held_back", {}).items(), key=lambda kv: -kv[1]):
        rows.append((f"− {reason_label(reason)}", n, _COLORS["suppressed"]))
    rows.append(("= 执行客户 acted", counts["customers_acted"], _COLORS["acted"]))
    return rows


def render_html(
    report: Mapping[str, Any],
    facets: Mapping[str, Mapping[str, Mapping[str, int]]],
    *,
    title: str = "客户维护剧本预演 Dry-run report",
    samples: int = 5,
    masked: bool = True,
) -> str:
    """``facets``: playbook id → facet name (e.g. "客户等级 tier") → value → customers.
    ``masked`` says what the page claims about personal data: it must be the truth."""
    shown = "personal data masked" if masked else "PERSONAL DATA SHOWN 含未脱敏个人信息"
    content = "内容 (masked)" if masked else "内容 (not masked)"
    body = [
        f"<h1>{_esc(title)}</h1>",
        f'<div class="meta">as of {_esc(report["as_of"])} · '
        f"{len(report['playbooks'])} playbook(s) · {shown}</div>",
    ]
    for p in report["playbooks"]:
        pid = p["id"]
        charts = [
            '<div class="chart"><h3>漏斗 Funnel</h3>'
            + bar_chart(funnel_rows(p), chart_id=f"funnel-{pid}")
            + "</div>"
        ]
        for name, counts in facets.get(pid, {}).items():
            rows = [
                (k, float(v), "#5a7bbf") for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
            ]
            charts.append(
                f'<div class="chart"><h3>{_esc(name)}</h3>'
                + bar_chart(rows[:12], chart_id=f"facet-{pid}-{len(charts)}")
                + "</div>"
            )
        actions = p["counts"].get("actions", {})
        kinds = ", ".join(f"{k} ×{n:,}" for k, n in sorted(actions.items())) or "none"
        sample_rows = "".join(
            f"<tr><td>{_esc(a['customer_id'])}</td><td>{_esc(a['type'])}</td>"
            f"<td>{_esc(a.get('title') or a.get('body') or '')}</td></tr>"
            for a in p["actions"][:samples]
        )
        body.append(
            f'<section id="pb-{_esc(pid)}" data-matched="{p["counts"]["matched"]}" '
            f'data-acted="{p["counts"]["customers_acted"]}">'
            f"<h2>{_esc(p['title'])}</h2>"
            f'<div class="sub">{_esc(pid)} · window {_esc(p["window"])} · '
            f"actions: {_esc(kinds)}</div>"
            f'<div class="charts">{"".join(charts)}</div>'
            f'<table class="samples"><tr><th>客户</th><th>动作</th><th>{content}</th></tr>'
            f"{sample_rows}</table></section>"
        )
    for skipped in report.get("not_scheduled", []):
        body.append(
            f'<section><h2>{_esc(skipped["id"])}</h2><div class="sub">not scheduled on this day '
            f"({_esc(skipped['schedule'])})</div></section>"
        )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )
