"""The report's CLV section, on CLV tables written by hand (tests/report/clv_tables.py)."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import datetime
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from crmlens.report import clv as clv_section
from crmlens.report import render_report
from crmlens.report.sections import ReportContext
from tests.report.clv_tables import CLV, OLD_RUN, P_ALIVE, RUN, create_clv_tables
from tests.report.conftest import build_workspace

WHEN = datetime(2024, 5, 6, 7, 8, 9)


def _con(**options) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    build_workspace(con)
    create_clv_tables(con, **options)
    return con


@pytest.fixture(scope="module")
def con():
    c = _con(gg_suspect=True)
    yield c
    c.close()


def _section(html: str) -> str:
    """The CLV section's visible text, tags and chart specs removed."""
    match = re.search(r'<section class="section" id="clv">(.*?)</section>', html, re.DOTALL)
    assert match, "no CLV section"
    text = re.sub(r"<script.*?</script>", " ", match.group(1), flags=re.DOTALL)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html_lib.unescape(text))


def _table_rows(html: str, first_cell: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)
    cells = [[html_lib.unescape(c.strip()) for c in re.findall(r"<td[^>]*>(.*?)</td>", r,
                                                              re.DOTALL)] for r in rows]
    return [c for c in cells if c and c[0] == first_cell]


def _charts(html: str) -> list[dict]:
    specs = re.findall(r'<script type="application/json" class="chart-spec" '
                       r'data-target="[^"]+">(.*?)</script>', html, flags=re.DOTALL)
    return [json.loads(s) for s in specs]


@pytest.mark.parametrize("lang, tiers, headings", [
    ("en", ("Top", "High", "Medium", "Low"),
     ("Customer lifetime value", "Value tiers", "Holdout validation", "Top 20 customers")),
    ("zh", ("顶级", "高", "中", "低"),
     ("客户生命周期价值", "价值分层", "留出期验证", "预测 CLV 最高的 20 位客户")),
])
def test_section_shows_totals_and_tier_shares(con, lang, tiers, headings):
    html = render_report(con, lang=lang, generated_at=WHEN)
    text = _section(html)
    for heading in headings:
        assert heading in text
    # Totals of the current run only: the old run's 999,999 is not counted.
    assert "340" in text and "34.00" in text and "999" not in text
    # Tier rows: customers, share of customers, share of value, mean CLV, mean P(alive),
    # mean P(buys within the horizon) (half of P(alive) in the fixture).
    expected = {tiers[0]: ["2", "20.0%", "52.9%", "90.00", "94.5%", "47.2%"],
                tiers[1]: ["3", "30.0%", "35.3%", "40.00", "74.3%", "37.2%"],
                tiers[2]: ["3", "30.0%", "10.3%", "11.67", "41.7%", "20.8%"],
                tiers[3]: ["2", "20.0%", "1.5%", "2.50", "7.5%", "3.8%"]}
    for tier, cells in expected.items():
        assert _table_rows(html, tier)[0][1:] == cells
    # Parameters of both models with standard errors.
    params = {(r[0], r[1]): r[2:] for r in _table_rows(html, "BG/NBD")
              + _table_rows(html, "Gamma-Gamma")}
    assert params[("BG/NBD", "alpha")] == ["4.414", "0.3838"]
    assert params[("Gamma-Gamma", "v")] == ["15.45", "4.16"]
    assert len(params) == 7
    assert "could not be built" not in html and "生成失败" not in html


def test_top_customers_in_clv_order(con):
    html = render_report(con, lang="en", generated_at=WHEN)
    top = [_table_rows(html, str(i))[-1] for i in range(1, 11)]
    assert [r[1] for r in top] == [f"C{i}" for i in range(1, 11)]
    assert top[0][-2:] == ["100.00", "Top"] and top[-1][-2:] == ["2.00", "Low"]


def test_model_choice_assumptions_and_independence_flag(con):
    text = _section(render_report(con, lang="en", generated_at=WHEN))
    assert "Purchases modelled with BG/NBD, spend per purchase with Gamma-Gamma" in text
    assert "lowest RMSE, 1.034 purchases per customer) of the 3 models compared" in text
    assert "horizon 52 weeks" in text and "margin 30.0%" in text
    assert "discount rate 1.00% per period" in text
    assert "30.0% of scored customers have bought only once" in text
    assert "still alive (P(alive) = 1)" in text
    assert re.search(r"Warning The Gamma-Gamma .* is 0\.42: the assumption is doubtful", text)
    assert text.count("0.42") == 1  # the run's own note on it is not repeated


def test_independence_holds_is_information_not_warning():
    c = _con(gg_suspect=False)
    text = _section(render_report(c, lang="zh", generated_at=WHEN))
    assert "相关系数为 0.11，与该假设相符" in text
    assert "该假设存疑" not in text
    c.close()


def test_model_comparison_marks_discrete_time_likelihoods(con):
    html = render_report(con, lang="en", generated_at=WHEN)
    best = _table_rows(html, "BG/NBD (best)")[0]
    assert best[1:] == ["4", "-9,000.5", "18,009.0", "18,030.0", "0.612", "1.034", "0.701",
                        "-4.0%", "better than baseline"]
    bgbb = _table_rows(html, "BG/BB")[0]
    assert bgbb[2:5] == ["-7,000.2 *", "14,008.5 *", "14,029.0 *"]
    assert _table_rows(html, "Pareto/NBD")[0][-1] == "failed: did not converge"
    text = _section(html)
    assert "* Discrete-time model" in text
    # Best first, then by holdout RMSE, failed fits last.
    assert text.index("BG/NBD (best)") < text.index("BG/BB 4") < text.index("Pareto/NBD –")


def test_validation_charts_come_from_stored_curves(con, monkeypatch):
    calls = {}

    def record(name):
        def build(*args):
            calls[name] = args
            return go.Figure()
        return build

    fake = SimpleNamespace(by_frequency_chart=record("by_frequency"),
                           cumulative_chart=record("cumulative"),
                           model_comparison_chart=record("comparison"))
    monkeypatch.setattr(clv_section, "_clv_charts", lambda: fake)
    html = render_report(con, lang="zh", generated_at=WHEN)
    frame, lang = calls["by_frequency"]
    assert lang == "zh"
    assert frame["frequency"].tolist() == list(range(8))
    assert frame["label"].iloc[-1] == "7+"
    np.testing.assert_allclose(frame["actual"], [0.25 * x for x in range(8)])
    cumulative, calibration_end, _ = calls["cumulative"]
    assert len(cumulative) == 11 and str(calibration_end) == "2011-06-06"
    assert cumulative["period_start"].iloc[0] == "2011-01-01"
    table, _ = calls["comparison"]
    assert table["model"].tolist() == ["BG/NBD", "BG/BB"]  # the failed fit is left out
    assert "按历史购买频率的留出期预期与实际购买次数（BG/NBD）" in _section(html)


def test_without_chart_module_the_section_still_renders(con, monkeypatch):
    monkeypatch.setattr(clv_section, "_clv_charts", lambda: None)
    html = render_report(con, lang="en", generated_at=WHEN)
    text = _section(html)
    assert "Model comparison" in text
    assert "by past frequency" not in text and "Cumulative repeat purchases" not in text


def test_p_alive_histogram_and_concentration_curve(con):
    ctx = ReportContext(con=con, lang="en", generated_at=WHEN)
    counts = clv_section.p_alive_histogram(ctx, RUN)
    # bins [0, 0.05), [0.05, 0.10) ... [0.95, 1]: 0.30 belongs to the 7th
    bins = np.minimum(np.floor(np.array(P_ALIVE) * clv_section.P_ALIVE_BINS).astype(int),
                      clv_section.P_ALIVE_BINS - 1)
    assert counts == np.bincount(bins, minlength=clv_section.P_ALIVE_BINS).tolist()
    assert counts[6] == 1 and counts[19] == 1
    curve = clv_section.concentration_curve(ctx, RUN)
    assert curve[0] == (0.0, 0.0) and curve[-1] == pytest.approx((1.0, 1.0))
    # ten customers in 100 buckets: the first bucket is the top customer alone.
    assert curve[1] == pytest.approx((0.1, 100 / 340))
    shares = pd.Series(CLV).sort_values(ascending=False).cumsum() / sum(CLV)
    assert [y for _, y in curve[1:]] == pytest.approx(shares.tolist())
    html = render_report(con, lang="en", generated_at=WHEN)
    bars = [tr for spec in _charts(html) for tr in spec["data"]
            if tr["type"] == "bar" and len(tr.get("y") or []) == clv_section.P_ALIVE_BINS]
    assert bars and sum(bars[0]["y"]) == len(P_ALIVE)


def test_no_section_without_clv_tables(tmp_path):
    c = duckdb.connect(str(tmp_path / "crmlens.duckdb"))
    build_workspace(c)
    html = render_report(c, lang="en", generated_at=WHEN)
    assert 'id="clv"' not in html and "could not be built" not in html
    c.close()


def test_no_section_without_a_current_run():
    c = _con(current=False)
    html = render_report(c, lang="en", generated_at=WHEN)
    assert 'id="clv"' not in html and "could not be built" not in html
    c.close()


def test_without_validations_the_model_is_not_claimed_best():
    c = _con(validations=False, selection={})
    text = _section(render_report(c, lang="en", generated_at=WHEN))
    assert "was not compared with others on a holdout period" in text
    assert "Holdout validation" not in text and "Value tiers" in text
    c.close()


def test_old_run_is_ignored_when_it_is_marked_current():
    c = _con()
    c.execute("UPDATE clv_runs SET is_current = (run_id = ?)", [OLD_RUN])
    text = _section(render_report(c, lang="en", generated_at=WHEN))
    assert "999,999" in text and "Customers scored 1 " in text
    c.close()


def test_a_rescoring_shows_the_validation_of_the_fit_it_reused():
    c = _con()
    c.execute("UPDATE clv_runs SET is_current = false")
    c.execute("""INSERT INTO clv_runs SELECT * REPLACE ('42' AS run_id, true AS is_current,
                     'clv.predict' AS step, 104 AS horizon) FROM clv_runs WHERE run_id = ?""",
              [RUN])
    c.execute("INSERT INTO clv_scores SELECT * REPLACE ('42' AS run_id) FROM clv_scores "
              "WHERE run_id = ?", [RUN])
    text = _section(render_report(c, lang="en", generated_at=WHEN))
    assert "CLV run 42" in text and "horizon 104 weeks" in text
    assert "Model comparison" in text and "BG/NBD (best)" in text
    c.close()


@pytest.mark.parametrize("selection, expected", [
    ({"method": "bic", "candidates": ["bgnbd", "mbgnbd", "pareto_nbd"], "best": "bgnbd"},
     "chosen by the lowest BIC of the 3 models fitted"),
    ({"method": "fixed", "best": "bgnbd"}, "set by the user."),
    ({"method": "holdout", "best": "bgnbd"}, "it predicted a holdout period best of the models"),
    ({"method": "holdout", "best": "pareto_nbd"}, "best was Pareto/NBD; this model replaces it"),
])
def test_why_the_model_was_used(selection, expected):
    c = _con(validations=False, selection=selection)
    assert expected in _section(render_report(c, lang="en", generated_at=WHEN))
    c.close()


def test_user_choice_names_the_comparison_best():
    c = _con(selection={"method": "fixed", "best": "bgnbd"})
    c.execute("UPDATE clv_validations SET is_best = (model = 'bgbb')")
    text = _section(render_report(c, lang="zh", generated_at=WHEN))
    assert "该购买模型由用户指定；在留出期比较中，误差最低的是 BG/BB。" in text
    c.close()
