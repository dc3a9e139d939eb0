"""Churn and behaviour predictions in the workspace.

Tables (the report, the CLI and the segment profiles read them):

- ``churn_runs``: one row per training or scoring step; exactly one is current (the newest).
- ``churn_models``: the cross-validated comparison, one row per model family and the baseline.
- ``churn_curves``: ROC, precision-recall, lift and calibration points of the best model and
  the baseline, from the out-of-time (or out-of-fold) predictions.
- ``churn_importance``: permutation importance of the features for the final model.
- ``churn_scores``: per customer: probability, risk band and rank, the observed label at the
  latest labelled cutoff when there is one (for churn rates per segment), and the expected
  days to the next order (transactions mode).
- ``churn_factors``: per customer, the features that raise or lower the risk most.

``run_id`` is the ``runs`` id of the step that wrote the rows (stored as text). Callers hold
the transaction, so a failed step leaves every table as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError

DDL: dict[str, str] = {
    "churn_runs": """
        CREATE TABLE IF NOT EXISTS churn_runs (
            run_id          VARCHAR PRIMARY KEY,
            created_at      TIMESTAMP NOT NULL,
            step            VARCHAR NOT NULL,
            fitted_in       VARCHAR,
            mode            VARCHAR NOT NULL,
            target          VARCHAR NOT NULL,
            positive        VARCHAR,
            window_days     INTEGER,
            cutoffs         JSON,
            as_of           DATE,
            best_model      VARCHAR NOT NULL,
            grade           VARCHAR,
            threshold       DOUBLE,
            positive_rate   DOUBLE,
            n_train         BIGINT,
            n_scored        BIGINT,
            features        JSON,
            leakage         JSON,
            metrics         JSON,
            settings        JSON,
            model_file      VARCHAR,
            is_current      BOOLEAN NOT NULL
        )""",
    "churn_models": """
        CREATE TABLE IF NOT EXISTS churn_models (
            run_id              VARCHAR NOT NULL,
            model               VARCHAR NOT NULL,
            is_best             BOOLEAN NOT NULL,
            is_baseline         BOOLEAN NOT NULL,
            roc_auc             DOUBLE,
            pr_auc              DOUBLE,
            log_loss            DOUBLE,
            brier               DOUBLE,
            lift_top_decile     DOUBLE,
            capture_top_decile  DOUBLE,
            accuracy            DOUBLE,
            "precision"         DOUBLE,
            recall              DOUBLE,
            f1                  DOUBLE,
            roc_auc_std         DOUBLE,
            fit_seconds         DOUBLE,
            n_train             BIGINT,
            n_test              BIGINT,
            params              JSON,
            error               VARCHAR
        )""",
    "churn_curves": """
        CREATE TABLE IF NOT EXISTS churn_curves (
            run_id  VARCHAR NOT NULL,
            model   VARCHAR NOT NULL,
            kind    VARCHAR NOT NULL,
            x       DOUBLE,
            y       DOUBLE,
            n       BIGINT
        )""",
    "churn_importance": """
        CREATE TABLE IF NOT EXISTS churn_importance (
            run_id      VARCHAR NOT NULL,
            feature     VARCHAR NOT NULL,
            importance  DOUBLE,
            std         DOUBLE,
            rank        INTEGER NOT NULL
        )""",
    "churn_scores": """
        CREATE TABLE IF NOT EXISTS churn_scores (
            run_id       VARCHAR NOT NULL,
            customer_id  VARCHAR NOT NULL,
            probability  DOUBLE NOT NULL,
            risk_band    VARCHAR NOT NULL,
            risk_rank    BIGINT NOT NULL,
            observed     BOOLEAN,
            expected_days_to_next DOUBLE
        )""",
    "churn_factors": """
        CREATE TABLE IF NOT EXISTS churn_factors (
            run_id       VARCHAR NOT NULL,
            customer_id  VARCHAR NOT NULL,
            rank         INTEGER NOT NULL,
            feature      VARCHAR NOT NULL,
            value        VARCHAR,
            reference    VARCHAR,
            effect       DOUBLE
        )""",
}

MODEL_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "lift_top_decile",
                 "capture_top_decile", "accuracy", "precision", "recall", "f1")
_MODEL_COLUMNS = ("model", "is_best", "is_baseline", *MODEL_METRICS, "roc_auc_std",
                  "fit_seconds", "n_train", "n_test", "params", "error")
_RUN_JSON = ("cutoffs", "features", "leakage", "metrics", "settings")
SCORE_COLUMNS = ("customer_id", "probability", "risk_band", "risk_rank", "observed",
                 "expected_days_to_next")
FACTOR_COLUMNS = ("customer_id", "rank", "feature", "value", "reference", "effect")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the churn tables if they do not exist yet."""
    for ddl in DDL.values():
        con.execute(ddl)


def has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the workspace holds churn runs."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = 'churn_runs'").fetchone()[0])


def _clean(value: Any) -> Any:
    """A JSON- and DuckDB-friendly Python value (NaN becomes None)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _insert_frame(con: duckdb.DuckDBPyConnection, table: str, run_id: str,
                  frame: pd.DataFrame, columns: Sequence[str]) -> None:
    if frame is None or frame.empty:
        return
    view = f"_crm_ins_{table}"
    con.register(view, frame[list(columns)])
    try:
        con.execute(f"INSERT INTO {table} SELECT ?, {', '.join(_q(c) for c in columns)} "
                    f"FROM {view}", [run_id])
    finally:
        con.unregister(view)


def save_run(con: duckdb.DuckDBPyConnection, run_id: int | str, *, run: Mapping[str, Any],
             models: Sequence[Mapping[str, Any]] = (), curves: pd.DataFrame | None = None,
             importance: pd.DataFrame | None = None, scores: pd.DataFrame | None = None,
             factors: pd.DataFrame | None = None) -> str:
    """Store a run (it becomes the current one) and its rows.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store, inside the caller's transaction.
    run_id : int or str
        The ``runs`` id of the step.
    run : mapping
        The ``churn_runs`` columns (``created_at`` and ``is_current`` are set here).
    models : sequence of mapping
        ``churn_models`` rows (metrics, params as a dict).
    curves, importance, scores, factors : pandas.DataFrame, optional
        Rows of ``churn_curves`` (model, kind, x, y, n), ``churn_importance`` (feature,
        importance, std, rank), ``churn_scores`` and ``churn_factors``.

    Returns
    -------
    str
        The run id as stored.
    """
    ensure_tables(con)
    rid = str(run_id)
    con.execute("UPDATE churn_runs SET is_current = false WHERE is_current")
    row = {k: run.get(k) for k in ("step", "fitted_in", "mode", "target", "positive",
                                   "window_days", "cutoffs", "as_of", "best_model", "grade",
                                   "threshold", "positive_rate", "n_train", "n_scored",
                                   "features", "leakage", "metrics", "settings",
                                   "model_file")}
    for key in _RUN_JSON:
        row[key] = _json(row[key])
    for key in ("threshold", "positive_rate"):
        row[key] = _clean(row[key])
    names = ["run_id", "created_at", *row, "is_current"]
    values = [rid, datetime.now(timezone.utc).replace(tzinfo=None), *row.values(), True]
    con.execute(f"INSERT INTO churn_runs ({', '.join(names)}) VALUES "
                f"({', '.join('?' * len(names))})", values)
    if models:
        con.executemany(
            f"INSERT INTO churn_models VALUES ({', '.join('?' * (len(_MODEL_COLUMNS) + 1))})",
            [[rid, *(_json(m.get(c)) if c == "params" else _clean(m.get(c))
                     for c in _MODEL_COLUMNS)] for m in models])
    if curves is not None:
        _insert_frame(con, "churn_curves", rid, curves, ("model", "kind", "x", "y", "n"))
    if importance is not None:
        _insert_frame(con, "churn_importance", rid, importance,
                      ("feature", "importance", "std", "rank"))
    if scores is not None:
        _insert_frame(con, "churn_scores", rid, scores, SCORE_COLUMNS)
    if factors is not None:
        frame = factors.copy()
        for col in ("value", "reference"):
            frame[col] = frame[col].map(_text)
        _insert_frame(con, "churn_factors", rid, frame, FACTOR_COLUMNS)
    return rid


def _text(value: Any) -> str | None:
    """A factor's value as stored text (numbers rounded for reading)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def get_run(con: duckdb.DuckDBPyConnection, run: int | str | None = None) -> dict[str, Any]:
    """A stored run (default: the current one) as a dict; InputError when missing."""
    if not has_tables(con):
        raise InputError("error.churn_no_runs")
    cur = con.execute("SELECT * FROM churn_runs WHERE " +
                      ("is_current" if run is None else "run_id = ?"),
                      [] if run is None else [str(run).strip()])
    row = cur.fetchone()
    if row is None:
        if run is None:
            raise InputError("error.churn_no_runs")
        raise InputError("error.churn_run_missing", run=str(run))
    out = dict(zip([d[0] for d in cur.description], row))
    for key in _RUN_JSON:
        out[key] = json.loads(out[key]) if out[key] else None
    for key in ("created_at", "as_of"):
        if isinstance(out.get(key), (date, datetime)):
            out[key] = out[key].isoformat()
    return out


def read_models(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """The comparison rows of a run: best first, the baseline last."""
    frame = con.execute(
        f"SELECT {', '.join(_q(c) for c in _MODEL_COLUMNS)} FROM churn_models "
        "WHERE run_id = ? ORDER BY is_baseline, is_best DESC, roc_auc DESC NULLS LAST",
        [str(run_id)]).df()
    rows = []
    for r in frame.to_dict("records"):
        r = {k: _clean(v) for k, v in r.items()}
        r["params"] = json.loads(r["params"]) if r.get("params") else None
        rows.append(r)
    return rows


def read_curves(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """Curve points of a run (model, kind, x, y, n)."""
    return con.execute("SELECT model, kind, x, y, n FROM churn_curves WHERE run_id = ? "
                       "ORDER BY model, kind, x", [str(run_id)]).df()


def read_importance(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """Feature importance of a run, most important first."""
    return con.execute("SELECT feature, importance, std, rank FROM churn_importance "
                       "WHERE run_id = ? ORDER BY rank", [str(run_id)]).df()


def read_scores(con: duckdb.DuckDBPyConnection, run_id: str, *,
                customer_id: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """Scores of a run (one customer's, or all), riskiest first."""
    where, params = "run_id = ?", [str(run_id)]
    if customer_id is not None:
        where += " AND customer_id = ?"
        params.append(str(customer_id))
    sql = (f"SELECT {', '.join(SCORE_COLUMNS)} FROM churn_scores WHERE {where} "
           "ORDER BY risk_rank")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, params).df()


def read_factors(con: duckdb.DuckDBPyConnection, run_id: str,
                 customer_ids: Sequence[str]) -> pd.DataFrame:
    """The stored factors of some customers of a run, by customer then rank."""
    if not customer_ids:
        return pd.DataFrame(columns=list(FACTOR_COLUMNS))
    return con.execute(
        f"SELECT {', '.join(FACTOR_COLUMNS)} FROM churn_factors WHERE run_id = ? "
        "AND customer_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY customer_id, rank",
        [str(run_id), [str(c) for c in customer_ids]]).df()


def band_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """How many customers fall in each risk band of a run."""
    return {str(b): int(n) for b, n in con.execute(
        "SELECT risk_band, count(*) FROM churn_scores WHERE run_id = ? GROUP BY risk_band",
        [str(run_id)]).fetchall()}
