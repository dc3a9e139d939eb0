"""Agreement with a plain pandas computation on generated data (ingested and cleaned)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlens.datasets.generator import generate_dataset
from crmlens.workspace import Workspace


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("gen")
    ds = generate_dataset(base / "data", n_customers=400, seed=3, messy=True)
    ws = Workspace(base / "ws")
    ws.ingest("transactions", ds.transactions)
    ws.ingest("customers", ds.customers)
    ws.ingest("events", ds.events)
    return ws


def test_agrees_with_pandas(generated):
    ws = generated
    as_of = pd.Timestamp("2024-09-01")
    ws.features(as_of="2024-09-01")
    got = ws.read_features().set_index("customer_id").sort_index()
    tx = pd.DataFrame(ws.sql("SELECT * FROM transactions"),
                      columns=[r[0] for r in ws.sql("DESCRIBE transactions")])
    tx = tx[tx.customer_id.notna() & (tx.ts < as_of)]
    product = tx[tx.line_type == "product"]
    purchase = product[~product.is_return & (product.quantity > 0)]
    orders = purchase.groupby(["customer_id", "order_id"]).ts.min().reset_index()
    per = orders.groupby("customer_id").ts
    want = pd.DataFrame({
        "frequency": per.size(),
        "recency_days": (as_of - per.max().dt.normalize()).dt.days,
        "tenure_days": (as_of - per.min().dt.normalize()).dt.days,
    })
    want["monetary"] = product.groupby("customer_id").amount.sum()
    want["gross_spend"] = purchase.groupby("customer_id").amount.sum()
    want["n_products"] = purchase.groupby("customer_id").product_id.nunique()
    want["n_categories"] = purchase.groupby("customer_id").category.nunique()
    gaps = orders.sort_values(["customer_id", "ts"]).groupby("customer_id").ts.diff()
    gap_days = (gaps.dt.total_seconds() / 86400).groupby(orders.customer_id)
    want["interpurchase_std_days"] = gap_days.std()
    last90 = product[product.ts >= as_of - pd.Timedelta(days=90)]
    want["spend_last_90d"] = last90.groupby("customer_id").amount.sum()
    want = want.fillna({"spend_last_90d": 0.0}).sort_index()
    assert list(got.index) == list(want.index) and len(got) > 300
    for col in want.columns:
        np.testing.assert_allclose(got[col].astype(float), want[col].astype(float),
                                   rtol=1e-9, atol=1e-9, err_msg=col)
    # Channel shares against pandas, and reviews from the events.
    by_channel = purchase.pivot_table(index="customer_id", columns="channel", values="amount",
                                      aggfunc="sum", fill_value=0)
    share = by_channel.div(by_channel.sum(axis=1), axis=0).sort_index()
    for channel in share.columns:
        np.testing.assert_allclose(got[f"share_channel_{channel}"], share[channel], atol=1e-9)
    assert got.satisfaction.between(1, 5).all() or got.satisfaction.isna().any()
    assert got.age.notna().mean() > 0.9
