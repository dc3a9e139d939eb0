"""Recommendations in the workspace: ``recommend_runs``, ``recommendations``,
``recommend_evaluations`` (columns as in ``notes/basket_api.md`` section C).

Exactly one ``recommend_runs`` row is current: the newest. Callers hold the transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import duckdb
import pandas as pd

from crmlens.errors import InputError

DDL = {
    "recommend_runs": """
        CREATE TABLE IF NOT EXISTS recommend_runs (
            run_id      VARCHAR PRIMARY KEY,
            created_at  TIMESTAMP NOT NULL,
            method      VARCHAR NOT NULL,
            as_of       DATE,
            k           INTEGER NOT NULL,
            params      JSON,
            metrics     JSON,
            is_current  BOOLEAN NOT NULL
        )""",
    "recommendations": """
        CREATE TABLE IF NOT EXISTS recommendations (
            run_id        VARCHAR NOT NULL,
            customer_id   VARCHAR NOT NULL,
            rank          INTEGER NOT NULL,
            product_id    VARCHAR NOT NULL,
            product_name  VARCHAR,
            score         DOUBLE,
            source        VARCHAR NOT NULL,
            reason_key    VARCHAR NOT NULL,
            reason_item   VARCHAR,
            reason        VARCHAR
        )""",
    "recommend_evaluations": """
        CREATE TABLE IF NOT EXISTS recommend_evaluations (
            run_id              VARCHAR NOT NULL,
            method              VARCHAR NOT NULL,
            k                   INTEGER NOT NULL,
            precision           DOUBLE,
            recall              DOUBLE,
            hit_rate            DOUBLE,
            coverage            DOUBLE,
            n_customers         BIGINT,
            baseline_precision  DOUBLE,
            baseline_recall     DOUBLE,
            baseline_hit_rate   DOUBLE,
            grade               VARCHAR
        )""",
}
REC_COLUMNS = ("customer_id", "rank", "product_id", "product_name", "score", "source",
               "reason_key", "reason_item", "reason")
EVAL_COLUMNS = ("method", "k", "precision", "recall", "hit_rate", "coverage", "n_customers",
                "baseline_precision", "baseline_recall", "baseline_hit_rate", "grade")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the recommendation tables if they do not exist yet."""
    for ddl in DDL.values():
        con.execute(ddl)


def has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the workspace holds recommendations."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = 'recommend_runs'").fetchone()[0])


def save_run(con: duckdb.DuckDBPyConnection, run_id: int | str, *, method: str, as_of: Any,
             k: int, params: dict[str, Any], metrics: dict[str, Any] | None,
             recommendations: pd.DataFrame, evaluations: list[dict[str, Any]]) -> str:
    """Store a run (it becomes the current one), its recommendations and evaluation rows."""
    ensure_tables(con)
    rid = str(run_id)
    con.execute("UPDATE recommend_runs SET is_current = false WHERE is_current")
    con.execute("INSERT INTO recommend_runs VALUES (?, ?, ?, ?, ?, ?, ?, true)",
                [rid, datetime.now(timezone.utc).replace(tzinfo=None), method,
                 str(as_of) if as_of else None, int(k), json.dumps(params, default=str),
                 json.dumps(metrics, default=str) if metrics is not None else None])
    con.register("_crm_recs", recommendations[list(REC_COLUMNS)])
    try:
        con.execute(f"INSERT INTO recommendations SELECT ?, {', '.join(REC_COLUMNS)} "
                    "FROM _crm_recs", [rid])
    finally:
        con.unregister("_crm_recs")
    if evaluations:
        con.executemany(f"INSERT INTO recommend_evaluations VALUES "
                        f"({', '.join('?' * (len(EVAL_COLUMNS) + 1))})",
                        [[rid, *(row.get(c) for c in EVAL_COLUMNS)] for row in evaluations])
    return rid


def get_run(con: duckdb.DuckDBPyConnection, run: int | str | None = None) -> dict[str, Any]:
    """A stored run (default: the current one) as a dict; InputError when missing."""
    if not has_tables(con):
        raise InputError("error.recommend_no_runs")
    cur = con.execute("SELECT * FROM recommend_runs WHERE " +
                      ("is_current" if run is None else "run_id = ?"),
                      [] if run is None else [str(run).strip()])
    row = cur.fetchone()
    if row is None:
        if run is None:
            raise InputError("error.recommend_no_runs")
        raise InputError("error.recommend_run_missing", run=str(run))
    out = dict(zip([d[0] for d in cur.description], row))
    for key in ("params", "metrics"):
        out[key] = json.loads(out[key]) if out[key] else None
    for key in ("created_at", "as_of"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out


def read_recommendations(con: duckdb.DuckDBPyConnection, run_id: str,
                         customer_id: str | None = None, limit: int | None = None
                         ) -> pd.DataFrame:
    """Stored recommendations of a run (one customer's, or all), by customer then rank.

    A ``reason_item_name`` column names the reason item (to render the reason in any
    language).
    """
    where, params = "run_id = ?", [str(run_id)]
    if customer_id is not None:
        where += " AND customer_id = ?"
        params.append(str(customer_id))
    sql = f"""
        WITH picked AS (SELECT {', '.join(REC_COLUMNS)} FROM recommendations WHERE {where}),
        names AS (SELECT product_id, mode(product_name) AS reason_item_name
                  FROM transactions
                  WHERE product_id IN (SELECT reason_item FROM picked) GROUP BY product_id)
        SELECT picked.*, names.reason_item_name FROM picked
        LEFT JOIN names ON names.product_id = picked.reason_item
        ORDER BY customer_id, rank"""
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, params).df()


def read_evaluations(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """The evaluation rows of a run (hybrid first)."""
    if not has_tables(con):
        return []
    frame = con.execute(f"SELECT {', '.join(EVAL_COLUMNS)} FROM recommend_evaluations "
                        "WHERE run_id = ? ORDER BY method != 'hybrid', method",
                        [str(run_id)]).df()
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in frame.to_dict("records")]
