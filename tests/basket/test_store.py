"""Basket results in the workspace: one transaction per step, current run, per segment."""

from __future__ import annotations

import math

import duckdb
import pandas as pd
import pytest

from crmlens.basket import store as basket_store
from crmlens.basket.rules import association_rules
from crmlens.errors import InputError
from crmlens.workspace import Workspace
from tests.basket._brute import brute_itemsets
from tests.conftest import snapshot, write_csv

# Baskets by customer group: customers C1..C6 buy tea with biscuits, C7..C12 buy coffee
# with milk; every customer places 6 orders (72 orders), plus jam sometimes.
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _orders_csv(path):
    lines = [HEADER]
    order = 1000
    for c in range(1, 13):
        pair = [("T1", "TEA"), ("B1", "BISCUITS")] if c <= 6 else [("C1", "COFFEE"),
                                                                    ("M1", "MILK")]
        for k in range(6):
            order += 1
            items = pair + ([("J1", "JAM")] if (c + k) % 3 == 0 else [])
            for code, name in items:
                lines.append(f"{order},{code},{name},1,2011-0{1 + k}-1{c % 9} 10:00:00,"
                             f"2.50,{c},United Kingdom\n")
    return write_csv(path / "orders.csv", "".join(lines))


@pytest.fixture
def ws(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", _orders_csv(tmp_path))
    return ws


def _seed_segments(ws, run_id=900):
    with ws.writer() as con:
        con.execute("INSERT INTO segment_runs (run_id, name, method, as_of, params, "
                    "n_segments, n_customers, created_at, notes) VALUES "
                    "(?, 'groups', 'rule', NULL, '{}', 2, 12, now(), '{}')", [run_id])
        for c in range(1, 13):
            con.execute("INSERT INTO segments VALUES (?, ?, ?)",
                        [run_id, str(c), "tea" if c <= 6 else "coffee"])
    return run_id


def test_itemsets_frame_is_flat_and_sorted():
    items = brute_itemsets([["b", "a"], ["a", "b"], ["a"]], min_support=1)
    frame = basket_store.itemsets_frame(items)
    assert frame.to_dict("records")[0] == {"itemset": ["a"], "names": ["name a"],
                                           "length": 1, "count": 3, "support": 1.0}
    assert frame["itemset"].tolist() == [["a"], ["b"], ["a", "b"]]  # count, then length


def test_save_and_read_round_trip_with_infinite_conviction():
    con = duckdb.connect()
    items = brute_itemsets([["a", "b"]] * 3 + [["b"]] * 2, min_support=1)
    rules = association_rules(items)
    rid = basket_store.save_run(
        con, 7, basket="order", item="product", min_support=1, min_count=1, max_len=None,
        algorithm="brute", kind="all", n_baskets=5, n_items=2,
        itemsets={None: basket_store.itemsets_frame(items)}, rules={None: rules},
        params={"x": 1})
    run = basket_store.get_run(con)
    assert rid == "7" and run["n_itemsets"] == 3 and run["n_rules"] == 2
    back = basket_store.read_rules(con, "7")
    assert back["antecedent"].map(list).tolist()[0] == ["a"]  # lift ties, a -> b first
    a_to_b = back[back["antecedent"].map(lambda x: list(x) == ["a"])].iloc[0]
    assert math.isinf(a_to_b["conviction"])
    assert basket_store.records(back)[0]["conviction"] is None
    basket_store.save_run(con, 8, basket="order", item="product", min_support=1,
                          min_count=1, max_len=None, algorithm="brute", kind="all",
                          n_baskets=5, n_items=2, itemsets={None: basket_store.itemsets_frame(items)})
    assert basket_store.get_run(con).run_id == "8"
    assert [r.run_id for r in basket_store.list_runs(con)] == ["8", "7"]
    with pytest.raises(InputError) as exc:
        basket_store.get_run(con, 99)
    assert exc.value.key == "error.basket_run_missing"


def test_workspace_rules_overall_and_per_segment(ws):
    rid = _seed_segments(ws)
    result = ws.basket_rules(min_support=0.1, min_confidence=0.5, segment_run="groups")
    assert result.n_baskets == 72 and result.segment_run == rid
    rules = result.rules[None]
    tea = rules[(rules["antecedent"].map(tuple) == ("T1",))
                & (rules["consequent"].map(tuple) == ("B1",))]
    assert len(tea) == 1 and tea.iloc[0]["confidence"] == 1.0
    assert tea.iloc[0]["lift"] == pytest.approx(2.0)
    shown = ws.basket_show()
    assert shown["run_id"] == str(result.run_id) and shown["n_rules"] == len(rules)
    assert {s["segment"] for s in shown["segments"]} == {"tea", "coffee"}
    # Within the tea segment coffee never appears.
    tea_seg = ws.basket_show(segment="tea", top=100)
    assert all("C1" not in r["antecedent"] + r["consequent"] for r in tea_seg["rules"])
    assert tea_seg["rules"] and tea_seg["itemsets_by_length"][0]["length"] == 1
    steps = [r["step"] for r in ws.runs()]
    assert steps[0] == "basket.rules"
    with pytest.raises(InputError):
        ws.basket_show(segment="nope")


def test_small_segments_are_skipped_with_a_reason(ws, monkeypatch):
    import crmlens.basket.run as basket_run

    _seed_segments(ws)
    monkeypatch.setattr(basket_run, "MIN_SEGMENT_BASKETS", 37)
    result = ws.basket_itemsets(min_support=0.2, segment_run=900)
    # 36 orders per segment < 37: skipped, listed, nothing stored for them.
    assert result.segments and all(s.get("skipped") == "too_few_baskets"
                                   for s in result.segments)
    with ws.reader() as con:
        assert con.execute("SELECT count(*) FROM basket_itemsets WHERE segment IS NOT NULL"
                           ).fetchone()[0] == 0


def test_itemsets_step_and_kinds(ws):
    closed = ws.basket_itemsets(min_support=0.1, kind="closed", max_len=2)
    assert closed.rules is None and closed.kind == "closed"
    everything = ws.basket_itemsets(min_support=0.1, max_len=2)
    assert everything.n_itemsets > closed.n_itemsets
    assert ws.basket_show()["n_rules"] == 0


def test_a_failing_step_leaves_the_workspace_as_it_was(ws, monkeypatch):
    before = snapshot(ws.path)
    import crmlens.basket.store as st

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(st, "save_run", boom)
    with pytest.raises(RuntimeError):
        ws.basket_rules(min_support=0.1)
    assert snapshot(ws.path) == before


def test_bad_options_fail_before_touching_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "none")
    with pytest.raises(InputError):
        ws.basket_rules(min_support=0.0)
    with pytest.raises(InputError):
        ws.basket_itemsets(algorithm="magic")
    assert not (tmp_path / "none").exists()
    with pytest.raises(Exception) as exc:
        ws.basket_itemsets()
    assert "workspace" in exc.value.key
