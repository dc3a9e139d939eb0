"""The ``recommend`` stage of ``crmlens run`` (order 510, after the segments, CLV and baskets).

It fits the hybrid on all data, recommends 10 products to every identified customer and
evaluates every method on a time split (the last quarter as test, the quarter before it to
choose the hybrid's weights). Tiny data sets are skipped with a reason; a history too short for
the split still gets recommendations, without the evaluation.
"""

from __future__ import annotations

import logging
from typing import Any

from crmlens.errors import InputError
from crmlens.progress import Progress
from crmlens.runner import Stage, register_stage
from crmlens.workspace import Workspace

log = logging.getLogger(__name__)

# Fewer buyers or products than this: neighbours and rules say nothing.
MIN_CUSTOMERS = 20
MIN_PRODUCTS = 10
K = 10


def run_recommend_stage(ws: Workspace, progress: Progress) -> dict[str, Any] | None:
    """Recommendations (and their evaluation when the history allows), or a skip reason."""
    from crmlens.recommend.evaluate import default_dates

    row = ws.sql("SELECT count(DISTINCT customer_id), count(DISTINCT product_id) "
                 "FROM transactions WHERE customer_id IS NOT NULL AND line_type = 'product'")[0]
    customers, products = int(row[0] or 0), int(row[1] or 0)
    if customers == 0:
        return None
    if customers < MIN_CUSTOMERS or products < MIN_PRODUCTS:
        return {"skipped": "too_little_data", "customers": customers, "products": products}
    with ws.reader() as con:
        evaluate = default_dates(con) is not None
    try:
        data = ws.recommend(k=K, evaluate=evaluate, progress=progress)
    except InputError as exc:
        log.warning("recommend stage skipped: %s", exc.message("en"))
        return {"skipped": "failed", "detail": exc.message("en")}
    hybrid = next((r for r in data["evaluation"] if r["method"] == "hybrid"), None)
    return {"run_id": data["run_id"], "customers": data["n_customers"], "k": K,
            "evaluated": evaluate, "grade": hybrid["grade"] if hybrid else None,
            "precision": hybrid["precision"] if hybrid else None,
            "baseline_precision": hybrid["baseline_precision"] if hybrid else None}


register_stage(Stage("recommend", 510, run_recommend_stage))
