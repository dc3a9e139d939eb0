"""CLV scoring of a workspace: model choice, vectorised predictions, tiers, diagnostics."""

from __future__ import annotations

import sys
from datetime import date

import duckdb
import numpy as np
import pytest

from crmlens import Workspace
from crmlens.clv import scoring
from crmlens.clv.scoring import holdout_split_dates, score_customers
from crmlens.datasets.generator import generate_dataset
from crmlens.errors import InputError
from tests.conftest import ONLINE_RETAIL


@pytest.fixture(scope="module")
def gen_db(tmp_path_factory):
    base = tmp_path_factory.mktemp("clvgen")
    data = generate_dataset(base / "data", n_customers=600, seed=11,
                            start="2022-07-01")
    ws = Workspace(base / "ws")
    ws.ingest("transactions", data.transactions)
    return ws.db_path


@pytest.fixture(scope="module")
def retail_db(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("clvretail") / "ws")
    ws.ingest("transactions", ONLINE_RETAIL)
    return ws.db_path


def _con(path):
    return duckdb.connect(str(path), read_only=True)


def _check_scores(scores):
    n = len(scores)
    assert scores["customer_id"].is_unique
    assert (scores["clv"] >= 0).all() and np.isfinite(scores["clv"]).all()
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["expected_purchases"] >= 0).all()
    # A customer buys in the horizon only if alive, and E[X] >= P(X >= 1).
    assert scores["p_purchase"].between(0, 1).all()
    assert (scores["p_purchase"] <= scores["p_alive"] + 1e-9).all()
    assert (scores["p_purchase"] <= scores["expected_purchases"] + 1e-9).all()
    shares = scores["value_tier"].value_counts() / n
    for tier, share in {"top": 0.2, "high": 0.3, "medium": 0.3, "low": 0.2}.items():
        assert shares[tier] == pytest.approx(share, abs=1.5 / n + 1e-9)
    assert sorted(scores["value_rank"]) == list(range(1, n + 1))
    ordered = scores.sort_values("value_rank")
    assert ordered["clv"].is_monotonic_decreasing
    assert (ordered["value_tier"].iloc[0], ordered["value_tier"].iloc[-1]) == ("top", "low")


def test_auto_on_long_history_compares_on_a_holdout(gen_db):
    with _con(gen_db) as con:
        res = score_customers(con, model="auto")
    _check_scores(res.scores)
    sel = res.diagnostics["selection"]
    assert sel["method"] == "holdout" and sel["requested"] == "auto"
    assert res.comparison is not None and res.purchase_model == res.comparison.best
    # The chosen model is refitted on the full history, not the calibration part.
    assert res.model.n_customers_ == res.n_customers == 600
    assert res.diagnostics["one_time_note"].startswith("clv.one_time.")
    assert isinstance(res.diagnostics["gg_correlation"], float)
    assert 0 < res.one_time_share < 1
    # Generated customers do drop out: P(alive) separates them and no warning is given.
    assert res.scores["p_alive"].min() < 0.5
    assert "clv.note.no_dropout_detected" not in res.diagnostics["notes"]


def test_penalizer_applies_to_the_purchase_model_only(gen_db):
    with _con(gen_db) as con:
        plain = score_customers(con, model="bgnbd")
        penalised = score_customers(con, model="bgnbd", penalizer_coef=0.1)
    assert penalised.model.params_ != plain.model.params_
    assert penalised.spend.params_ == pytest.approx(plain.spend.params_, rel=1e-9)


def test_clv_matches_gamma_gamma_customer_lifetime_value(gen_db):
    with _con(gen_db) as con:
        res = score_customers(con, model="bgnbd", horizon=12, period_length=4,
                              discount_rate=0.02, margin=0.3)
    s = res.scores
    expected = res.spend.customer_lifetime_value(
        res.model, s["frequency"], s["recency"], s["T"], s["monetary_value"], time=3,
        period_length=4.0, discount_rate=0.02, margin=0.3)
    np.testing.assert_allclose(s["clv"], expected, rtol=1e-10, atol=1e-9)
    # One-time buyers get the Gamma-Gamma population mean spend.
    p = res.spend.params_
    one = s[s["frequency"] == 0]
    np.testing.assert_allclose(one["expected_spend"], p["v"] * p["p"] / (p["q"] - 1))
    np.testing.assert_allclose(
        s["p_alive"], res.model.conditional_probability_alive(s["frequency"], s["recency"],
                                                              s["T"]))
    assert (one["p_alive"] == 1).all()
    assert res.diagnostics["one_time_note"] == "clv.one_time.bgnbd"


def test_without_spend_model_uses_observed_spend(gen_db):
    with _con(gen_db) as con:
        res = score_customers(con, model="bgnbd", spend_model=None)
    s = res.scores
    rep = s[s["frequency"] > 0]
    np.testing.assert_allclose(rep["expected_spend"], rep["monetary_value"])
    assert res.spend is None and res.diagnostics["gg_correlation"] is None
    _check_scores(s)


def test_retail_bgnbd_collapse_switches_to_mbgnbd(retail_db, monkeypatch):
    # Only the two BG models: the guard is what is tested, not the other fits.
    monkeypatch.setattr(scoring, "available_purchase_models", lambda: ["bgnbd", "mbgnbd"])
    with _con(retail_db) as con:
        res = score_customers(con, model="auto")
        assert res.n_customers == 4329
        notes = res.diagnostics["notes"]
        assert "clv.note.auto_bic_short_history" in notes   # one year: no 2 x 52-week windows
        if res.diagnostics["selection"]["best"] == "bgnbd":
            assert res.purchase_model == "mbgnbd"
            assert "clv.note.bgnbd_collapsed_mbgnbd" in notes
        _check_scores(res.scores)
        # One year of wholesale buyers: MBG/NBD finds no dropout either, and the user is told
        # that P(alive) ranks nobody here.
        assert res.scores["p_alive"].min() > 0.99
        assert "clv.note.no_dropout_detected" in notes
        # Without MBG/NBD the collapsed BG/NBD stays, and the note says what that means.
        monkeypatch.setattr(scoring, "available_purchase_models", lambda: ["bgnbd"])
        only = score_customers(con, model="auto")
    assert only.purchase_model == "bgnbd" and scoring.collapsed(only.model)
    assert "clv.note.bgnbd_collapsed" in only.diagnostics["notes"]
    assert only.scores["p_alive"].min() > 0.999


def test_auto_without_validation_module_falls_back_to_bic(gen_db, monkeypatch):
    monkeypatch.setitem(sys.modules, "crmlens.clv.validation", None)  # import fails
    monkeypatch.setattr(scoring, "available_purchase_models", lambda: ["bgnbd", "mbgnbd"])
    with _con(gen_db) as con:
        res = score_customers(con, model="auto")
    assert res.comparison is None
    assert "clv.note.auto_bic_no_validation" in res.diagnostics["notes"]
    cands = {c["model"]: c["bic"] for c in res.diagnostics["selection"]["candidates"]}
    assert res.diagnostics["selection"]["best"] == min(cands, key=cands.get)


def test_holdout_split_dates():
    # 52-week holdout: calibration end is a Monday 52 weeks back; needs 104 weeks of history.
    cal, window = holdout_split_dates(date(2023, 1, 2), date(2025, 1, 1), unit="weeks",
                                      horizon=52)
    assert window == 52 and cal.weekday() == 0 and cal <= date(2024, 1, 3)
    assert holdout_split_dates(date(2010, 12, 1), date(2011, 12, 10), unit="weeks",
                               horizon=52) is None
    # Short horizons still hold out a quarter.
    cal, window = holdout_split_dates(date(2010, 12, 1), date(2011, 12, 10), unit="weeks",
                                      horizon=4)
    assert window == 13 and cal == date(2011, 9, 5)
    cal, window = holdout_split_dates(date(2020, 1, 1), date(2021, 6, 15), unit="months",
                                      horizon=6)
    assert (cal, window) == (date(2020, 12, 1), 6)


@pytest.mark.parametrize("kwargs, option", [
    ({"horizon": 0}, "horizon"), ({"discount_rate": -0.1}, "discount_rate"),
    ({"margin": 0}, "margin"), ({"margin": 1.5}, "margin"),
    ({"period_length": 100}, "period_length"), ({"spend_model": "pareto"}, "spend_model"),
])
def test_bad_options_name_the_option(gen_db, kwargs, option):
    with _con(gen_db) as con, pytest.raises(InputError) as info:
        score_customers(con, model="bgnbd", **kwargs)
    assert info.value.params["option"] == option


def test_unknown_model_and_unit(gen_db):
    with _con(gen_db) as con:
        with pytest.raises(InputError) as info:
            score_customers(con, model="nbd2")
        assert info.value.key == "error.clv_unknown_model" and "bgnbd" in str(info.value)
        with pytest.raises(InputError) as info:
            score_customers(con, unit="fortnights")
        assert info.value.key == "error.clv_bad_unit"
