"""CLV validation charts: series, translated labels, both input shapes (results and stored rows)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from crmlens.i18n import t
from crmlens.report.charts import figure_json
from crmlens.report.clv_charts import (
    by_frequency_chart,
    chart_title,
    cumulative_chart,
    model_comparison_chart,
)


@pytest.fixture
def by_frequency() -> pd.DataFrame:
    # The shape of HoldoutEvaluation.by_frequency.
    return pd.DataFrame({"frequency": [0, 1, 2], "label": ["0", "1", "2+"],
                         "customers": [10, 5, 3], "expected": [0.2, 0.8, 2.5],
                         "actual": [0.1, 1.0, 2.0], "baseline": [0.0, 0.9, 3.0]})


@pytest.fixture
def cumulative() -> pd.DataFrame:
    starts = pd.date_range("2024-01-01", periods=6, freq="MS").date
    return pd.DataFrame({"period": range(6), "period_start": starts,
                         "expected": np.cumsum([0, 1, 2, 3, 3, 3.5]),
                         "actual": np.cumsum([0, 1, 3, 2, 3, 3.0])})


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_by_frequency_chart(by_frequency, lang):
    fig = by_frequency_chart(by_frequency, lang)
    assert isinstance(fig, go.Figure)
    assert [tr.name for tr in fig.data] == [t(f"clv.validation.chart.{k}", lang=lang)
                                           for k in ("expected", "actual", "baseline")]
    assert list(fig.data[0].x) == ["0", "1", "2+"]
    assert list(fig.data[1].y) == [0.1, 1.0, 2.0]
    assert fig.layout.barmode == "group"
    assert fig.layout.xaxis.title.text == t("clv.validation.chart.by_frequency_x", lang=lang)
    figure_json(fig)                                 # serialisable


def test_by_frequency_chart_from_stored_curve_rows(by_frequency):
    # clv_validation_curves rows: x / label, unordered; the baseline may be NULL.
    rows = by_frequency.rename(columns={"frequency": "x"}).drop(columns="customers")
    rows = rows.iloc[::-1].assign(baseline=None)
    fig = by_frequency_chart(rows, "en")
    assert len(fig.data) == 2                         # no baseline bars
    assert list(fig.data[0].x) == ["0", "1", "2+"]    # sorted by x


def test_cumulative_chart(cumulative):
    fig = cumulative_chart(cumulative, date(2024, 4, 1), "zh", title=True)
    assert [tr.name for tr in fig.data] == [t("clv.validation.chart.expected", lang="zh"),
                                           t("clv.validation.chart.actual", lang="zh")]
    assert list(fig.data[1].x)[0] == "2024-01-01"
    assert fig.data[1].y[-1] == 12.0
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == "2024-04-01"
    assert fig.layout.annotations[0].text == t("clv.validation.chart.calibration_end", lang="zh")
    assert fig.layout.title.text == chart_title("cumulative", "zh")


def test_cumulative_chart_from_stored_curve_rows(cumulative):
    rows = pd.DataFrame({"x": cumulative["period"].astype(float),
                         "label": [d.isoformat() for d in cumulative["period_start"]],
                         "expected": cumulative["expected"], "actual": cumulative["actual"],
                         "baseline": None}).iloc[::-1]
    fig = cumulative_chart(rows, "2024-04-01", "en")
    assert list(fig.data[0].x) == [d.isoformat() for d in cumulative["period_start"]]
    assert list(fig.data[0].y) == cumulative["expected"].tolist()


def test_model_comparison_chart_leaves_out_failed_fits():
    table = pd.DataFrame({"model": ["bgnbd", "broken", "mbgnbd"], "mae": [1.0, np.nan, 1.1],
                          "rmse": [2.0, np.nan, 2.1], "baseline_mae": [1.3, np.nan, 1.3]})
    fig = model_comparison_chart(table, "en")
    assert [tr.name for tr in fig.data] == ["MAE", "RMSE",
                                           t("clv.validation.chart.baseline_mae", lang="en")]
    assert list(fig.data[0].x) == ["bgnbd", "mbgnbd"]
    assert list(fig.data[1].y) == [2.0, 2.1]
