"""Server-rendered SVG charts (no JavaScript): horizontal bars with their numbers written
out, a title and a description for screen readers; pages also show the same data as a
table."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BAR_COLOURS = ("#1d4f91", "#b35900")  # both reach 4.5:1 on white (text drawn beside bars)


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    *,
    series: Sequence[str] = (),
    chart_id: str = "chart",
) -> str:
    """`rows`: (label, values per series). Returns an inline `<svg>` element."""
    label_width, bar_space, row_height, gap = 220, 300, 22, 8
    n_series = max((len(values) for _, values in rows), default=1)
    group_height = row_height * n_series + gap
    legend_height = 24 if len(series) > 1 else 0
    height = legend_height + group_height * max(len(rows), 1) + 10
    width = label_width + bar_space + 60
    top = max((value for _, values in rows for value in values), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
    ]
    description = "; ".join(
        f"{label}: {', '.join(_number(v) for v in values)}" for label, values in rows
    )
    parts.append(f'<desc id="{chart_id}-d">{escape(description)}</desc>')
    if legend_height:
        x = 0
        for index, name in enumerate(series):
            colour = BAR_COLOURS[index % len(BAR_COLOURS)]
            parts.append(f'<rect x="{x}" y="4" width="14" height="14" fill="{colour}"/>')
            parts.append(f'<text x="{x + 20}" y="16" class="chart-text">{escape(name)}</text>')
            x += 40 + 9 * len(name)
    for row_index, (label, values) in enumerate(rows):
        y0 = legend_height + row_index * group_height
        short = label if len(label) <= 30 else label[:29] + "…"
        parts.append(
            f'<text x="0" y="{y0 + row_height * n_series / 2 + 5:.0f}" '
            f'class="chart-text">{escape(short)}</text>'
        )
        for index, value in enumerate(values):
            length = max(bar_space * value / top, 1 if value else 0)
            y = y0 + index * row_height
            colour = BAR_COLOURS[index % len(BAR_COLOURS)]
            parts.append(
                f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" '
                f'height="{row_height - 6}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{label_width + length + 6:.1f}" y="{y + row_height - 6}" '
                f'class="chart-text">{_number(value)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".replace(".", ",")
