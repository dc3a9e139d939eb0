"""The ``clv`` stage of ``crmlens run`` (order 400, after the segments).

It fits and scores with ``model="auto"``, weekly periods and a 52-week horizon. Small or short
data sets are skipped with a reason rather than fitted into meaningless parameters, and a fit
that fails is reported as skipped so the rest of the pipeline (the report) still runs.
"""

from __future__ import annotations

import logging
from typing import Any

from crmlens.clv._fitting import FitError
from crmlens.errors import InputError
from crmlens.progress import Progress
from crmlens.runner import Stage, register_stage
from crmlens.workspace import Workspace

log = logging.getLogger(__name__)

# Fewer customers than this give parameter estimates too loose to rank anyone.
MIN_CUSTOMERS = 50
# At least a quarter of weekly history: repeat purchases need time to show.
MIN_HISTORY_WEEKS = 13
UNIT = "weeks"
HORIZON = 52


def run_clv(ws: Workspace, progress: Progress) -> dict[str, Any] | None:
    """CLV with automatic model choice, or a skip reason; None without identified buyers."""
    row = ws.sql("SELECT count(DISTINCT customer_id), "
                 "date_diff('day', min(ts), max(ts)) // 7 FROM transactions "
                 "WHERE customer_id IS NOT NULL AND line_type = 'product'")[0]
    customers, weeks = int(row[0] or 0), int(row[1] or 0)
    if customers == 0:
        return None
    if customers < MIN_CUSTOMERS:
        return {"skipped": "too_few_customers", "customers": customers,
                "minimum": MIN_CUSTOMERS}
    if weeks < MIN_HISTORY_WEEKS:
        return {"skipped": "short_history", "weeks": weeks, "minimum": MIN_HISTORY_WEEKS}
    try:
        result = ws.clv_fit(model="auto", unit=UNIT, horizon=HORIZON, progress=progress)
    except (FitError, InputError) as exc:
        log.warning("CLV stage skipped: %s", exc.message("en"))
        return {"skipped": "fit_failed", "detail": exc.message("en")}
    return {"run_id": result.run_id, "model": result.purchase_model,
            "customers": result.n_customers, "horizon": HORIZON, "unit": UNIT,
            "clv_total": float(result.scores["clv"].sum()),
            "notes": list(result.diagnostics.get("notes", []))}


register_stage(Stage("clv", 400, run_clv))
