"""On the bundled Online Retail sample: data loading, the time split and the done-when check
(recommendations beat the popularity baseline, hybrid weights chosen on validation only)."""

from __future__ import annotations

import pytest

from crmlens.datasets.sample import sample_path
from crmlens.workspace import Workspace


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("rec") / "ws")
    ws.ingest("transactions", sample_path())
    return ws


def test_interactions_are_sparse_products_only(sample_ws):
    from crmlens.recommend.data import load_interactions

    with sample_ws.reader() as con:
        data = load_interactions(con)
        n_products = con.execute("SELECT count(DISTINCT product_id) FROM transactions "
                                 "WHERE line_type = 'product'").fetchone()[0]
        non_product = {r[0] for r in con.execute(
            "SELECT DISTINCT product_id FROM transactions WHERE line_type <> 'product' "
            "EXCEPT SELECT product_id FROM transactions WHERE line_type = 'product'").fetchall()}
        cut = load_interactions(con, exclude=["85123A"])
    assert data.customers.format == "csr" and data.n_items <= n_products
    assert not non_product & set(data.item_ids)
    assert data.customers.nnz < 0.1 * data.n_customers * data.n_items
    assert "85123A" in set(data.item_ids) and "85123A" not in set(cut.item_ids)
    assert data.n_dropped_large > 0 and data.orders.getnnz(axis=1).max() <= 100


@pytest.mark.slow
def test_hybrid_beats_popularity_on_the_time_split(sample_ws):
    data = sample_ws.recommend(k=10, evaluate=True)
    rows = {r["method"]: r for r in data["evaluation"]}
    metrics = data["metrics"]
    assert metrics["validation_start"] < metrics["test_start"]
    hybrid = rows["hybrid"]
    assert hybrid["grade"] == "better"
    assert hybrid["precision"] > 1.3 * hybrid["baseline_precision"]
    assert hybrid["recall"] > 1.3 * hybrid["baseline_recall"]
    assert hybrid["hit_rate"] > hybrid["baseline_hit_rate"]
    assert rows["item_cf"]["grade"] == "better" and rows["rules"]["grade"] == "better"
    assert hybrid["coverage"] > metrics["baseline"]["coverage"]
    # Every customer got 10 new products, each with a reason.
    one = sample_ws.recommend_for(data["examples"][0]["customer_id"])
    assert len(one) == 10 and all(r["reason"] for r in one)
    with sample_ws.reader() as con:
        bought = {r[0] for r in con.execute(
            "SELECT product_id FROM transactions WHERE customer_id = ?",
            [one[0]["customer_id"]]).fetchall()}
    assert not bought & {r["product_id"] for r in one}
