"""Charts as inline SVG, drawn in Python: horizontal bars, stacked bars and grouped columns.

Every chart is one ``<svg>`` with a ``viewBox`` (it scales to its box: a phone shrinks it, a
printer draws it as vectors) and ``role="img"`` with a label for screen readers.  Each bar is a
``<rect class="bar ...">`` with a ``<title>`` (the browser's tooltip) and the value written
beside it, so the numbers are read without hovering; colours come from the page's CSS classes.
Bars of zero draw no ``<rect>``.  Every piece of text goes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: The drawing's width in SVG units; the page scales it to the column's width.
WIDTH = 400


def esc(text: object) -> str:
    """Text made safe for HTML and SVG, in element content and in quoted attributes.

    >>> esc('<script>"x" & \\'y\\'</script>')
    '&lt;script&gt;&quot;x&quot; &amp; &#x27;y&#x27;&lt;/script&gt;'
    """
    return html.escape(str(text), quote=True)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, its value, a note shown after the label and a CSS class (colour)."""

    label: str
    value: int
    note: str = ""
    css: str = ""


@dataclass(frozen=True, slots=True)
class Stack:
    """One stacked bar: a label and its parts (CSS class, value, name of the part)."""

    label: str
    parts: tuple[tuple[str, int, str], ...]

    @property
    def total(self) -> int:
        """The sum of the parts."""
        return sum(v for _, v, _ in self.parts)


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 3, 4, 5, 6, 8 x 10^k at or above ``value`` (an axis maximum).

    >>> [nice_ceiling(v) for v in (0, 1, 3, 7, 51, 200, 201, 9001)]
    [1, 1, 3, 8, 60, 200, 300, 10000]
    """
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 3, 4, 5, 6, 8, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _open(height: float, label: str, css: str) -> str:
    return (f'<svg class="chart {esc(css)}" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
            f'aria-label="{esc(label)}" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{esc(label)}</title>")


def bar_chart(bars: Sequence[Bar], *, label: str, unit: str = "", css: str = "") -> str:
    """Horizontal bars, one row each: the label (and note) above, the bar with its value below."""
    return _rows([(b.label, b.note, ((b.css, b.value, f"{b.value:,}{unit}"),)) for b in bars], label, css)


def stacked_chart(stacks: Sequence[Stack], *, label: str, css: str = "") -> str:
    """Horizontal stacked bars (one row per stack, parts left to right), the total after each."""
    return _rows([(s.label, "", tuple((c, v, f"{name}: {v:,}") for c, v, name in s.parts)) for s in stacks],
                 label, css)


def _rows(rows: Sequence[tuple[str, str, tuple[tuple[str, int, str], ...]]], label: str, css: str) -> str:
    """One row per (label, note, parts): the label above, the parts' bars side by side below, then their sum.

    A part is (CSS class, value, its tooltip after the row's label).
    """
    row, top = 40, 4
    scale_max = max((sum(v for _, v, _ in parts) for _, _, parts in rows), default=0) or 1
    room = WIDTH - 72  # leaves space for the value after the longest bar
    out = [_open(top + row * len(rows), label, css)]
    for i, (name, note, parts) in enumerate(rows):
        y = top + i * row
        extra = f'<tspan class="note"> {esc(note)}</tspan>' if note else ""
        out.append(f'<text class="label" x="0" y="{y + 13}">{esc(name)}{extra}</text>')
        x = 0.0
        for part_css, value, tip in parts:
            if value <= 0:
                continue
            width = room * value / scale_max
            out.append(
                f'<rect class="bar {esc(part_css)}" x="{x:.1f}" y="{y + 18}" width="{max(width, 2):.1f}" height="14">'
                f"<title>{esc(name)}: {esc(tip)}</title></rect>"
            )
            x += width
        out.append(f'<text class="value" x="{x + 6:.1f}" y="{y + 30}">{sum(v for _, v, _ in parts):,}</text>')
    out.append("</svg>")
    return "".join(out)


def column_chart(
    groups: Sequence[tuple[str, Sequence[tuple[str, int, str]]]], *, label: str, css: str = "",
    every: int = 1,
) -> str:
    """Grouped vertical columns: per group (x label) its series (CSS class, value, name),
    side by side, on a y axis from 0; x labels on every ``every``-th group."""
    height, top, bottom, left, right = 240, 20, 34, 34, 4
    plot_h = height - top - bottom
    plot_w = WIDTH - left - right
    peak = max((v for _, series in groups for _, v, _ in series), default=0)
    y_max = nice_ceiling(peak)
    out = [_open(height, label, css)]
    base = top + plot_h
    for tick in sorted({0, y_max // 2, y_max} if y_max % 2 == 0 else {0, y_max}):
        y = base - plot_h * tick / y_max
        out.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    slot = plot_w / max(len(groups), 1)
    for i, (name, series) in enumerate(groups):
        n = max(len(series), 1)
        bar_w = min(slot * 0.8 / n, 28)
        x0 = left + i * slot + (slot - bar_w * n) / 2
        for j, (series_css, value, series_name) in enumerate(series):
            if value <= 0:
                continue
            h = max(plot_h * value / y_max, 1.5)
            x = x0 + j * bar_w
            out.append(
                f'<rect class="bar {esc(series_css)}" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}"><title>{esc(name)}, {esc(series_name)}: {value:,}</title></rect>'
            )
            out.append(f'<text class="value small" x="{x + (bar_w - 1) / 2:.1f}" y="{base - h - 3:.1f}" '
                       f'text-anchor="middle">{value:,}</text>')
        if i % every == 0:
            out.append(f'<text class="tick" x="{left + i * slot + slot / 2:.1f}" y="{base + 16}" '
                       f'text-anchor="middle">{esc(name)}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{WIDTH - right}" y1="{base}" y2="{base}"/>')
    out.append("</svg>")
    return "".join(out)
