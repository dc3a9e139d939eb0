"""Parameter recovery from the synthetic generator: its planted segments are exact BG/NBD.

``crmlens.datasets.generator`` draws every customer's purchases from the BG/NBD model of their
planted segment (in days), writes raw transactions, and records each customer's segment in
``truth_customers.parquet``. Ingesting them, summarising per day and fitting BG/NBD per planted
segment must give back the planted parameters within the fit's own standard errors. (Spend is
not checked here: the generator turns each order's Gamma-Gamma value into whole quantities of
catalogue prices, which reshapes the distribution; the Gamma-Gamma recovery test simulates
spend directly.)
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from crmlens.clv import BetaGeoModel, compress, rfm_summary
from crmlens.datasets.generator import generate_dataset
from crmlens.workspace import Workspace


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("clv_recovery")
    data = generate_dataset(base / "data", n_customers=20_000, seed=3, start="2022-01-01",
                            end="2024-12-31")
    ws = Workspace(base / "ws")
    ws.ingest("transactions", data.transactions)
    truth = json.loads(data.truth_json.read_text())
    segments = pd.read_parquet(data.truth_customers, columns=["customer_id", "segment"])
    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        summary = rfm_summary(con, unit="days", as_of="2025-01-01").frame
    return summary.merge(segments, on="customer_id"), truth


def test_every_customer_is_summarised(generated):
    frame, truth = generated
    assert len(frame) == 20_000
    assert set(frame["segment"]) == {s["name"] for s in truth["segments"]}


@pytest.mark.parametrize("segment", ["champions", "loyal", "new", "at_risk", "lost"])
def test_bgnbd_recovers_each_planted_segment(generated, segment):
    frame, truth = generated
    planted = next(s for s in truth["segments"] if s["name"] == segment)["bgnbd"]
    rows, weights = compress(frame[frame["segment"] == segment])
    model = BetaGeoModel().fit(rows[:, 0], rows[:, 1], rows[:, 2], sample_weight=weights)
    for name, value in planted.items():
        # Same-day purchases merge into one purchase day, which lowers the rate a little
        # (alpha comes out 0.2-1.8 standard errors high); 3.5 standard errors bound it all.
        assert abs(model.params_[name] - value) < 3.5 * model.se_[name], (name, model.params_)
