"""Plotly charts of the CLV holdout validation, in the report's style.

Each builder takes a DataFrame as stored in the workspace (rows of ``clv_validation_curves``
or ``clv_validations``) or as held by :class:`crmlens.clv.validation.HoldoutEvaluation` /
:class:`~crmlens.clv.validation.ModelComparison`, so the report can draw from stored tables and
a notebook from fresh results. Labels come from the i18n catalogue in ``lang``.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.graph_objects as go

from crmlens.i18n import t
from crmlens.report.charts import ACCENT, DEFAULT_HEIGHT, NEUTRAL, PALETTE, _esc, style

_KEY = "clv.validation.chart."
_NUMBER = ",.2f"


def chart_title(chart: str, lang: str | None = None) -> str:
    """Translated title of ``chart`` ("by_frequency", "cumulative" or "comparison").

    Parameters
    ----------
    chart : str
        Chart name.
    lang : str, optional
        Language (default: the current one).

    Returns
    -------
    str
    """
    return t(f"{_KEY}{chart}_title", lang=lang)


def by_frequency_chart(frame: pd.DataFrame, lang: str | None = None, *,
                       height: int = DEFAULT_HEIGHT, title: bool = False) -> go.Figure:
    """Grouped bars: mean holdout purchases per calibration-frequency bucket.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``frequency`` (or ``x``), optional ``label`` ("7+" for the last bucket), ``expected``,
        ``actual`` and optional ``baseline`` (a missing or all-null column draws no bars).
    lang : str, optional
        Language of the labels.
    height : int, default 340
        Height in pixels.
    title : bool, default False
        Put the translated title inside the figure (the report writes it as a heading).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    data = frame.sort_values("frequency" if "frequency" in frame.columns else "x")
    x_values = data["frequency"] if "frequency" in data.columns else data["x"]
    labels = (data["label"].astype(str).tolist() if "label" in data.columns
              else [str(int(v)) for v in x_values])
    fig = go.Figure()
    series = [("expected", PALETTE[0]), ("actual", ACCENT), ("baseline", NEUTRAL)]
    for column, color in series:
        if column not in data.columns or data[column].isna().all():
            continue
        name = t(f"{_KEY}{column}", lang=lang)
        fig.add_trace(go.Bar(x=labels, y=data[column].tolist(), name=name, marker_color=color,
                             hovertemplate=f"%{{x}}<br>{_esc(name)}: "
                                           f"%{{y:{_NUMBER}}}<extra></extra>"))
    style(fig, height=height)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text=t(f"{_KEY}by_frequency_x", lang=lang), type="category")
    fig.update_yaxes(title_text=t(f"{_KEY}by_frequency_y", lang=lang), rangemode="tozero")
    return _titled(fig, "by_frequency", lang, title)


def cumulative_chart(frame: pd.DataFrame, calibration_end: date | str,
                     lang: str | None = None, *, height: int = DEFAULT_HEIGHT,
                     title: bool = False) -> go.Figure:
    """Two lines, expected and actual cumulative repeat purchases, split at the calibration end.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``period_start`` (or ``label``: the period start as ``YYYY-MM-DD``), ``expected`` and
        ``actual`` (cumulative), in period order (``period`` or ``x`` sorts it when present).
    calibration_end : date or str
        Exclusive end of the calibration window, drawn as a vertical line.
    lang : str, optional
        Language of the labels.
    height : int, default 340
        Height in pixels.
    title : bool, default False
        Put the translated title inside the figure.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    order = next((c for c in ("period", "x") if c in frame.columns), None)
    data = frame.sort_values(order) if order else frame
    column = "period_start" if "period_start" in data.columns else "label"
    x = [str(v)[:10] for v in data[column]]
    fig = go.Figure()
    for name_key, values, color, dash in (("expected", data["expected"], PALETTE[0], "dash"),
                                          ("actual", data["actual"], ACCENT, "solid")):
        name = t(f"{_KEY}{name_key}", lang=lang)
        fig.add_trace(go.Scatter(x=x, y=values.tolist(), name=name, mode="lines",
                                 line={"color": color, "width": 2.5, "dash": dash},
                                 hovertemplate=f"%{{x}}<br>{_esc(name)}: "
                                               f"%{{y:,.1f}}<extra></extra>"))
    style(fig, height=height)
    fig.update_layout(hovermode="x unified")
    fig.update_xaxes(title_text=t(f"{_KEY}cumulative_x", lang=lang), type="date")
    fig.update_yaxes(title_text=t(f"{_KEY}cumulative_y", lang=lang), rangemode="tozero",
                     tickformat=",.0f")
    end = str(calibration_end)[:10]
    # A shape plus an annotation rather than add_vline: add_vline's annotation fails on date
    # axes in some Plotly versions.
    fig.add_shape(type="line", x0=end, x1=end, y0=0, y1=1, xref="x", yref="paper",
                  line={"color": NEUTRAL, "width": 1.5, "dash": "dot"})
    fig.add_annotation(x=end, y=1, xref="x", yref="paper", showarrow=False, xanchor="left",
                       yanchor="top", text=_esc(t(f"{_KEY}calibration_end", lang=lang)),
                       font={"size": 11, "color": "#64748b"})
    return _titled(fig, "cumulative", lang, title)


def model_comparison_chart(table: pd.DataFrame, lang: str | None = None, *,
                           height: int = DEFAULT_HEIGHT, title: bool = False) -> go.Figure:
    """Grouped bars of holdout MAE and RMSE per model, with the baseline's MAE beside them.

    Parameters
    ----------
    table : pandas.DataFrame
        ``model``, ``mae``, ``rmse`` and optional ``baseline_mae`` (``ModelComparison.table``
        or ``clv_validations`` rows); models without scores (failed fits) are left out.
    lang : str, optional
        Language of the labels.
    height : int, default 340
        Height in pixels.
    title : bool, default False
        Put the translated title inside the figure.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    data = table[table["mae"].notna()] if "mae" in table.columns else table
    models = data["model"].astype(str).tolist()
    fig = go.Figure()
    for column, color in (("mae", PALETTE[0]), ("rmse", PALETTE[3]), ("baseline_mae", NEUTRAL)):
        if column not in data.columns or data[column].isna().all():
            continue
        name = t(f"{_KEY}{column}", lang=lang)
        fig.add_trace(go.Bar(x=models, y=data[column].tolist(), name=name, marker_color=color,
                             hovertemplate=f"%{{x}}<br>{_esc(name)}: "
                                           f"%{{y:,.3f}}<extra></extra>"))
    style(fig, height=height)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text=t(f"{_KEY}comparison_x", lang=lang), type="category")
    fig.update_yaxes(title_text=t(f"{_KEY}comparison_y", lang=lang), rangemode="tozero")
    return _titled(fig, "comparison", lang, title)


def _titled(fig: go.Figure, chart: str, lang: str | None, title: bool) -> go.Figure:
    if title:
        fig.update_layout(title={"text": _esc(chart_title(chart, lang)), "x": 0, "y": 0.98},
                          margin={"t": 56})
    return fig
