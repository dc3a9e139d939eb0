"""`crmlens churn ...` end to end, in-process, on temporary workspaces.

Transactions mode on generated shop data (rolling cutoffs), labelled mode on a slice of the
UCI Bank Marketing file, and the bad-input paths (clear message, non-zero exit, workspace
unchanged).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from crmlens.datasets.generator import generate_dataset
from tests.conftest import snapshot

BANK = Path(__file__).resolve().parents[2] / "shared/data/bank_marketing/bank-full.parquet"
FAST = ("--models", "logreg,cart", "--no-search")


@pytest.fixture(autouse=True)
def english():
    from crmlens.i18n import set_language

    set_language("en")
    yield
    set_language("en")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("churncli")
    return generate_dataset(root / "data", n_customers=400, seed=5, start="2022-01-01",
                            end="2023-12-31")


@pytest.fixture(scope="module")
def bank_csv(tmp_path_factory):
    if not BANK.exists():
        pytest.skip("the shared Bank Marketing file is not on this machine")
    path = tmp_path_factory.mktemp("bank") / "bank.csv"
    con = duckdb.connect()
    # every 9th row: ~5,000 customers, the positive rate of the whole file
    con.execute(f"COPY (SELECT * FROM read_parquet('{BANK}') QUALIFY row_number() OVER () % 9 = 0)"
                f" TO '{path}' (HEADER)")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shop):
    from typer.testing import CliRunner

    from crmlens.cli import app

    ws = tmp_path_factory.mktemp("ws") / "shop"
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "transactions", str(shop.transactions), "-w",
                               str(ws)]).exit_code == 0
    r = runner.invoke(app, ["churn", "train", *FAST, "-w", str(ws), "--format", "json"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return ws, json.loads(r.stdout)


def test_train_transactions_mode(trained):
    ws, out = trained
    assert out["mode"] == "transactions" and out["target"] == "churn"
    assert out["window_days"] == 90 and len(out["cutoffs"]) == 6
    assert out["cutoffs"] == sorted(out["cutoffs"])
    models = [m["model"] for m in out["models"]]
    assert set(models) == {"logreg", "cart", "baseline"} and models[-1] == "baseline"
    best = [m for m in out["models"] if m["is_best"]]
    assert len(best) == 1 and best[0]["model"] == out["best_model"]
    assert best[0]["roc_auc"] >= max(m["roc_auc"] for m in out["models"] if not m["is_baseline"])
    assert out["grade"] in {"clearly_better", "better", "no_better"}
    assert sum(out["bands"].values()) == out["n_scored"] > 0
    assert all(0 <= r["probability"] <= 1 for r in out["at_risk"])
    assert [r["risk_rank"] for r in out["at_risk"]] == sorted(r["risk_rank"]
                                                              for r in out["at_risk"])
    con = duckdb.connect(str(ws / "crmlens.duckdb"), read_only=True)
    try:
        n_customers = con.execute("SELECT count(DISTINCT customer_id) FROM transactions "
                                  "WHERE customer_id IS NOT NULL").fetchone()[0]
        scored, bad = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE risk_band <> CASE WHEN probability >= 0.6 "
            "THEN 'high' WHEN probability >= 0.3 THEN 'medium' ELSE 'low' END) "
            "FROM churn_scores WHERE run_id = ?", [str(out["run_id"])]).fetchone()
        days = con.execute("SELECT min(expected_days_to_next), max(expected_days_to_next) "
                           "FROM churn_scores WHERE run_id = ?", [str(out["run_id"])]).fetchone()
    finally:
        con.close()
    assert scored == out["n_scored"] and scored <= n_customers and bad == 0
    assert days[0] is not None and 0 <= days[0] <= days[1] <= 90
    assert (ws / "models" / f"churn_{out['run_id']}.joblib").exists()


def test_evaluate_score_and_customer(trained, cli):
    ws, out = trained
    ev = cli("churn", "evaluate", "-w", ws, "--format", "json")
    assert ev.exit_code == 0, ev.output
    data = json.loads(ev.stdout)
    kinds = {(c["model"], c["kind"]) for c in data["curves"]}
    for kind in ("roc", "pr", "lift", "calibration"):
        assert (out["best_model"], kind) in kinds and ("baseline", kind) in kinds
    assert data["importance"][0]["rank"] == 1
    score = cli("churn", "score", "-w", ws, "--format", "json")
    assert score.exit_code == 0, score.output
    rescored = json.loads(score.stdout)
    assert str(rescored["fitted_in"]) == str(out["run_id"])
    assert rescored["n_scored"] == out["n_scored"]
    top = out["at_risk"][0]
    one = cli("churn", "score", "--customer", top["customer_id"], "-w", ws, "--format", "json")
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["probability"] == pytest.approx(top["probability"])
    from crmlens.i18n import t

    text = cli("churn", "show", "-w", ws)
    assert text.exit_code == 0
    assert t(f"predict.model.{out['best_model']}") in text.stdout
    zh = cli("churn", "evaluate", "-w", ws, "--lang", "zh")
    assert zh.exit_code == 0 and "朴素基线" in zh.stdout


def test_churn_per_segment_in_segment_show(trained, cli):
    ws, out = trained
    assert cli("features", "-w", ws).exit_code == 0
    r = cli("segment", "rfm", "-w", ws, "--format", "json")
    assert r.exit_code == 0, r.output
    run_id = json.loads(r.stdout)["run"]["run_id"]
    shown = cli("segment", "show", run_id, "-w", ws, "--format", "json")
    assert shown.exit_code == 0, shown.output
    segments = json.loads(shown.stdout)["segments"]
    scored = [s for s in segments if s.get("mean_risk") is not None]
    assert scored and all(0 <= s["mean_risk"] <= 1 for s in scored)
    # the customer-weighted mean risk over segments is the mean over all scored customers
    con = duckdb.connect(str(ws / "crmlens.duckdb"), read_only=True)
    try:
        overall = con.execute("SELECT avg(probability) FROM churn_scores WHERE run_id = ?",
                              [str(out["run_id"])]).fetchone()[0]
    finally:
        con.close()
    weighted = sum(s["mean_risk"] * s["n_scored"] for s in scored) / sum(s["n_scored"]
                                                                         for s in scored)
    assert weighted == pytest.approx(overall, rel=1e-6)
    text = cli("segment", "show", run_id, "-w", ws)
    assert "Churn" in text.stdout or "churn" in text.stdout


@pytest.mark.slow
def test_labelled_mode_bank_marketing(tmp_path, cli, bank_csv):
    ws = tmp_path / "ws"
    with_duration = cli("churn", "train", "--label", "y", "--data", bank_csv,
                        "--models", "logreg,hist_gbm", "--no-search", "-w", ws,
                        "--format", "json")
    assert with_duration.exit_code == 0, with_duration.output
    out = json.loads(with_duration.stdout)
    assert out["mode"] == "labelled" and out["positive"] == "yes"
    assert [w["feature"] for w in out["leakage"]] == ["duration"]
    # every family, without the leaky column
    without = cli("churn", "train", "--label", "y", "--data", bank_csv, "--exclude", "duration",
                  "--no-search", "-w", ws, "--format", "json")
    assert without.exit_code == 0, without.output
    out2 = json.loads(without.stdout)
    assert out2["leakage"] == []
    assert "duration" not in {f["name"] for f in out2["features"]}
    from crmlens.predict.models import MODEL_FAMILIES

    assert all(m["error"] is None for m in out2["models"])
    auc = {m["model"]: m["roc_auc"] for m in out2["models"]}
    assert set(auc) == {*MODEL_FAMILIES, "baseline"}
    assert all(auc[name] > 0.65 for name in MODEL_FAMILIES)
    assert 0.74 < auc[out2["best_model"]] < 0.85
    assert auc["baseline"] == pytest.approx(0.5, abs=0.01)
    # scoring a labelled run on transactions makes no sense: a clear error
    r = cli("churn", "score", "-w", ws)
    assert r.exit_code != 0 and "label column" in r.output


def test_bad_input_leaves_workspace_unchanged(trained, cli, tmp_path, bank_csv):
    ws, _ = trained
    before = snapshot(ws)
    r = cli("churn", "train", "--label", "no_such_column", "--data", bank_csv, *FAST, "-w", ws)
    assert r.exit_code != 0 and "no_such_column" in r.output and "Traceback" not in r.output
    r = cli("churn", "train", "--target", "bogus", *FAST, "-w", ws)
    assert r.exit_code != 0 and "bogus" in r.output
    r = cli("churn", "train", "--models", "logreg,nonsense", "--no-search", "-w", ws)
    assert r.exit_code != 0 and "nonsense" in r.output
    r = cli("churn", "train", "--window", "2000", *FAST, "-w", ws)
    assert r.exit_code != 0 and "--window" in r.output
    r = cli("churn", "score", "--customer", "NOBODY", "-w", ws)
    assert r.exit_code != 0 and "NOBODY" in r.output
    assert snapshot(ws) == before


def test_no_runs_yet(tmp_path, cli):
    ws = tmp_path / "empty"
    assert cli("init", ws).exit_code == 0
    r = cli("churn", "show", "-w", ws)
    assert r.exit_code != 0 and "churn train" in r.output
