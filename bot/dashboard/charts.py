"""Charts drawn on the server, as markup for the Jinja templates: no chart script in the browser.

The pages' Content-Security-Policy forbids inline ``style`` attributes and inline scripts, so
colour comes from classes styled in ``static/dashboard/dashboard.css``: ``heat-0`` .. ``heat-8``
for heatmap cells and ``s0`` .. ``s4`` for a chart's series (bars and legend swatches); sizes and
places are SVG presentation attributes. Every label is escaped (a scam type's name or an area's
can be typed by staff), and control characters are dropped so the SVG stays well-formed XML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from bot.store.trends import Heatmap

HEAT_LEVELS = 8  # heat-1 .. heat-8 for counts above zero; heat-0 only for zero
SERIES_CLASSES = 5  # s0 .. s4 in the stylesheet; further series reuse them
SVG_NS = "http://www.w3.org/2000/svg"
MIN_SIZE, MAX_SIZE = 120, 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Room around the plot for the axis ticks (left) and the labels (below).
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 8, 10, 34
_LABEL_WIDTH = 44  # about how wide an x label may be before labels are thinned out


def _text(value: Any) -> Markup:
    """A label as escaped text, without the control characters XML does not allow."""
    return escape(_CONTROL.sub("", str(value)))


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _check_counts(counts: Sequence[Sequence[int]]) -> None:
    for row in counts:
        for n in row:
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"counts must be whole numbers, 0 or more, not {n!r}")


def heat_levels(counts: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Each count's level, 1 to 8 by its share of the largest count; 0 only for zero."""
    _check_counts(counts)
    top = max((n for row in counts for n in row), default=0)
    return tuple(
        tuple(0 if n == 0 else max(1, math.ceil(HEAT_LEVELS * n / top)) for n in row)
        for row in counts
    )


def heatmap_table(heatmap: Heatmap, weekday_names: Sequence[str], caption: str) -> Markup:
    """A weekday x hour ``<table>``: row and column headers, the count and a ``title`` per cell."""
    counts = heatmap.counts
    if len(counts) != 7 or any(len(row) != 24 for row in counts):
        raise ValueError("a heatmap has 7 rows (Monday first) of 24 hours")
    if len(weekday_names) != 7:
        raise ValueError("weekday_names needs 7 names, Monday first")
    levels = heat_levels(counts)
    hours = "".join(f'<th scope="col">{h}</th>' for h in range(24))
    parts = [
        f'<table class="heatmap"><caption>{_text(caption)}</caption>',
        f'<thead><tr><th scope="col">星期</th>{hours}</tr></thead><tbody>',
    ]
    for day, (row, row_levels) in enumerate(zip(counts, levels, strict=True)):
        name = _text(weekday_names[day])
        parts.append(f'<tr><th scope="row">{name}</th>')
        for hour, (n, level) in enumerate(zip(row, row_levels, strict=True)):
            title = f"{name} {hour:02d}:00–{hour + 1:02d}:00：{n} 起"
            parts.append(f'<td class="heat-{level}" title="{title}">{n}</td>')
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return Markup("".join(parts))


def _ticks(top: int) -> list[int]:
    """Round values from 0 up to at least ``top``, four or five of them."""
    if top <= 0:
        return [0, 1]
    rough = top / 4
    magnitude = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    step = max(1, int(step))
    return list(range(0, math.ceil(top / step) * step + 1, step))


def _check_chart(
    labels: Sequence[Any], series: Mapping[str, Sequence[int]], w: int, h: int
) -> None:
    if not series:
        raise ValueError("a bar chart needs at least one series")
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(
                f"series {str(name)[:40]!r} has {len(values)} values for {len(labels)} labels"
            )
    _check_counts(list(series.values()))
    for what, size in (("width", w), ("height", h)):
        if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"{what} must be {MIN_SIZE} to {MAX_SIZE} pixels, not {size!r}")


def bar_chart(
    labels: Sequence[Any],
    series: Mapping[str, Sequence[int]],
    *,
    width: int = 720,
    height: int = 220,
    stacked: bool = True,
    title: str | None = None,
) -> Markup:
    """An SVG bar chart: one bar (stacked) or one bar per series (side by side) per label.

    Each bar has a ``<title>`` (label, series and value) for the browser's tooltip; the y axis
    has round ticks, and x labels are thinned out when there are too many to fit. ``title``
    names the whole chart for screen readers.
    """
    _check_chart(labels, series, width, height)
    names = list(series)
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    columns = list(zip(*(series[name] for name in names), strict=True))
    tallest = max((sum(c) if stacked else max(c) for c in columns), default=0)
    ticks = _ticks(tallest)
    scale = plot_h / ticks[-1]
    base = _TOP + plot_h
    parts = [
        f'<svg xmlns="{SVG_NS}" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    if title is not None:
        parts.append(f"<title>{_text(title)}</title>")
    for tick in ticks:
        y = _num(base - tick * scale)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y}" x2="{width - _RIGHT}" y2="{y}"/>'
            f'<text x="{_LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
            f"{tick}</text>"
        )
    if not labels:
        parts.append(
            f'<text x="{_num(_LEFT + plot_w / 2)}" y="{_num(_TOP + plot_h / 2)}" '
            'text-anchor="middle">暂无数据</text>'
        )
    slot = plot_w / max(1, len(labels))
    every = max(1, math.ceil(_LABEL_WIDTH / slot))
    bar_w = slot * 0.7 / (1 if stacked else len(names))
    for i, (label, column) in enumerate(zip(labels, columns, strict=True)):
        left = _LEFT + i * slot + slot * 0.15
        stack = 0
        for s, (name, value) in enumerate(zip(names, column, strict=True)):
            x = left if stacked else left + s * bar_w
            bottom = stack if stacked else 0
            if value:
                top_y = base - (bottom + value) * scale
                parts.append(
                    f'<rect class="bar s{s % SERIES_CLASSES}" x="{_num(x)}" y="{_num(top_y)}" '
                    f'width="{_num(bar_w)}" height="{_num(value * scale)}">'
                    f"<title>{_text(label)} · {_text(name)}：{value}</title></rect>"
                )
            if stacked:
                stack += value
        if i % every == 0:
            parts.append(
                f'<text x="{_num(_LEFT + (i + 0.5) * slot)}" y="{base + 16}" '
                f'text-anchor="middle">{_text(label)}</text>'
            )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" y1="{base}" x2="{width - _RIGHT}" y2="{base}"/>'
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}"/></svg>'
    )
    return Markup("".join(parts))


def legend(names: Sequence[str]) -> Markup:
    """The swatches naming a bar chart's series, in the order (and colours) of ``series``."""
    items = "".join(
        f'<span><span class="swatch s{i % SERIES_CLASSES}" aria-hidden="true"></span>'
        f"{_text(name)}</span>"
        for i, name in enumerate(names)
    )
    return Markup(f'<div class="legend">{items}</div>')


__all__ = ["bar_chart", "heat_levels", "heatmap_table", "legend"]
