"""Planted segments recovered end to end: generator → ingest → our features → segment cluster.

The generator's ``segment_model="separated"`` plants five segments that differ in category and
channel mix, income and purchase rates (the default model's segments overlap too much for any
clustering; see tests/segment/test_planted.py). Clustering on the share features, income and
RFM from ``crmlens features`` must find them.
"""

from __future__ import annotations

import duckdb
import pytest
from sklearn.metrics import adjusted_rand_score

from crmlens import Workspace
from crmlens.datasets.generator import generate_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    data = generate_dataset(root / "data", n_customers=3000, seed=1,
                            segment_model="separated")
    ws = Workspace(root / "ws")
    ws.ingest("transactions", data.transactions)
    ws.ingest("customers", data.customers)
    ws.ingest("events", data.events)
    ws.features(as_of="2025-01-01")
    truth = duckdb.sql(f"SELECT customer_id, segment FROM "
                       f"read_parquet('{data.truth_customers}')").df()
    cols = [c for c in ws.read_features().columns if c.startswith("share_")]
    return ws, truth, cols + ["income", "frequency", "monetary", "recency_days"]


def _ari(ws: Workspace, name: str, truth) -> float:
    found = ws.segment_members(name).merge(truth, on="customer_id", suffixes=("", "_true"))
    assert len(found) == len(truth)
    return adjusted_rand_score(found["segment_true"], found["segment"])


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_planted_segments_are_recovered(planted, method):
    ws, truth, features = planted
    ws.segment_cluster(method=method, n_clusters=5, features=features, name=method)
    assert _ari(ws, method, truth) >= 0.9


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_auto_k_finds_the_planted_k(planted, method):
    ws, truth, features = planted
    res = ws.segment_cluster(method=method, features=features, k_range=(2, 8),
                             name=f"auto_{method}")
    assert res.run.notes["chosen_k"] == 5
    assert _ari(ws, f"auto_{method}", truth) >= 0.9
