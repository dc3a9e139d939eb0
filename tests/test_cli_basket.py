"""`crmlens basket ...` in-process: text and JSON output, errors and exit codes."""

from __future__ import annotations

import json

import pytest

from tests.basket.test_store import _orders_csv, _seed_segments
from crmlens.workspace import Workspace


@pytest.fixture
def ws_path(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", _orders_csv(tmp_path))
    return ws.path


def test_rules_json_and_exact_threshold(cli, ws_path):
    res = cli("basket", "rules", "--min-support", "0.1", "--min-confidence", "1",
              "--max-len", "2", "--format", "json", "-w", ws_path)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["n_baskets"] == 72 and data["basket"] == "order"
    pairs = {(tuple(r["antecedent"]), tuple(r["consequent"])) for r in data["rules"]}
    # Tea always with biscuits, coffee with milk: confidence exactly 1 is kept.
    assert {(("T1",), ("B1",)), (("B1",), ("T1",)), (("C1",), ("M1",))} <= pairs
    assert all(r["confidence"] == 1.0 and r["conviction"] is None for r in data["rules"])


def test_itemsets_text_and_show_with_segments(cli, ws_path):
    res = cli("basket", "itemsets", "--min-support", "5", "--kind", "all", "--top", "3",
              "-w", ws_path)
    assert res.exit_code == 0, res.output
    assert "72 baskets" in res.stdout and "BISCUITS" in res.stdout
    assert "support 5 (5 baskets)" in res.stdout
    _seed_segments(Workspace(ws_path))
    res = cli("basket", "rules", "--segment-run", "groups", "--min-support", "0.1",
              "--lang", "zh", "-w", ws_path)
    assert res.exit_code == 0, res.output
    assert "提升度" in res.stdout and "coffee" in res.stdout
    res = cli("basket", "show", "--segment", "tea", "--format", "json", "-w", ws_path)
    data = json.loads(res.stdout)
    assert data["segment"] == "tea"
    assert all("C1" not in r["antecedent"] + r["consequent"] for r in data["rules"])


@pytest.mark.parametrize("args, code, text", [
    (["rules", "--min-support", "lots"], 2, "--min-support"),
    (["rules", "--min-support", "0"], 2, "min_support"),
    (["rules", "--min-confidence", "high"], 2, "min_confidence"),
    (["itemsets", "--algorithm", "magic"], 2, "magic"),
    (["show", "999"], 2, "999"),
    (["show", "--segment", "nope"], 2, "nope"),
])
def test_errors_have_messages_and_exit_codes(cli, ws_path, args, code, text):
    cli("basket", "itemsets", "--min-support", "0.2", "-w", ws_path)
    res = cli("basket", *args, "-w", ws_path)
    assert res.exit_code == code, res.output
    assert text in res.stderr and "Traceback" not in res.output


def test_show_without_runs_and_without_workspace(cli, ws_path, tmp_path):
    res = cli("basket", "show", "-w", ws_path)
    assert res.exit_code == 2 and "crmlens basket rules" in res.stderr
    res = cli("basket", "show", "-w", tmp_path / "missing")
    assert res.exit_code == 3


def test_stage_skips_small_data_and_mines_enough(ws_path, monkeypatch):
    import crmlens.basket_stage as stage
    from crmlens.progress import NO_PROGRESS

    assert stage.supports_to_try() == [0.02, 0.01, 0.005]
    ws = Workspace(ws_path)
    assert stage.run_basket(ws, NO_PROGRESS) == {"skipped": "too_few_baskets", "baskets": 72,
                                                 "minimum": 100}
    monkeypatch.setattr(stage, "MIN_BASKETS", 50)
    monkeypatch.setattr(stage, "TARGET_ITEMSETS", 3)
    out = stage.run_basket(ws, NO_PROGRESS)
    assert out["min_support"] == 0.02 and out["multi_item_itemsets"] >= 3
    assert out["rules"] > 0 and ws.basket_show()["run_id"] == str(out["run_id"])


def test_run_summary_line(capsys):
    from crmlens.cli import _show_stages

    _show_stages({"basket": {"run_id": 5, "rules": 149, "itemsets": 364,
                             "min_support": 0.02}})
    _show_stages({"basket": {"skipped": "too_few_baskets", "baskets": 72, "minimum": 100}})
    text = capsys.readouterr().out
    assert "149 rules" in text and "run 5" in text and "72 orders" in text
