"""The status page's pictures as inline SVG: no JavaScript, no build step, no fetch.

Each function returns a self-contained ``<svg>`` that scales to its container's width
(``viewBox`` with ``width=100%``), so a chart never widens a phone's page. Every bar
carries a ``<title>`` (the browser's tooltip) with its exact value, and the numbers that
matter are also printed as text beside the chart for people who cannot see colours.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta


def orders_per_hour(counts: Sequence[int], now: datetime) -> str:
    """24 bars, oldest hour first; the x axis marks every sixth hour (UTC)."""
    width, height, top = 240, 70, 10
    peak = max(max(counts, default=0), 1)
    start = now - timedelta(hours=len(counts))
    bars, labels = [], []
    for index, count in enumerate(counts):
        bar = (height - top - 12) * count / peak
        hour = start + timedelta(hours=index + 1)
        x = index * width / len(counts)
        bars.append(f"<rect x='{x + 1:.1f}' y='{height - 12 - bar:.1f}' "
                    f"width='{width / len(counts) - 2:.1f}' height='{bar:.1f}' "
                    f"class='bar'><title>{hour:%H}:00 UTC: {count} order(s)</title></rect>")
        if index % 6 == 5:
            labels.append(f"<text x='{x + width / len(counts) / 2:.1f}' y='{height - 1}' "
                          f"text-anchor='middle'>{hour:%H}h</text>")
    return (f"<svg id='orders-chart' viewBox='0 0 {width} {height}' width='100%' "
            f"role='img' aria-label='orders per hour, last 24 hours, peak {peak}'>"
            f"<text x='0' y='{top - 2}'>peak {max(counts, default=0)}/h</text>"
            + "".join(bars) + "".join(labels) + "</svg>")


def latency(rows: Sequence[tuple[str, float | None, float | None, int]],
            target: float = 30.0) -> str:
    """p50 and p95 bars per window (hour, day) with the target as a line."""
    width, row_height = 240, 22
    scale = max([target * 1.5] + [v for _, p50, p95, _ in rows for v in (p50, p95) if v])
    parts = []
    for index, (label, p50, p95, count) in enumerate(rows):
        y = index * row_height + 4
        parts.append(f"<text x='0' y='{y + 12}'>{html.escape(label)}</text>")
        for offset, name, value in ((0, "p50", p50), (8, "p95", p95)):
            if value is None:
                continue
            bar = (width - 60) * value / scale
            parts.append(f"<rect x='60' y='{y + offset}' width='{bar:.1f}' height='7' "
                         f"class='bar {name}'><title>{label} {name} {value:.1f} s "
                         f"({count} push(es))</title></rect>")
        if not count:
            parts.append(f"<text x='62' y='{y + 12}' class='muted'>no pushes</text>")
    line = 60 + (width - 60) * target / scale
    height = row_height * len(rows) + 6
    parts.append(f"<line x1='{line:.1f}' x2='{line:.1f}' y1='0' y2='{height}' "
                 f"class='target'><title>target {target:g} s</title></line>")
    return (f"<svg id='latency-chart' viewBox='0 0 {width} {height}' width='100%' role='img' "
            "aria-label='stock change to accepted latency'>" + "".join(parts) + "</svg>")


def budget_bar(used_share: float, throttled: int) -> str:
    """One bucket: the share of its burst in use, red when it was throttled."""
    used = min(max(used_share, 0.0), 1.0)
    kind = "bar throttled" if throttled else "bar"
    return (f"<svg class='budget' viewBox='0 0 100 8' width='100%' preserveAspectRatio='none' "
            f"role='img' aria-label='{used:.0%} in use'><rect x='0' y='0' width='100' "
            f"height='8' class='track'/><rect x='0' y='0' width='{used * 100:.1f}' height='8' "
            f"class='{kind}'><title>{used:.0%} of the burst in use</title></rect></svg>")
