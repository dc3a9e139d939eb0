"""Plotly charts of a churn (or response) prediction run, in the report's style.

Each builder takes rows as stored in the workspace (``churn_curves``: model, kind, x, y, n;
``churn_importance``: feature, importance, std, rank) or as held by
:class:`crmlens.predict.run.ChurnResult`, so the report draws from stored tables and a notebook
from fresh results. Model names are passed in already translated (``{"hist_gbm": "Gradient
boosting", "baseline": "Naive baseline"}``); axis texts come from the catalogue in ``lang``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from crmlens.i18n import t
from crmlens.report.charts import ACCENT, DEFAULT_HEIGHT, NEUTRAL, PALETTE, _esc, style

_KEY = "report.churn.chart."
TOP_FEATURES = 15


def _points(curves: pd.DataFrame, model: str, kind: str) -> pd.DataFrame:
    rows = curves[(curves["model"] == model) & (curves["kind"] == kind)]
    return rows.sort_values("x")


def _series(curves: pd.DataFrame, kind: str, models: Sequence[str]
            ) -> list[tuple[str, pd.DataFrame]]:
    """``(model, points)`` of the models that have points of ``kind``, in ``models`` order."""
    out = []
    for model in models:
        points = _points(curves, model, kind)
        if not points.empty:
            out.append((model, points))
    return out


def _line_style(i: int, model: str) -> dict[str, object]:
    if model == "baseline":
        return {"color": NEUTRAL, "width": 2, "dash": "dash"}
    return {"color": PALETTE[i % len(PALETTE)], "width": 2.5}


def _add_series(fig: go.Figure, curves: pd.DataFrame, kind: str, models: Sequence[str],
                names: Mapping[str, str], hover: str, *, markers: bool = False) -> None:
    """One line per model with points of ``kind``; ``hover`` is a Plotly template in which
    ``{name}`` is the model's name and ``%{customdata}`` the bin's customer count."""
    for i, (model, pts) in enumerate(_series(curves, kind, models)):
        name = names.get(model, model)
        counts = pts["n"].fillna(0).astype(int).tolist() if "n" in pts else [0] * len(pts)
        fig.add_trace(go.Scatter(
            x=pts["x"].tolist(), y=pts["y"].tolist(), name=name,
            mode="lines+markers" if markers else "lines", line=_line_style(i, model),
            marker={"size": 7} if markers else None, customdata=counts,
            hovertemplate=hover.replace("{name}", _esc(name)) + "<extra></extra>"))


def _reference_line(fig: go.Figure, x: Sequence[float], y: Sequence[float], name: str) -> None:
    fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines", name=name,
                             line={"color": NEUTRAL, "width": 1, "dash": "dot"},
                             hoverinfo="skip"))


def roc_chart(curves: pd.DataFrame, models: Sequence[str], names: Mapping[str, str],
              lang: str | None = None, *, height: int = DEFAULT_HEIGHT) -> go.Figure:
    """ROC curves (true against false positive rate) of ``models``, with the chance diagonal.

    Parameters
    ----------
    curves : pandas.DataFrame
        Curve points: ``model``, ``kind``, ``x``, ``y``; rows of kind ``roc`` are drawn.
    models : sequence of str
        The models to draw, in this order (the best model, then ``baseline``).
    names : mapping
        Display name of each model (default the model's own name).
    lang : str, optional
        Language of the axis texts.
    height : int, default 340
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    fig = go.Figure()
    _add_series(fig, curves, "roc", models, names, "{name}<br>%{x:.1%} → %{y:.1%}")
    _reference_line(fig, [0, 1], [0, 1], t(f"{_KEY}chance", lang=lang))
    style(fig, height=height)
    fig.update_xaxes(title_text=t(f"{_KEY}roc_x", lang=lang), tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text=t(f"{_KEY}roc_y", lang=lang), tickformat=".0%",
                     range=[0, 1.02])
    return fig


def lift_chart(curves: pd.DataFrame, models: Sequence[str], names: Mapping[str, str],
               lang: str | None = None, *, height: int = DEFAULT_HEIGHT) -> go.Figure:
    """Cumulative lift against the share of customers targeted (highest scores first).

    Parameters
    ----------
    curves : pandas.DataFrame
        Curve points: rows of kind ``lift`` (x = share targeted, y = cumulative lift).
    models : sequence of str
        The models to draw, in this order.
    names : mapping
        Display name of each model.
    lang : str, optional
        Language of the axis texts.
    height : int, default 340
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    fig = go.Figure()
    _add_series(fig, curves, "lift", models, names, "{name}<br>%{x:.0%}: × %{y:.2f}")
    _reference_line(fig, [0, 1], [1, 1], t(f"{_KEY}no_lift", lang=lang))
    style(fig, height=height)
    fig.update_xaxes(title_text=t(f"{_KEY}lift_x", lang=lang), tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text=t(f"{_KEY}lift_y", lang=lang), rangemode="tozero")
    return fig


def calibration_chart(curves: pd.DataFrame, models: Sequence[str], names: Mapping[str, str],
                      lang: str | None = None, *, height: int = DEFAULT_HEIGHT) -> go.Figure:
    """Observed rate against mean predicted probability per bin, with the ideal diagonal.

    Parameters
    ----------
    curves : pandas.DataFrame
        Curve points: rows of kind ``calibration`` (x = mean predicted probability, y =
        observed rate, n = customers in the bin).
    models : sequence of str
        The models to draw, in this order.
    names : mapping
        Display name of each model.
    lang : str, optional
        Language of the axis texts.
    height : int, default 340
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    fig = go.Figure()
    customers = _esc(t(f"{_KEY}customers", lang=lang))
    _add_series(fig, curves, "calibration", models, names,
                "{name}<br>%{x:.1%} → %{y:.1%}<br>" + customers + ": %{customdata:,}",
                markers=True)
    _reference_line(fig, [0, 1], [0, 1], t(f"{_KEY}ideal", lang=lang))
    style(fig, height=height)
    fig.update_xaxes(title_text=t(f"{_KEY}calibration_x", lang=lang), tickformat=".0%",
                     range=[0, 1])
    fig.update_yaxes(title_text=t(f"{_KEY}calibration_y", lang=lang), tickformat=".0%",
                     range=[0, 1.02])
    return fig


def importance_chart(importance: pd.DataFrame, labels: Mapping[str, str],
                     lang: str | None = None, *, top: int = TOP_FEATURES) -> go.Figure:
    """Horizontal bars of permutation importance (most important on top), with their spread.

    Parameters
    ----------
    importance : pandas.DataFrame
        ``feature``, ``importance``, optional ``std`` and ``rank`` (sorts when present).
    labels : mapping
        Readable label of each feature (default the feature's own name).
    lang : str, optional
        Language of the axis texts.
    top : int, default 15
        How many features to show.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    data = importance.sort_values("rank") if "rank" in importance else importance
    data = data.head(top)
    names = [labels.get(f, f) for f in data["feature"]]
    std = (data["std"].fillna(0.0).tolist() if "std" in data
           and data["std"].notna().any() else None)
    fig = go.Figure(go.Bar(
        y=names, x=data["importance"].tolist(), orientation="h", marker_color=PALETTE[0],
        error_x=None if std is None else {"type": "data", "array": std, "color": ACCENT,
                                          "thickness": 1.2},
        hovertemplate="%{y}<br>%{x:.4f}<extra></extra>"))
    style(fig, height=max(DEFAULT_HEIGHT, 26 * len(names) + 90), legend=False)
    fig.update_xaxes(title_text=t(f"{_KEY}importance_x", lang=lang), rangemode="tozero")
    fig.update_yaxes(type="category", autorange="reversed", gridcolor="rgba(0,0,0,0)")
    return fig
