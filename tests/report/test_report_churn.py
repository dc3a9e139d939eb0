"""The report's churn section, on a synthetic churn run stored with ``predict.store.save_run``
(no model is trained).

Run ``"7"`` scores twelve customers: high band C1 (0.90), C3 (0.80), C5 (0.70), C9 (0.99),
C11 (0.95); medium C2, C4, C6; low C7, C8, C10, C12. With the CLV tables of
``tests/report/clv_tables.py`` (C1..C10 with CLV 100, 80, 50, 40, 30, 20, 10, 5, 3, 2) the
value at risk is C1 90, C3 40, C5 21, C9 2.97 and C11 unknown (no CLV), so they rank C1, C3,
C5, C9, C11; by probability alone they rank C9, C11, C1, C3, C5.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from crmlens.predict import store
from crmlens.report import churn_charts, render_report
from crmlens.segment.labels import feature_label
from tests.report.clv_tables import create_clv_tables
from tests.report.conftest import build_workspace

WHEN = datetime(2024, 5, 6, 7, 8, 9)
RUN = "7"

PROBABILITY = {"C1": 0.90, "C2": 0.50, "C3": 0.80, "C4": 0.45, "C5": 0.70, "C6": 0.40,
               "C7": 0.20, "C8": 0.10, "C9": 0.99, "C10": 0.05, "C11": 0.95, "C12": 0.15}
BY_VALUE = ["C1", "C3", "C5", "C9", "C11"]
BY_PROBABILITY = ["C9", "C11", "C1", "C3", "C5"]

FEATURES = [{"name": "recency_days", "label": "Recency"},
            {"name": "frequency", "label": "Frequency"},
            {"name": "monetary", "label": "Monetary"},
            {"name": "days_since_complaint", "label": "days_since_complaint"}]
LEAKAGE = [{"feature": "days_since_complaint", "auc": 0.991, "others_auc": 0.71,
            "message_key": "predict.leakage.beats_others"}]


def _band(p: float) -> str:
    return "high" if p >= 0.6 else "medium" if p >= 0.3 else "low"


def _models() -> list[dict]:
    def row(model, auc, **kw):
        return {"model": model, "is_best": model == "hist_gbm", "is_baseline": model == "baseline",
                "roc_auc": auc, "pr_auc": auc - 0.2, "log_loss": 0.45, "brier": 0.15,
                "lift_top_decile": 2.5, "capture_top_decile": 0.25, "accuracy": 0.8,
                "precision": 0.7, "recall": 0.6, "f1": 0.646, "roc_auc_std": 0.012,
                "fit_seconds": 1.5, "n_train": 800, "n_test": 200, "params": {"a": 1}, **kw}

    return [row("hist_gbm", 0.812), row("logreg", 0.790),
            {"model": "svm", "is_best": False, "is_baseline": False,
             "error": "did not converge"},
            row("baseline", 0.650, roc_auc_std=None)]


def _curves() -> pd.DataFrame:
    rows = []
    for model, bend in (("hist_gbm", 0.7), ("baseline", 0.5)):
        rows += [(model, "roc", x, y, None) for x, y in ((0, 0), (0.2, bend), (1, 1))]
        rows += [(model, "lift", x / 10, 3.0 - 2 * x / 10, x * 10) for x in range(1, 11)]
        rows += [(model, "calibration", x, x * bend + 0.05, 40) for x in (0.1, 0.5, 0.9)]
        rows += [(model, "pr", x, 1 - x / 2, None) for x in (0.0, 0.5, 1.0)]
    return pd.DataFrame(rows, columns=["model", "kind", "x", "y", "n"])


def _scores() -> pd.DataFrame:
    ranked = sorted(PROBABILITY, key=lambda c: -PROBABILITY[c])
    return pd.DataFrame({
        "customer_id": list(PROBABILITY), "probability": list(PROBABILITY.values()),
        "risk_band": [_band(p) for p in PROBABILITY.values()],
        "risk_rank": [ranked.index(c) + 1 for c in PROBABILITY],
        "observed": [p > 0.5 for p in PROBABILITY.values()],
        "expected_days_to_next": [round(100 * p, 1) for p in PROBABILITY.values()]})


def _factors() -> pd.DataFrame:
    rows = []
    for cid in PROBABILITY:
        rows += [(cid, 1, "recency_days", 210.0, 45.0, 0.18),
                 (cid, 2, "frequency", 1.0, 4.0, -0.05),
                 (cid, 3, "monetary", 12.0, 80.0, 0.04)]
    return pd.DataFrame(rows, columns=["customer_id", "rank", "feature", "value", "reference",
                                       "effect"])


def _run(**overrides) -> dict:
    return {"step": "churn.train", "mode": "transactions", "target": "churn",
            "window_days": 90, "cutoffs": ["2023-01-01", "2023-02-01", "2023-03-01"],
            "as_of": date(2023, 4, 1), "best_model": "hist_gbm", "grade": "clearly_better",
            "threshold": 0.5, "positive_rate": 0.35, "n_train": 1000, "n_scored": 12,
            "features": FEATURES, "leakage": LEAKAGE, "metrics": {}, "settings": {},
            **overrides}


def save_churn_run(con: duckdb.DuckDBPyConnection, **overrides) -> None:
    store.save_run(con, RUN, run=_run(**overrides), models=_models(), curves=_curves(),
                   importance=pd.DataFrame({
                       "feature": [f["name"] for f in FEATURES],
                       "importance": [0.12, 0.05, 0.02, 0.3], "std": [0.01, 0.01, 0.0, 0.02],
                       "rank": [2, 3, 4, 1]}),
                   scores=_scores(), factors=_factors())


def _con(*, clv: bool = False, churn: bool = True, **overrides) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    build_workspace(con)
    if clv:
        create_clv_tables(con)
    if churn:
        save_churn_run(con, **overrides)
    return con


@pytest.fixture(scope="module")
def con():
    c = _con(clv=True)
    yield c
    c.close()


def _raw_section(html: str) -> str:
    match = re.search(r'<section class="section" id="churn">(.*?)</section>', html, re.DOTALL)
    assert match, "no churn section"
    return match.group(1)


def _section(html: str) -> str:
    """The churn section's visible text, tags and chart specs removed."""
    text = re.sub(r"<script.*?</script>", " ", _raw_section(html), flags=re.DOTALL)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html_lib.unescape(text))


def _rows(html: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", _raw_section(html), re.DOTALL)
    return [[html_lib.unescape(re.sub(r"\s+", " ", c).strip())
             for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.DOTALL)] for r in rows]


def _at_risk_ids(html: str) -> list[str]:
    """Customer ids of the at-risk table (its rows start with a rank)."""
    return [r[1] for r in _rows(html) if r and r[0].isdigit() and r[1].startswith("C")]


def _charts(html: str) -> list[dict]:
    specs = re.findall(r'<script type="application/json" class="chart-spec" '
                       r'data-target="[^"]+">(.*?)</script>', _raw_section(html), re.DOTALL)
    return [json.loads(s) for s in specs]


@pytest.mark.parametrize("lang, texts", [
    ("en", ["Churn prediction", "Model comparison", "Customers scored", "Gradient boosting",
            "High risk", "41.7%", "25.0%", "33.3%", "5 customers",
            "no purchase in the 90 days after the cutoff",
            "3 rolling cutoffs from 2023-01-01 to 2023-03-01", "2023-04-01",
            "clearly better than the naive baseline (ROC AUC 0.812 against 0.650)",
            "What drives the predictions", "The 5 high-risk customers with the most value"]),
    ("zh", ["流失预测", "模型比较", "已评分客户", "梯度提升", "高风险", "41.7%", "5 位客户",
            "截止日之后 90 天内没有购买", "2023-01-01 至 2023-03-01 的 3 个滚动截止日",
            "最佳模型明显优于朴素基线（ROC AUC 0.812，基线 0.650）", "影响预测的因素",
            "价值最高的 5 位高风险客户"]),
])
def test_section_headline_in_both_languages(con, lang, texts):
    html = render_report(con, lang=lang, generated_at=WHEN)
    text = _section(html)
    for expected in texts:
        assert expected in text, expected
    assert "report.churn." not in text and "predict." not in text


@pytest.mark.parametrize("lang, leak", [
    ("en", "“days_since_complaint” alone predicts the outcome better (ROC AUC 0.991) than all "
           "the other features together (0.710)"),
    ("zh", "仅凭“days_since_complaint”预测结果（ROC AUC 0.991）"
           "就比其余所有特征合起来（0.710）更准"),
])
def test_leakage_warning_comes_first(con, lang, leak):
    raw = _raw_section(render_report(con, lang=lang, generated_at=WHEN))
    warning = re.search(r'<li class="finding warning">(.*?)</li>', raw, re.DOTALL)
    assert warning and leak in html_lib.unescape(warning.group(1))
    # Prominent: before the KPI cards and everything else of the section.
    assert raw.index('class="finding warning"') < raw.index('class="kpis')


def test_model_table_marks_best_and_baseline_and_failures(con):
    rows = {r[0]: r for r in _rows(render_report(con, lang="en", generated_at=WHEN)) if r}
    best = rows["★ Gradient boosting (best)"]
    assert best[1:] == ["0.812 ± 0.012", "0.612", "0.450", "0.150", "2.50", "25.0%", "70.0%",
                        "60.0%", "0.646", "1.5"]
    assert rows["Logistic regression"][1] == "0.790 ± 0.012"
    assert rows["Naive baseline (baseline)"][1] == "0.650"
    assert rows["Support vector machine"][-1] == "failed: did not converge"
    order = [k for k in rows if k in ("★ Gradient boosting (best)", "Logistic regression",
                                      "Support vector machine", "Naive baseline (baseline)")]
    assert order[0].startswith("★") and order[-1] == "Naive baseline (baseline)"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_charts_roc_lift_calibration_importance(con, lang):
    html = render_report(con, lang=lang, generated_at=WHEN)
    charts = _charts(html)
    assert len(charts) == 4
    assert len(re.findall(r'<div class="plot" id="chart-\d+"', _raw_section(html))) == 4
    roc, lift, calibration, importance = charts
    best, baseline = ("Gradient boosting", "Naive baseline") if lang == "en" else ("梯度提升",
                                                                                   "朴素基线")
    for fig in (roc, lift, calibration):
        names = [tr["name"] for tr in fig["data"]]
        assert names[:2] == [best, baseline] and len(names) == 3
    assert roc["data"][2]["x"] == [0, 1] and roc["data"][2]["y"] == [0, 1]  # the diagonal
    assert lift["data"][2]["y"] == [1, 1]                                  # no lift
    assert calibration["data"][0]["customdata"] == [40, 40, 40]
    assert calibration["data"][2]["x"] == [0, 1] and calibration["data"][2]["y"] == [0, 1]
    bars = importance["data"][0]
    assert bars["x"] == [0.3, 0.12, 0.05, 0.02]
    # Catalogue features in the report's language; other columns keep their stored label.
    assert bars["y"] == ["days_since_complaint"] + [
        feature_label(name, lang=lang) for name in ("recency_days", "frequency", "monetary")]
    assert (bars["y"][1] == "Recency") == (lang == "en")


def test_at_risk_ranked_by_value_at_risk_with_clv(con):
    html = render_report(con, lang="en", generated_at=WHEN)
    assert _at_risk_ids(html) == BY_VALUE
    rows = {r[1]: r for r in _rows(html) if len(r) > 2 and r[1] in BY_VALUE}
    # rank, customer, probability, CLV, value at risk, days to next, why
    assert rows["C1"][:6] == ["1", "C1", "90.0%", "100.00", "90.00", "90"]
    assert rows["C11"][3:5] == ["–", "–"]
    why = rows["C1"][6]
    assert "raises the risk by 18.0 points" in why and "raises the risk by 4.0 points" in why
    assert "lowers" not in why and "210" in why and "45" in why
    text = _section(html)
    assert "Predicted CLV at risk across the 5 high-band customers: 154" in text
    assert "Predicted CLV" in text and "Value at risk" in text


def test_at_risk_reasons_in_chinese(con):
    html = render_report(con, lang="zh", generated_at=WHEN)
    rows = [r for r in _rows(html) if len(r) > 2 and r[1] == "C1"]
    assert "使风险升高 18.0 个百分点" in rows[-1][-1]
    assert "预测 CLV" in _section(html)


def test_at_risk_by_probability_without_values():
    con = _con()
    try:
        html = render_report(con, lang="en", generated_at=WHEN)
    finally:
        con.close()
    assert _at_risk_ids(html) == BY_PROBABILITY
    text = _section(html)
    assert "ranked by probability" in text and "Value at risk" not in text


def test_at_risk_by_past_spend_from_features():
    con = _con()
    con.execute("CREATE TABLE customer_features (as_of DATE, customer_id VARCHAR, "
                "monetary DOUBLE)")
    spend = {"C1": 10.0, "C3": 500.0, "C5": 20.0, "C9": 1.0, "C11": 1000.0}
    con.executemany("INSERT INTO customer_features VALUES (?, ?, ?)",
                    [(date(2023, 4, 1), c, v) for c, v in spend.items()]
                    + [(date(2022, 1, 1), "C1", 99999.0)])  # another as-of date: ignored
    try:
        html = render_report(con, lang="en", generated_at=WHEN)
    finally:
        con.close()
    # C11 950, C3 400, C5 14, C1 9, C9 0.99
    assert _at_risk_ids(html) == ["C11", "C3", "C5", "C1", "C9"]
    assert "Past spend" in _section(html)


def test_scoring_run_reuses_the_fit():
    con = _con(clv=True)
    try:
        store.save_run(con, "8", run=_run(step="churn.score", fitted_in=RUN),
                       scores=_scores().assign(probability=0.61, risk_band="high"))
        html = render_report(con, lang="en", generated_at=WHEN)
    finally:
        con.close()
    text = _section(html)
    assert "reuse the model trained in run 7" in text and "(churn run 8)" in text
    assert "★ Gradient boosting (best)" in text and len(_charts(html)) == 4
    assert "100.0%" in text  # every customer in the high band of run 8
    assert _at_risk_ids(html)[:3] == ["C1", "C2", "C3"]  # same probability: by CLV


def test_labelled_run_and_no_better_grade():
    con = _con(mode="labelled", target="subscribed", positive="yes", window_days=None,
               cutoffs=[], grade="no_better", leakage=[])
    try:
        html = render_report(con, lang="en", generated_at=WHEN)
    finally:
        con.close()
    text = _section(html)
    assert "the customers' column “subscribed”, with “yes” counting as yes" in text
    assert "1,000 labelled customers" in text
    assert "No model does better than the naive baseline" in text
    assert 'class="finding warning"' in _raw_section(html)  # the no-better grade warns


def test_no_high_risk_customers():
    con = _con()
    try:
        con.execute("UPDATE churn_scores SET risk_band = 'low'")
        html = render_report(con, lang="zh", generated_at=WHEN)
    finally:
        con.close()
    assert "没有客户处于高风险等级" in _section(html)


@pytest.mark.parametrize("setup", ["no_tables", "none_current"])
def test_no_churn_run_means_no_section(setup):
    con = _con(churn=setup == "none_current")
    try:
        if setup == "none_current":
            con.execute("UPDATE churn_runs SET is_current = false")
        html = render_report(con, lang="en", generated_at=WHEN)
    finally:
        con.close()
    assert 'id="churn"' not in html and "Churn prediction" not in html
    assert "could not be built" not in html


def test_importance_chart_keeps_top_features():
    frame = pd.DataFrame({"feature": [f"f{i}" for i in range(20)],
                          "importance": [1 / (i + 1) for i in range(20)],
                          "std": [0.0] * 20, "rank": range(1, 21)})
    fig = churn_charts.importance_chart(frame, {"f0": "First"}, "en")
    assert list(fig.data[0].y) == ["First"] + [f"f{i}" for i in range(1, 15)]
