"""Plotly figures in the report's style, and their safe embedding in the page.

The helpers take already-translated titles and plain lists, so sections never repeat layout
code. Figures use no Plotly template (smaller pages, one look everywhere), category axes for
months (``YYYY-MM`` labels need no locale), and number formats with thousands separators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.offline

DEFAULT_HEIGHT = 340

# System fonts only (the page must open offline); CJK fonts listed so Chinese never falls back
# to boxes or a serif.
FONT_FAMILY = ('-apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "PingFang SC", '
               '"Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC", '
               '"Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif')

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0ea5e9", "#64748b",
           "#ec4899")
GOOD, BAD, NEUTRAL, ACCENT = "#10b981", "#ef4444", "#94a3b8", "#f59e0b"

INT_FORMAT = ",.0f"
MONEY_FORMAT = ",.2f"

_GRID = "#e5e7eb"
_TEXT = "#1f2937"

# Plotly config of every chart: no logo, no link to an online editor, PNG download kept.
PLOT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "displayModeBar": "hover",
    "responsive": True,
    "showLink": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
}


def plotly_js() -> str:
    """The plotly.js bundle shipped with the installed plotly package (no CDN)."""
    return plotly.offline.get_plotlyjs()


def figure_json(fig: go.Figure) -> str:
    """The figure as JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` only occur inside JSON strings, where their ``\\u`` escapes mean the
    same, so a product named ``</script>`` cannot end the element early.
    """
    text = fig.to_json(validate=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def style(fig: go.Figure, *, height: int = DEFAULT_HEIGHT, legend: bool = True) -> go.Figure:
    """Apply the report's layout: fonts, colours, margins, separators, hover labels."""
    fig.update_layout(
        template="none",
        height=height,
        font={"family": FONT_FAMILY, "size": 12, "color": _TEXT},
        colorway=list(PALETTE),
        separators=".,",
        margin={"l": 60, "r": 24, "t": 16, "b": 48},
        paper_bgcolor="white",
        plot_bgcolor="white",
        hovermode="closest",
        hoverlabel={"font": {"family": FONT_FAMILY}},
        showlegend=legend,
        # Legend in trace order (Plotly reverses it for stacked bars otherwise).
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0,
                "traceorder": "normal"},
    )
    fig.update_xaxes(gridcolor=_GRID, linecolor="#9ca3af", zeroline=False, automargin=True)
    fig.update_yaxes(gridcolor=_GRID, linecolor="#9ca3af", zerolinecolor="#9ca3af",
                     automargin=True)
    return fig


def bar(x: Sequence[Any], y: Sequence[float], *, x_title: str = "", y_title: str = "",
        name: str | None = None, horizontal: bool = False, value_format: str = INT_FORMAT,
        color: str | None = None, height: int = DEFAULT_HEIGHT) -> go.Figure:
    """A single-series bar chart; ``horizontal`` puts the categories on the y axis, first on top.

    Parameters
    ----------
    x, y : sequence
        Categories and values (for ``horizontal`` too: ``x`` stays the categories).
    x_title, y_title : str
        Titles of the category and the value axis.
    name : str, optional
        Series name shown on hover.
    horizontal : bool, default False
        Horizontal bars, for long category labels (products, regions).
    value_format : str, default ``",.0f"``
        d3 format of the values on hover and on the value axis.
    color : str, optional
        Bar colour; default the first of the palette.
    height : int, default 340
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    cats, vals = list(x), list(y)
    if horizontal:
        trace = go.Bar(y=cats, x=vals, orientation="h", name=name or "",
                       marker_color=color or PALETTE[0],
                       hovertemplate=f"%{{y}}<br>%{{x:{value_format}}}<extra></extra>")
    else:
        trace = go.Bar(x=cats, y=vals, name=name or "", marker_color=color or PALETTE[0],
                       hovertemplate=f"%{{x}}<br>%{{y:{value_format}}}<extra></extra>")
    fig = style(go.Figure(trace), height=height, legend=False)
    cat_axis, val_axis = (fig.update_yaxes, fig.update_xaxes) if horizontal else (
        fig.update_xaxes, fig.update_yaxes)
    cat_axis(title_text=x_title, type="category")
    val_axis(title_text=y_title, tickformat=_tick_format(value_format),
             **_small_count_ticks(vals, value_format))
    if horizontal:
        fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)")
    return fig


def stacked_bar(categories: Sequence[Any], series: Mapping[str, Sequence[float]], *,
                x_title: str = "", y_title: str = "", horizontal: bool = False,
                colors: Sequence[str] | None = None, value_format: str = INT_FORMAT,
                height: int = DEFAULT_HEIGHT) -> go.Figure:
    """Bars stacked by series (e.g. rows loaded and rejected per source).

    Parameters
    ----------
    categories : sequence
        One bar per category.
    series : mapping
        ``{series name: values per category}``, stacked in this order.
    x_title, y_title : str
        Titles of the category and the value axis.
    horizontal : bool, default False
        Horizontal bars, first category on top.
    colors : sequence of str, optional
        One colour per series; default the palette.
    value_format : str, default ``",.0f"``
        d3 format of the values.
    height : int, default 340
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    cats = list(categories)
    colors = list(colors or PALETTE)
    fig = go.Figure()
    totals = [0.0] * len(cats)
    for i, (name, values) in enumerate(series.items()):
        vals = list(values)
        totals = [a + (b or 0) for a, b in zip(totals, vals)]
        color = colors[i % len(colors)]
        if horizontal:
            fig.add_trace(go.Bar(y=cats, x=vals, name=name, orientation="h", marker_color=color,
                                 hovertemplate=f"%{{y}}<br>{_esc(name)}: "
                                               f"%{{x:{value_format}}}<extra></extra>"))
        else:
            fig.add_trace(go.Bar(x=cats, y=vals, name=name, marker_color=color,
                                 hovertemplate=f"%{{x}}<br>{_esc(name)}: "
                                               f"%{{y:{value_format}}}<extra></extra>"))
    style(fig, height=height)
    fig.update_layout(barmode="stack")
    cat_axis, val_axis = (fig.update_yaxes, fig.update_xaxes) if horizontal else (
        fig.update_xaxes, fig.update_yaxes)
    cat_axis(title_text=x_title, type="category")
    val_axis(title_text=y_title, tickformat=_tick_format(value_format),
             **_small_count_ticks(totals, value_format))
    if horizontal:
        fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)")
    return fig


def bar_line(x: Sequence[Any], bars: Sequence[float], line: Sequence[float], *,
             bar_name: str, line_name: str, x_title: str = "", bar_title: str = "",
             line_title: str = "", bar_format: str = INT_FORMAT, line_format: str = INT_FORMAT,
             height: int = DEFAULT_HEIGHT) -> go.Figure:
    """Bars on the left axis and a line on the right one (e.g. revenue and customers by month).

    Parameters
    ----------
    x : sequence
        Categories shared by both series (months as ``YYYY-MM``).
    bars, line : sequence of float
        Values of the bar and of the line series; ``None`` leaves a gap in the line.
    bar_name, line_name : str
        Legend names.
    x_title, bar_title, line_title : str
        Titles of the category axis, the left and the right value axis.
    bar_format, line_format : str
        d3 formats of the two series.
    height : int, default 340
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    cats, bars, line = list(x), list(bars), list(line)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=cats, y=bars, name=bar_name, marker_color=PALETTE[0],
                         hovertemplate=f"%{{x}}<br>{_esc(bar_name)}: "
                                       f"%{{y:{bar_format}}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=cats, y=line, name=line_name, yaxis="y2",
                             mode="lines+markers", line={"color": ACCENT, "width": 2.5},
                             marker={"size": 6}, connectgaps=False,
                             hovertemplate=f"%{{x}}<br>{_esc(line_name)}: "
                                           f"%{{y:{line_format}}}<extra></extra>"))
    style(fig, height=height)
    fig.update_layout(
        margin={"l": 60, "r": 60, "t": 16, "b": 48},
        yaxis={"title": {"text": bar_title}, "tickformat": _tick_format(bar_format),
               **_small_count_ticks(bars, bar_format)},
        yaxis2={"title": {"text": line_title}, "overlaying": "y", "side": "right",
                "tickformat": _tick_format(line_format), "showgrid": False, "rangemode": "tozero",
                "automargin": True, **_small_count_ticks(line, line_format)},
    )
    fig.update_xaxes(title_text=x_title, type="category")
    return fig


def _small_count_ticks(values: Sequence[float | None], value_format: str) -> dict[str, Any]:
    """One tick per unit for small counts: otherwise Plotly picks 0.5 steps that an integer
    format prints as 0, 1, 1, 2, 2."""
    present = [v for v in values if v is not None]
    if (value_format == INT_FORMAT and present and max(abs(v) for v in present) <= 10
            and all(float(v).is_integer() for v in present)):
        return {"dtick": 1}
    return {}


def _tick_format(value_format: str) -> str:
    # Axis ticks never need the cents that hover labels show.
    return value_format.replace(".2f", ".0f")


def _esc(text: str) -> str:
    # Series names go into hover templates, which render HTML tags.
    return text.replace("<", "&lt;").replace(">", "&gt;")
