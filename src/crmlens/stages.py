"""The analysis stages of ``crmlens run`` (and ``crmlens demo``), registered in order.

features (200): customer features as of the day after the last transaction, and as of one
quarter earlier when the history is long enough (so the report can show how segments moved).
segments (300): RFM at both dates, an automatic k-means clustering at the latest date; every
segmentation with profiles and rule explanations.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from crmlens.progress import Progress
from crmlens.runner import Stage, register_stage
from crmlens.workspace import Workspace

log = logging.getLogger(__name__)

# The earlier as-of date for migration: one quarter back, if at least two quarters of data
# come before it (otherwise an RFM of that date says little).
QUARTER_DAYS = 91
MIN_HISTORY_DAYS = 180
# Below this many customers an automatic clustering says nothing RFM does not; it is skipped.
MIN_CLUSTER_CUSTOMERS = 50


def _has_customers(ws: Workspace) -> bool:
    return bool(ws.sql("SELECT count(*) FROM transactions WHERE customer_id IS NOT NULL")[0][0])


def run_features(ws: Workspace, progress: Progress) -> dict[str, Any] | None:
    """Features as of the default date (and a quarter earlier when there is history)."""
    if not _has_customers(ws):
        return None
    progress.stage("progress.features")
    latest = ws.features(progress=progress)
    out = {"as_of": [latest.as_of.isoformat()], "customers": latest.n_customers,
           "features": len(latest.columns)}
    first = ws.sql("SELECT min(ts)::DATE FROM transactions WHERE customer_id IS NOT NULL")[0][0]
    earlier = latest.as_of - timedelta(days=QUARTER_DAYS)
    if first is not None and (earlier - first).days >= MIN_HISTORY_DAYS:
        ws.features(as_of=earlier, progress=progress)
        out["as_of"].insert(0, earlier.isoformat())
    return out


def run_segments(ws: Workspace, progress: Progress) -> dict[str, Any] | None:
    """RFM at every feature date (oldest first), then automatic clustering at the latest."""
    has = ws.sql("SELECT count(*) FROM duckdb_tables() "
                 "WHERE table_name = 'customer_feature_sets'")[0][0]
    dates = ws.sql("SELECT as_of FROM customer_feature_sets ORDER BY as_of") if has else []
    if not dates:
        return None
    out: dict[str, Any] = {}
    progress.stage("progress.segment_rfm")
    for (day,) in dates:
        rfm = ws.segment_rfm(as_of=day)
    out["rfm"] = {"run_id": rfm.run_id, "segments": rfm.run.n_segments}
    if rfm.run.n_customers < MIN_CLUSTER_CUSTOMERS:
        out["clusters"] = {"skipped": "too_few_customers", "customers": rfm.run.n_customers,
                           "minimum": MIN_CLUSTER_CUSTOMERS}
        return out
    progress.stage("progress.segment_cluster")
    clusters = ws.segment_cluster()
    out["clusters"] = {"run_id": clusters.run_id, "segments": clusters.run.n_segments,
                       "chosen_k": clusters.run.notes.get("chosen_k")}
    return out


register_stage(Stage("features", 200, run_features))
register_stage(Stage("segments", 300, run_segments))
