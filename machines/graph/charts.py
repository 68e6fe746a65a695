"""Server-rendered SVG charts of a ``summarize … by`` result: a bar chart and a donut chart. Pure.

The label is the first string column and the value the first numeric column; the largest ``MAX_SLICES - 1`` values
are drawn and the rest summed as "Other". Every label is escaped; nothing but numbers and escaped text enters the
SVG, so it can be inlined in the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#0078d4", "#107c10", "#d83b01", "#5c2d91", "#008272", "#b4009e", "#ffb900", "#004e8c", "#a4262c",
           "#498205", "#8764b8", "#69797e")  # fmt: skip
MAX_SLICES = 10


@dataclass(frozen=True)
class ChartData:
    label: str  # the label column's name
    measure: str  # the value column's name
    points: tuple[tuple[str, float], ...]

    @property
    def total(self) -> float:
        return sum(value for _, value in self.points)


def chart_data(columns, rows) -> ChartData | None:
    """``columns`` are (name, type) pairs; None when the result has no label and numeric column to draw."""
    label = next((i for i, (_, t) in enumerate(columns) if t in ("string", "dynamic", "datetime", "bool")), None)
    measure = next((i for i, (_, t) in enumerate(columns) if t in ("long", "real")), None)
    if label is None or measure is None or not rows:
        return None
    points = []
    for row in rows:
        value = row[measure]
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            name = row[label]
            points.append(("(empty)" if name in (None, "") else str(name), float(value)))
    if not points:
        return None
    points.sort(key=lambda p: p[1], reverse=True)
    if len(points) > MAX_SLICES:
        points = [*points[: MAX_SLICES - 1], ("Other", sum(v for _, v in points[MAX_SLICES - 1 :]))]
    return ChartData(columns[label][0], columns[measure][0], tuple(points))


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def _short(text: str, size: int = 28) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def bar_svg(data: ChartData) -> str:
    width, bar, gap, left, right = 720, 24, 10, 210, 90
    height = len(data.points) * (bar + gap) + gap + 24
    top = max((v for _, v in data.points), default=0) or 1
    parts = [
        f'<svg class="chart chart-bar" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{escape(data.measure)} by {escape(data.label)}</title>'
    ]
    for index, (name, value) in enumerate(data.points):
        y = gap + index * (bar + gap)
        length = max(0.0, (width - left - right) * value / top)
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<g class="bar"><text x="{left - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end">{escape(_short(name))}'
            f'</text><rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" fill="{color}">'
            f"<title>{escape(name)}: {_number(value)}</title></rect>"
            f'<text x="{left + length + 6:.1f}" y="{y + bar * 0.7:.1f}">{_number(value)}</text></g>'
        )
    parts.append(f'<text x="{left}" y="{height - 6}" class="axis">{escape(data.measure)}</text></svg>')
    return "".join(parts)


def donut_svg(data: ChartData) -> str:
    size, radius, stroke = 260, 90, 42
    centre = size / 2
    circumference = 2 * math.pi * radius
    total = data.total or 1
    parts = [
        f'<svg class="chart chart-donut" role="img" viewBox="0 0 {size + 300} {size}" width="{size + 300}"'
        f' height="{size}" xmlns="http://www.w3.org/2000/svg"><title>{escape(data.measure)} by'
        f" {escape(data.label)}</title>"
    ]
    offset = 0.0
    for index, (name, value) in enumerate(data.points):
        share = value / total
        length = share * circumference
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<circle class="slice" cx="{centre}" cy="{centre}" r="{radius}" fill="none" stroke="{color}"'
            f' stroke-width="{stroke}" stroke-dasharray="{length:.2f} {circumference - length:.2f}"'
            f' stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {centre} {centre})">'
            f"<title>{escape(name)}: {_number(value)} ({share:.0%})</title></circle>"
        )
        y = 24 + index * 22
        parts.append(
            f'<g class="legend"><rect x="{size + 20}" y="{y - 11}" width="12" height="12" fill="{color}"/>'
            f'<text x="{size + 38}" y="{y}">{escape(_short(name))} — {_number(value)} ({share:.0%})</text></g>'
        )
        offset += length
    parts.append(
        f'<text x="{centre}" y="{centre + 6}" text-anchor="middle" class="total">{_number(data.total)}</text></svg>'
    )
    return "".join(parts)
