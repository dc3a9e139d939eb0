"""CLV tables in the workspace: one transaction per step, the current run, re-scoring."""

from __future__ import annotations

import json
import shutil

import pytest

from crmlens import Workspace
from crmlens.clv import store as clv_store
from crmlens.datasets.generator import generate_dataset
from crmlens.errors import InputError
from tests.conftest import snapshot


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("clvstore")
    data = generate_dataset(root / "data", n_customers=400, seed=4, start="2022-07-01")
    ws = Workspace(root / "ws")
    ws.ingest("transactions", data.transactions)
    return ws.path


@pytest.fixture
def ws(base, tmp_path):
    target = tmp_path / "ws"
    shutil.copytree(base, target)
    return Workspace(target)


def test_fit_writes_every_table_and_a_runs_row(ws):
    res = ws.clv_fit(model="auto")
    rid = str(res.run_id)
    run = ws.sql("SELECT purchase_model, unit, horizon, n_customers, is_current, params, se, "
                 "diagnostics, spend_params, observation_end FROM clv_runs")
    assert len(run) == 1
    model, unit, horizon, n, current, params, se, diag, spend, end = run[0]
    assert (model, unit, horizon, n, current) == (res.purchase_model, "weeks", 52, 400, True)
    assert set(json.loads(params)) == set(res.model.params_) == set(json.loads(se))
    assert set(json.loads(spend)) == {"p", "q", "v"}
    assert {"gg_correlation", "gg_independence_suspect", "notes"} <= set(json.loads(diag))
    assert ws.sql("SELECT count(*), count(DISTINCT customer_id) FROM clv_scores "
                  "WHERE run_id = ?", [rid])[0] == (400, 400)
    # The holdout comparison is stored with the fit's run id, the chosen model marked best.
    best = ws.sql("SELECT model FROM clv_validations WHERE run_id = ? AND is_best", [rid])
    assert best == [(res.comparison.best,)]
    charts = {c for (c,) in ws.sql("SELECT DISTINCT chart FROM clv_validation_curves")}
    assert "by_frequency" in charts
    step = ws.runs(1)[0]
    assert step["step"] == "clv.fit" and step["run_id"] == res.run_id
    assert step["row_counts"]["customers"] == 400 and step["params"]["model"] == "auto"


def test_refit_moves_current_and_predict_reuses_the_fit(ws):
    first = ws.clv_fit(model="bgnbd")
    second = ws.clv_fit(model="mbgnbd", horizon=26)
    current = ws.sql("SELECT run_id FROM clv_runs WHERE is_current")
    assert current == [(str(second.run_id),)]
    assert ws.clv_show()["purchase_model"] == "mbgnbd"
    assert ws.clv_show(first.run_id)["purchase_model"] == "bgnbd"
    again = ws.clv_predict(run=first.run_id, horizon=104, margin=0.5)
    shown = ws.clv_show()
    assert shown["run_id"] == str(again.run_id) and shown["fitted_in"] == str(first.run_id)
    assert shown["params"] == pytest.approx(first.model.params_)   # no refit
    assert shown["horizon"] == 104 and shown["margin"] == 0.5
    assert shown["log_likelihood"] == pytest.approx(first.model.log_likelihood_)
    old = first.scores.set_index("customer_id")["clv"]
    new = again.scores.set_index("customer_id")["clv"]
    assert (new.sum() > 0.5 * old.sum()) and new.sum() != pytest.approx(old.sum())
    assert ws.sql("SELECT count(*) FROM clv_runs WHERE is_current")[0][0] == 1
    assert [r["step"] for r in ws.clv_runs()][:1] == ["clv.predict"]


def test_failure_mid_step_leaves_previous_results(ws, monkeypatch):
    ws.clv_fit(model="bgnbd")
    before = snapshot(ws.path)

    def broken(con, *args, **kwargs):
        con.execute("DELETE FROM clv_scores")   # damage done inside the step ...
        raise RuntimeError("disk on fire")      # ... then the step fails

    monkeypatch.setattr(clv_store, "save_validation", broken)
    with pytest.raises(RuntimeError):
        ws.clv_fit(model="auto")
    monkeypatch.setattr(clv_store, "save_run", broken)
    with pytest.raises(RuntimeError):
        ws.clv_predict(horizon=10)
    assert snapshot(ws.path) == before


def test_bad_requests_touch_nothing(ws):
    before = snapshot(ws.path)
    with pytest.raises(InputError):
        ws.clv_fit(model="nope")
    with pytest.raises(InputError, match="crmlens clv fit"):
        ws.clv_predict()
    with pytest.raises(InputError):
        ws.clv_show()
    assert snapshot(ws.path) == before
    ws.clv_fit(model="bgnbd")
    with pytest.raises(InputError) as info:
        ws.clv_show(999)
    assert info.value.key == "error.clv_run_missing"


def test_validate_stores_a_comparison(ws):
    out = ws.clv_validate(horizon=26, models=["bgnbd", "mbgnbd"])
    assert {m["model"] for m in out["models"]} == {"bgnbd", "mbgnbd"}
    assert sum(m["is_best"] for m in out["models"]) == 1
    rows = ws.sql("SELECT count(*), min(calibration_end)::VARCHAR FROM clv_validations "
                  "WHERE run_id = ?", [str(out["run_id"])])
    assert rows == [(2, out["calibration_end"])]
    assert ws.runs(1)[0]["step"] == "clv.validate"
    assert not ws.clv_runs()   # validation alone writes no scores
    with pytest.raises(InputError) as info:
        ws.clv_validate(horizon=200)
    assert info.value.key == "error.clv_history_too_short"
