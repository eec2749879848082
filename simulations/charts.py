"""Server-made charts: inline SVG bars, no script and nothing from outside the machine.

`grouped_bars` draws one group of bars per category (a cycle, a distribution bucket) and one
bar per series in it (a simulation run): the runs of a comparison stand side by side. Every
label is escaped; each bar carries a <title> with its exact value, and the numbers are in
the tables beside the chart for whoever does not read the picture.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from common.numbers import grouped

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 18, 46


def grouped_bars(
    *, title: str, categories: list[str], series: list[tuple[str, list]], unit: str = ""
) -> SafeString:
    """An SVG bar chart; `series` is [(name, [value per category])]."""
    count = max(len(categories), 1)
    runs = max(len(series), 1)
    top = max((float(v or 0) for _n, values in series for v in values), default=0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / count
    bar = max(min(slot * 0.8 / runs, 56), 3)
    parts = [
        f'<svg class="sim-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line class="sim-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<text class="sim-tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">'
        f"{escape(grouped(top))}</text>",
        f'<text class="sim-tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, category in enumerate(categories):
        group_x = LEFT + slot * i + (slot - bar * runs) / 2
        for j, (name, values) in enumerate(series):
            value = float(values[i] or 0) if i < len(values) else 0.0
            h = plot_h * value / top
            x, y = group_x + bar * j, TOP + plot_h - h
            label = f"{name}: {category}: {grouped(values[i] if i < len(values) else 0)}{unit}"
            parts.append(
                f'<rect class="sim-bar sim-series-{j}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar - 2:.1f}" height="{max(h, 0):.1f}"><title>{escape(label)}</title></rect>'
            )
            if bar >= 18:
                parts.append(
                    f'<text class="sim-value" x="{x + (bar - 2) / 2:.1f}" y="{y - 3:.1f}" '
                    f'text-anchor="middle">{escape(grouped(values[i] if i < len(values) else 0))}</text>'
                )
        parts.append(
            f'<text class="sim-label" x="{LEFT + slot * i + slot / 2:.1f}" '
            f'y="{TOP + plot_h + 16}" text-anchor="middle">{escape(_short(category))}</text>'
        )
    if len(series) > 1:
        x = LEFT
        for j, (name, _values) in enumerate(series):
            parts.append(
                f'<rect class="sim-series-{j}" x="{x}" y="{HEIGHT - 14}" width="10" height="10"/>'
                f'<text class="sim-legend" x="{x + 14}" y="{HEIGHT - 5}">{escape(_short(name, 40))}</text>'
            )
            x += 14 + 7 * min(len(name), 40) + 18
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def _short(text: str, size: int = 18) -> str:
    text = str(text)
    return text if len(text) <= size else text[: size - 1] + "…"
