"""Charts drawn on the server as inline SVG (issue 14: no JavaScript, the CSP forbids script):
bars with their numbers in a ``<title>`` each (a tooltip, and read by screen readers), always
beside a table of the same figures on the page.  Pure: text in, markup out, every text
escaped (a partner's id or a reason code is data, never markup).  Colours come from
console.css classes (the CSP allows no inline style)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 720
BAR_AREA = 150
LABEL_HEIGHT = 34
ROW_HEIGHT = 22
LABEL_WIDTH = 190


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float


#: Characters of a group's label that fit left of the bars (the whole label is in the table
#: and in each bar's title).
LABEL_CHARACTERS = 28


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARACTERS else label[:LABEL_CHARACTERS - 1] + "…"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def column_chart(title: str, bars: Sequence[Bar], css: str = "series-a",
                 every: int = 1) -> Markup:
    """Vertical bars over time (one per bucket), ``every`` n-th label written under them."""
    if not bars:
        return Markup("")
    top = max((b.value for b in bars), default=0) or 1
    step = WIDTH / len(bars)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {BAR_AREA + LABEL_HEIGHT}" '
             f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)} (max {_number(top)})</title>",
             f'<line class="axis" x1="0" y1="{BAR_AREA}" x2="{WIDTH}" y2="{BAR_AREA}"/>']
    for index, bar in enumerate(bars):
        height = BAR_AREA * max(bar.value, 0) / top
        x = index * step
        parts.append(f'<rect class="{escape(css)}" x="{x + step * 0.1:.1f}" '
                     f'y="{BAR_AREA - height:.1f}" width="{step * 0.8:.1f}" '
                     f'height="{height:.1f}"><title>{escape(bar.label)}: '
                     f"{_number(bar.value)}</title></rect>")
        if index % max(every, 1) == 0:
            parts.append(f'<text class="tick" x="{x + step / 2:.1f}" y="{BAR_AREA + 14}" '
                         f'text-anchor="middle">{escape(bar.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def range_chart(title: str, rows: Sequence[tuple[str, float | None, float | None]],
                unit: str = "s") -> Markup:
    """Horizontal bars, one row per group: the p50 bar inside the p90 bar (both from zero)."""
    if not rows:
        return Markup("")
    top = max((v for _, a, b in rows for v in (a, b) if v is not None), default=0) or 1
    scale = (WIDTH - LABEL_WIDTH - 80) / top
    height = ROW_HEIGHT * len(rows) + 8
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for index, (label, p50, p90) in enumerate(rows):
        y = 4 + index * ROW_HEIGHT
        parts.append(f'<text class="label" x="{LABEL_WIDTH - 6}" y="{y + 14}" '
                     f'text-anchor="end">{escape(_short(label))}</text>')
        for value, css, inset in ((p90, "p90", 0), (p50, "p50", 4)):
            if value is None:
                continue
            parts.append(f'<rect class="{css}" x="{LABEL_WIDTH}" y="{y + 2 + inset}" '
                         f'width="{max(value, 0) * scale:.1f}" height="{16 - 2 * inset}">'
                         f"<title>{escape(label)} {css}: {_number(value)} {escape(unit)}"
                         "</title></rect>")
        shown = " / ".join("-" if v is None else _number(v) for v in (p50, p90))
        parts.append(f'<text class="value" x="{LABEL_WIDTH + (p90 or p50 or 0) * scale + 6:.1f}"'
                     f' y="{y + 14}">{escape(shown)} {escape(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
