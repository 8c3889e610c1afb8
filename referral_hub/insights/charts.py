"""Charts drawn on the server as SVG markup: nothing from other origins, no script.

Every chart is an `<svg role="img">` labelled by its own `<title>` and `<desc>` (through
aria-labelledby), so a screen reader announces what it shows; the numbers themselves live
in the table the template puts beside it. Text is escaped; colours are presentation
attributes (the CSP allows no inline style); fonts are the reader's own system fonts.

    bar_chart("sent", title, description, labels, values, value_labels)
    line_chart("months", title, description, x_labels, [Series(name, values), ...])

A value of None is a gap (a hidden or unknown figure): no bar or point is drawn, and its
value label (for example "<11") is written where the bar would start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Each colour has at least 4.5:1 contrast on white (WCAG 1.4.11 asks 3:1 for graphics);
# the line chart also gives each series its own marker shape, so colour is never the only
# cue.
PALETTE = ("#0b5d4b", "#1a4fd6", "#a4161a", "#7a4b00", "#5b2a86", "#00677f", "#4a5560")
INK = "#1b1f23"
MUTED = "#4a5560"
GRID = "#c9d1d6"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', sans-serif"
MARKERS = ("circle", "square", "triangle", "diamond")

WIDTH = 640
BAR_HEIGHT = 22
BAR_GAP = 10
LABEL_WIDTH = 236
VALUE_SPACE = 64
MAX_LABEL_CHARS = 30


@dataclass(frozen=True)
class Series:
    """One line of a line chart: its name (in the legend) and one value per x label."""

    name: str
    values: Sequence[float | None]


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    value_labels: Sequence[str] | None = None,
    *,
    color: str = PALETTE[0],
) -> Markup:
    """A horizontal bar chart: one bar per label, its value written at its end."""
    if len(labels) != len(values):
        raise ValueError("one value per label")
    value_labels = value_labels or [_plain(v) for v in values]
    top = 8
    height = top + len(labels) * (BAR_HEIGHT + BAR_GAP) + 24
    span = WIDTH - LABEL_WIDTH - VALUE_SPACE
    high = max((v for v in values if v is not None), default=0) or 1
    ticks = nice_ticks(high)
    scale = span / ticks[-1]
    parts = [_open(chart_id, title, description, WIDTH, height)]
    axis_y = height - 20
    for tick in ticks:
        x = LABEL_WIDTH + tick * scale
        parts.append(_line(x, top, x, axis_y, GRID))
        parts.append(_text(x, axis_y + 14, _plain(tick), anchor="middle", fill=MUTED, size=11))
    for n, (label, value, shown) in enumerate(zip(labels, values, value_labels, strict=True)):
        y = top + n * (BAR_HEIGHT + BAR_GAP)
        middle = y + BAR_HEIGHT / 2 + 4
        parts.append(f"<g>{_tooltip(f'{label}: {shown}')}")
        parts.append(_text(LABEL_WIDTH - 8, middle, _shorten(label), anchor="end"))
        length = 0.0 if value is None else max(value * scale, 0.0)
        if length > 0:
            parts.append(
                f'<rect x="{_n(LABEL_WIDTH)}" y="{_n(y)}" width="{_n(length)}" '
                f'height="{BAR_HEIGHT}" fill="{escape(color)}"/>'
            )
        parts.append(_text(LABEL_WIDTH + length + 6, middle, shown))
        parts.append("</g>")
    parts.append(_line(LABEL_WIDTH, top, LABEL_WIDTH, axis_y, INK))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every piece of text above is escaped)


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
) -> Markup:
    """A line chart over categories on the x axis (months), one line per series.

    A None value breaks the line; each series has its own colour and marker shape.
    """
    for s in series:
        if len(s.values) != len(x_labels):
            raise ValueError("one value per x label in every series")
    left, right, top = 56, 40, 16
    legend_rows = math.ceil(len(series) / 3) if series else 0
    plot_bottom = 240
    height = plot_bottom + 40 + legend_rows * 22
    high = max((v for s in series for v in s.values if v is not None), default=0) or 1
    ticks = nice_ticks(high)
    span_x = WIDTH - left - right
    step = span_x / max(len(x_labels) - 1, 1)

    def x_at(n: int) -> float:
        return left + (n * step if len(x_labels) > 1 else span_x / 2)

    def y_at(value: float) -> float:
        return plot_bottom - (value / ticks[-1]) * (plot_bottom - top)

    parts = [_open(chart_id, title, description, WIDTH, height)]
    for tick in ticks:
        y = y_at(tick)
        parts.append(_line(left, y, WIDTH - right, y, GRID))
        parts.append(_text(left - 6, y + 4, _plain(tick), anchor="end", fill=MUTED, size=11))
    # At most about seven labels fit side by side; the last one always shows.
    every = max(1, math.ceil(len(x_labels) / 7))
    for n, label in enumerate(x_labels):
        if (n % every == 0 and len(x_labels) - 1 - n >= every) or n == len(x_labels) - 1:
            parts.append(
                _text(x_at(n), plot_bottom + 16, label, anchor="middle", fill=MUTED, size=11)
            )
    parts.append(_line(left, plot_bottom, WIDTH - right, plot_bottom, INK))
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        marker = MARKERS[k % len(MARKERS)]
        parts.append(f"<g>{_tooltip(s.name)}")
        for run in _runs(s.values):
            points = " ".join(f"{_n(x_at(n))},{_n(y_at(v))}" for n, v in run)
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{color}" '
                    f'stroke-width="2.5" stroke-linejoin="round"/>'
                )
            for n, v in run:
                parts.append(_marker(marker, x_at(n), y_at(v), color))
        parts.append("</g>")
    legend_top = plot_bottom + 34
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        x = left + (k % 3) * 190
        y = legend_top + (k // 3) * 22
        parts.append(_marker(MARKERS[k % len(MARKERS)], x + 6, y - 4, color))
        parts.append(_text(x + 16, y, _shorten(s.name, 26)))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every piece of text above is escaped)


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least `high`: 0, 20, 40, ... (1, 2 or 5 times 10^n)."""
    if high <= 0:
        return [0, 1]
    raw = high / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [round(n * step, 10) for n in range(math.ceil(high / step) + 1)]


# -- pieces --------------------------------------------------------------------------------

_ID_RE = re.compile(r"[^A-Za-z0-9_-]")


def _open(chart_id: str, title: str, description: str, width: int, height: float) -> str:
    ident = _ID_RE.sub("-", chart_id) or "chart"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {_n(height)}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" font-family="{escape(FONT)}" font-size="13" '
        f'aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>'
    )


def _tooltip(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    fill: str = INK,
    size: int | None = None,
) -> str:
    font_size = f' font-size="{size}"' if size else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="{fill}"{font_size}>'
        f"{escape(text)}</text>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, color: str) -> str:
    return (
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
        f'stroke="{color}" stroke-width="1"/>'
    )


def _marker(shape: str, x: float, y: float, color: str) -> str:
    r = 4.5
    if shape == "square":
        return (
            f'<rect x="{_n(x - r)}" y="{_n(y - r)}" width="{_n(2 * r)}" height="{_n(2 * r)}" '
            f'fill="{color}"/>'
        )
    if shape == "triangle":
        corners = [(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)]
    elif shape == "diamond":
        corners = [(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)]
    else:
        return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{color}"/>'
    points = " ".join(f"{_n(a)},{_n(b)}" for a, b in corners)
    return f'<polygon points="{points}" fill="{color}"/>'


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive known values: a gap (None) ends a run."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for n, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((n, value))
    if current:
        runs.append(current)
    return runs


def _shorten(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _plain(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _n(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    return f"{value:.1f}".rstrip("0").rstrip(".")
