"""`crmlens clv ...` and the clv stage of `crmlens run`, in-process on temporary workspaces."""

from __future__ import annotations

import json

import pytest

from crmlens.datasets.generator import generate_dataset


@pytest.fixture(autouse=True)
def english():
    # Some tests pass --lang zh, which sets the process language; pin it back.
    from crmlens.i18n import set_language

    set_language("en")
    yield
    set_language("en")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clvcli")
    return generate_dataset(root / "data", n_customers=300, seed=2, start="2022-07-01")


def test_fit_show_predict_json_and_text(tmp_path, cli, data):
    ws = tmp_path / "ws"
    assert cli("ingest", "transactions", data.transactions, "-w", ws).exit_code == 0
    r = cli("clv", "fit", "--model", "bgnbd", "--horizon", "26", "--margin", "0.4",
            "-w", ws, "--format", "json")
    assert r.exit_code == 0, r.output
    fit = json.loads(r.stdout)
    assert fit["purchase_model"] == "bgnbd" and fit["horizon"] == 26 and fit["margin"] == 0.4
    assert [t["tier"] for t in fit["tiers"]] == ["top", "high", "medium", "low"]
    assert sum(t["customers"] for t in fit["tiers"]) == fit["n_customers"] == 300
    assert {p["name"] for p in fit["parameters"]} == {"r", "alpha", "a", "b"}
    assert all(p["se"] is not None for p in fit["parameters"])
    r = cli("clv", "predict", "--horizon", "52", "--discount-rate", "0.01", "-w", ws,
            "--format", "json")
    assert r.exit_code == 0, r.output
    pred = json.loads(r.stdout)
    assert pred["fitted_in"] == fit["run_id"] and pred["params"] == fit["params"]
    text = cli("clv", "show", fit["run_id"], "-w", ws)
    assert text.exit_code == 0
    for piece in ("bgnbd", "alpha", "Value tiers", "Top", "Low"):
        assert piece in text.stdout
    zh = cli("clv", "show", "-w", ws, "--lang", "zh")
    assert "价值层级" in zh.stdout


def test_validate_json(tmp_path, cli, data):
    ws = tmp_path / "ws"
    cli("ingest", "transactions", data.transactions, "-w", ws)
    r = cli("clv", "validate", "--horizon", "26", "--model", "bgnbd", "--model", "mbgnbd",
            "-w", ws, "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["best"] in {"bgnbd", "mbgnbd"} and len(out["models"]) == 2


@pytest.mark.parametrize("args, needle", [
    (["--model", "nbd9"], "nbd9"),
    (["--unit", "fortnights"], "fortnights"),
    (["--margin", "2"], "margin"),
    (["--as-of", "2024-13-45"], "2024-13-45"),
    (["--penalizer", "-1"], "penalizer"),
])
def test_bad_options_give_a_message_and_exit_2(tmp_path, cli, data, args, needle):
    ws = tmp_path / "ws"
    cli("ingest", "transactions", data.transactions, "-w", ws)
    r = cli("clv", "fit", *args, "-w", ws)
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output


def test_no_workspace_or_no_runs(tmp_path, cli, data):
    r = cli("clv", "show", "-w", tmp_path / "nothing")
    assert r.exit_code == 3 and "Traceback" not in r.output
    ws = tmp_path / "ws"
    cli("ingest", "transactions", data.transactions, "-w", ws)
    r = cli("clv", "show", "-w", ws)
    assert r.exit_code == 2 and "crmlens clv fit" in r.output


def test_run_includes_the_clv_stage(tmp_path, cli, data):
    r = cli("run", data.transactions, "-w", tmp_path / "ws", "--format", "json")
    assert r.exit_code == 0, r.output
    stage = json.loads(r.stdout)["stages"]["clv"]
    assert stage["customers"] == 300 and stage["clv_total"] > 0
    shown = json.loads(cli("clv", "show", "-w", tmp_path / "ws", "--format", "json").stdout)
    assert shown["run_id"] == str(stage["run_id"]) and shown["purchase_model"] == stage["model"]


def test_run_skips_clv_for_tiny_data(tmp_path, cli, orders_csv):
    r = cli("run", orders_csv, "-w", tmp_path / "ws", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["stages"]["clv"]["skipped"] == "too_few_customers"
    text = cli("run", orders_csv, "-w", tmp_path / "ws2")
    assert "CLV skipped" in text.stdout
