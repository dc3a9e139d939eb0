"""Churn rate and mean predicted risk per segment, from the current churn run.

A segmentation and a churn run are made independently; this joins them on ``customer_id`` so
a segment profile can say how many of its customers left and how many are about to. The
churn rate is the observed one at the churn run's latest labelled cutoff (customers who
bought before it and nothing in the window after); the risk is the model's probability for
the latest data. Only transactions-mode runs with the target ``churn`` are joined: a
response model's probability is not a churn risk.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from crmlens.segment.clv_join import _has_tables

# Columns of the result, in order.
COLUMNS = ("segment", "n_customers", "n_scored", "churn_rate", "mean_risk", "high_risk_share")


def current_churn_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The ``run_id`` of the current churn run (target ``churn``), or None.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store; only read.

    Returns
    -------
    str or None
        None when there is no churn table, no current run, or the current run predicts
        something else (``buy_next`` or a labelled column).
    """
    if not _has_tables(con, "churn_runs", "churn_scores"):
        return None
    row = con.execute("SELECT run_id FROM churn_runs WHERE is_current AND mode = 'transactions' "
                      "AND target = 'churn' ORDER BY created_at DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def segment_churn(con: duckdb.DuckDBPyConnection, segment_run_id: int, *,
                  churn_run_id: str | None = None) -> pd.DataFrame | None:
    """Per segment of a segmentation: observed churn rate and mean predicted risk.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store; only read.
    segment_run_id : int
        The segmentation (``segments.run_id``).
    churn_run_id : str, optional
        The churn run to join; default the current one.

    Returns
    -------
    pandas.DataFrame or None
        Columns ``segment``, ``n_customers``, ``n_scored``, ``churn_rate`` (share of the
        members with an observed label who churned), ``mean_risk`` and ``high_risk_share``;
        None when there is no churn run to join.
    """
    run = churn_run_id if churn_run_id is not None else current_churn_run_id(con)
    if run is None:
        return None
    return con.execute(
        """
        SELECT s.segment, count(*) AS n_customers, count(c.customer_id) AS n_scored,
               avg(c.observed::DOUBLE) AS churn_rate, avg(c.probability) AS mean_risk,
               avg((c.risk_band = 'high')::DOUBLE) AS high_risk_share
        FROM segments s
        LEFT JOIN churn_scores c ON c.customer_id = s.customer_id AND c.run_id = ?
        WHERE s.run_id = ?
        GROUP BY s.segment ORDER BY s.segment
        """, [str(run), int(segment_run_id)]).df()[list(COLUMNS)]


def segment_churn_by_name(con: duckdb.DuckDBPyConnection, segment_run_id: int
                          ) -> dict[str, dict[str, float | int | None]]:
    """:func:`segment_churn` as ``{segment: {"churn_rate": ..., "mean_risk": ..., ...}}``
    (with ``n_scored``, the members that have a score).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store; only read.
    segment_run_id : int
        The segmentation.

    Returns
    -------
    dict
        Empty when there is no current churn run; missing values are None.
    """
    frame = segment_churn(con, segment_run_id)
    if frame is None:
        return {}
    out: dict[str, dict[str, float | int | None]] = {}
    for row in frame.itertuples(index=False):
        out[str(row.segment)] = {
            key: None if pd.isna(getattr(row, key)) else float(getattr(row, key))
            for key in ("churn_rate", "mean_risk", "high_risk_share")}
        out[str(row.segment)]["n_scored"] = int(row.n_scored)
    return out
