"""The ``churn`` stage of ``crmlens run`` (order 450, after CLV so the report can rank the
at-risk customers by value).

It trains on rolling cutoffs with the default 90-day window and scores the latest data. The
search budget is kept small (the demo should stay quick); ``crmlens churn train`` gives a
larger one. Too little data is skipped with a reason, and a failure is reported as skipped so
the rest of the pipeline (the report) still runs.
"""

from __future__ import annotations

import logging
from typing import Any

from crmlens.errors import InputError
from crmlens.progress import Progress
from crmlens.runner import Stage, register_stage
from crmlens.workspace import Workspace

log = logging.getLogger(__name__)

# Fewer customers than this cannot fill the folds of a fair comparison.
MIN_CUSTOMERS = 100
WINDOW_DAYS = 90
# History needed: one window of features before the first cutoff, one after the last.
MIN_HISTORY_DAYS = 2 * WINDOW_DAYS + 30
TIME_BUDGET = 20.0


def run_churn(ws: Workspace, progress: Progress) -> dict[str, Any] | None:
    """Churn prediction with rolling cutoffs, or a skip reason; None without buyers."""
    row = ws.sql("SELECT count(DISTINCT customer_id), date_diff('day', min(ts), max(ts)) "
                 "FROM transactions WHERE customer_id IS NOT NULL "
                 "AND line_type = 'product'")[0]
    customers, days = int(row[0] or 0), int(row[1] or 0)
    if customers == 0:
        return None
    if customers < MIN_CUSTOMERS:
        return {"skipped": "too_few_customers", "customers": customers,
                "minimum": MIN_CUSTOMERS}
    if days < MIN_HISTORY_DAYS:
        return {"skipped": "short_history", "days": days, "minimum": MIN_HISTORY_DAYS}
    try:
        result = ws.churn_train(window_days=WINDOW_DAYS, time_budget=TIME_BUDGET,
                                progress=progress)
    except InputError as exc:
        log.warning("churn stage skipped: %s", exc.message("en"))
        return {"skipped": "train_failed", "detail": exc.message("en")}
    best = next((m for m in result.comparison if m["model"] == result.best_model), {})
    base = next((m for m in result.comparison if m["model"] == "baseline"), {})
    return {"run_id": result.run_id, "model": result.best_model, "grade": result.grade,
            "roc_auc": best.get("roc_auc"), "baseline_roc_auc": base.get("roc_auc"),
            "customers": int(len(result.scores)), "cutoffs": len(result.cutoffs),
            "high_risk": int((result.scores["risk_band"] == "high").sum())}


register_stage(Stage("churn", 450, run_churn))
