"""Planted-segment recovery on generator data, with features computed in DuckDB SQL.

Measured (10,000 customers, seed 1): on the generator's default, realistic segments the
planted segments overlap: k-means reaches ARI ≈ 0.4 and even a supervised gradient-boosting
classifier on the same features only ≈ 0.77, so ≥ 0.9 is impossible there for any
clustering. ``segment_model="separated"`` plants the same five segments with tight purchase
rates and distinct categories, channels and incomes: k-means (k = 5) reaches ARI 0.999, the
Gaussian mixture 0.986, and ``n_clusters="auto"`` finds k = 5 with both.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from crmlens.datasets.generator import generate_dataset
from crmlens.segment.clustering import Segmenter

PLANTED_K = 5

# One row per customer: RFM, order value, tenure, channel shares, spend share per category,
# income and attributes, e-mail opens, support tickets, mean review score.
FEATURES_SQL = """
WITH lines AS (
    SELECT customer_id, order_id, order_date, category, channel,
           quantity * unit_price AS amount
    FROM read_parquet($transactions)
), orders AS (
    SELECT customer_id, order_id, min(order_date) AS ts, sum(amount) AS value,
           any_value(channel) AS channel
    FROM lines GROUP BY ALL
), rfm AS (
    SELECT customer_id, count(*) AS frequency, sum(value) AS monetary,
           avg(value) AS avg_order_value,
           date_diff('day', max(ts), $as_of::TIMESTAMP) AS recency_days,
           date_diff('day', min(ts), $as_of::TIMESTAMP) AS tenure_days,
           avg((channel = 'web')::INT) AS share_channel_web,
           avg((channel = 'app')::INT) AS share_channel_app,
           avg((channel = 'store')::INT) AS share_channel_store
    FROM orders GROUP BY ALL
), events AS (
    SELECT customer_id,
           count(*) FILTER (WHERE event_type = 'email_open') AS email_opens,
           count(*) FILTER (WHERE event_type = 'support_ticket') AS support_tickets,
           avg(value) FILTER (WHERE event_type = 'review') AS review_score
    FROM read_parquet($events) GROUP BY ALL
)
SELECT r.*, cu.income, cu.region, cu.gender, e.* EXCLUDE (customer_id)
FROM rfm r
JOIN read_parquet($customers) cu USING (customer_id)
LEFT JOIN events e USING (customer_id)
ORDER BY customer_id
"""


def customer_features(data) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature table (category spend shares by conditional aggregation) and planted segments."""
    con = duckdb.connect()
    params = {"transactions": str(data.transactions), "events": str(data.events),
              "customers": str(data.customers), "as_of": "2025-01-01"}
    base = con.execute(FEATURES_SQL, params).df()
    cats = [r[0] for r in con.execute("SELECT DISTINCT category FROM read_parquet($t) ORDER BY 1",
                                      {"t": params["transactions"]}).fetchall()]
    share_cols = ", ".join(
        f"sum(quantity * unit_price) FILTER (WHERE category = $c{i}) "
        f"/ sum(quantity * unit_price) AS \"share_category_{c.replace(chr(34), '')}\""
        for i, c in enumerate(cats))
    shares = con.execute(
        f"SELECT customer_id, {share_cols} FROM read_parquet($t) GROUP BY customer_id "
        "ORDER BY customer_id",
        {"t": params["transactions"], **{f"c{i}": c for i, c in enumerate(cats)}}).df()
    df = base.merge(shares.fillna(0.0), on="customer_id", how="left")
    truth = con.execute("SELECT segment FROM read_parquet($p) ORDER BY customer_id",
                        {"p": str(data.truth_customers)}).df()["segment"].to_numpy()
    return df, truth


@pytest.fixture(scope="module")
def separated(tmp_path_factory):
    data = generate_dataset(tmp_path_factory.mktemp("separated"), n_customers=6_000, seed=3,
                            segment_model="separated")
    return customer_features(data)


@pytest.mark.slow
def test_features_are_one_row_per_customer(separated):
    df, truth = separated
    assert len(df) == len(truth) == 6_000
    assert df["customer_id"].is_unique
    shares = df.filter(like="share_category_")
    assert shares.shape[1] == 10
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_recovers_separated_segments(separated, method):
    df, truth = separated
    seg = Segmenter(method=method, n_clusters=PLANTED_K, random_state=0).fit(df)
    assert adjusted_rand_score(truth, seg.labels_) >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("method, k_range", [("kmeans", (2, 12)), ("gmm", (2, 7))])
def test_k_auto_finds_planted_k(separated, method, k_range):
    df, truth = separated
    seg = Segmenter(method=method, n_clusters="auto", k_range=k_range, random_state=0).fit(df)
    assert seg.k_choice_.k == PLANTED_K
    assert adjusted_rand_score(truth, seg.labels_) >= 0.9


@pytest.mark.slow
def test_default_segments_overlap(tmp_path):
    """Why the separated model exists: default segments are not recoverable to 0.9."""
    data = generate_dataset(tmp_path, n_customers=6_000, seed=3)
    df, truth = customer_features(data)
    seg = Segmenter(method="kmeans", n_clusters=PLANTED_K, random_state=0).fit(df)
    ari = adjusted_rand_score(truth, seg.labels_)
    assert 0.1 < ari < 0.9  # structure is there, but the stochastic behaviour overlaps
