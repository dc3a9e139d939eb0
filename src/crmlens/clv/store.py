"""CLV results in the workspace: ``clv_runs``, ``clv_scores``, ``clv_validations``,
``clv_validation_curves`` (columns as in ``notes/clv_api.md``; the report reads them).

``run_id`` is the ``runs`` table id of the step that wrote the rows (stored as text, as the
contract says). Exactly one ``clv_runs`` row is current: the newest. Callers hold the
transaction, so a failed step leaves every table as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError

DDL: dict[str, str] = {
    "clv_runs": """
        CREATE TABLE IF NOT EXISTS clv_runs (
            run_id           VARCHAR PRIMARY KEY,
            created_at       TIMESTAMP NOT NULL,
            purchase_model   VARCHAR NOT NULL,
            spend_model      VARCHAR,
            unit             VARCHAR NOT NULL,
            observation_end  DATE NOT NULL,
            horizon          INTEGER NOT NULL,
            period_length    DOUBLE NOT NULL,
            discount_rate    DOUBLE NOT NULL,
            margin           DOUBLE NOT NULL,
            params           JSON,
            se               JSON,
            log_likelihood   DOUBLE,
            aic              DOUBLE,
            bic              DOUBLE,
            n_customers      BIGINT NOT NULL,
            one_time_share   DOUBLE,
            diagnostics      JSON,
            is_current       BOOLEAN NOT NULL,
            -- added to the contract: the spend model's parameters, the step that wrote the
            -- row, and the fit a re-scoring reused
            spend_params     JSON,
            spend_se         JSON,
            step             VARCHAR,
            fitted_in        VARCHAR
        )""",
    "clv_scores": """
        CREATE TABLE IF NOT EXISTS clv_scores (
            run_id              VARCHAR NOT NULL,
            customer_id         VARCHAR NOT NULL,
            frequency           BIGINT,
            recency             DOUBLE,
            "T"                 DOUBLE,
            monetary_value      DOUBLE,
            p_alive             DOUBLE,
            expected_purchases  DOUBLE,
            p_purchase          DOUBLE,
            expected_spend      DOUBLE,
            clv                 DOUBLE,
            value_tier          VARCHAR,
            value_rank          BIGINT
        )""",
    "clv_validations": """
        CREATE TABLE IF NOT EXISTS clv_validations (
            run_id                    VARCHAR NOT NULL,
            created_at                TIMESTAMP NOT NULL,
            model                     VARCHAR NOT NULL,
            unit                      VARCHAR,
            calibration_end           DATE,
            observation_end           DATE,
            duration_holdout          INTEGER,
            n_params                  INTEGER,
            log_likelihood            DOUBLE,
            aic                       DOUBLE,
            bic                       DOUBLE,
            mae                       DOUBLE,
            rmse                      DOUBLE,
            correlation               DOUBLE,
            aggregate_error           DOUBLE,
            baseline_mae              DOUBLE,
            baseline_rmse             DOUBLE,
            baseline_aggregate_error  DOUBLE,
            grade                     VARCHAR,
            converged                 BOOLEAN,
            error                     VARCHAR,
            is_best                   BOOLEAN
        )""",
    "clv_validation_curves": """
        CREATE TABLE IF NOT EXISTS clv_validation_curves (
            run_id    VARCHAR NOT NULL,
            model     VARCHAR NOT NULL,
            chart     VARCHAR NOT NULL,
            x         DOUBLE,
            label     VARCHAR,
            expected  DOUBLE,
            actual    DOUBLE,
            baseline  DOUBLE
        )""",
}

_RUN_COLUMNS = ("run_id", "created_at", "purchase_model", "spend_model", "unit",
                "observation_end", "horizon", "period_length", "discount_rate", "margin",
                "params", "se", "log_likelihood", "aic", "bic", "n_customers",
                "one_time_share", "diagnostics", "is_current", "spend_params", "spend_se",
                "step", "fitted_in")
_JSON_COLUMNS = frozenset({"params", "se", "diagnostics", "spend_params", "spend_se"})
_SCORE_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value", "p_alive",
                  "expected_purchases", "p_purchase", "expected_spend", "clv", "value_tier",
                  "value_rank")
_VALIDATION_METRICS = ("mae", "rmse", "correlation", "aggregate_error", "baseline_mae",
                       "baseline_rmse", "baseline_aggregate_error")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _number(value: Any) -> float | None:
    """A finite float, or None (JSON and SQL get NULL rather than NaN)."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(_clean(value), default=str)


def _clean(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN/inf as null."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _number(value)
    return value


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the CLV tables if they do not exist yet."""
    for ddl in DDL.values():
        con.execute(ddl)
    # Added after the first CLV tables were written: older workspaces gain the column.
    con.execute("ALTER TABLE clv_scores ADD COLUMN IF NOT EXISTS p_purchase DOUBLE")


def has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the workspace holds CLV results."""
    row = con.execute("SELECT count(*) FROM information_schema.tables "
                      "WHERE table_name = 'clv_runs'").fetchall()[0]
    return bool(row[0])


def save_run(con: duckdb.DuckDBPyConnection, result: Any, run_id: int | str, *,
             step: str, fitted_in: int | str | None = None,
             fit_stats: Mapping[str, Any] | None = None) -> str:
    """Store a :class:`~crmlens.clv.scoring.ClvResult` and make it the current run.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable workspace connection; the caller holds the transaction.
    result : ClvResult
        Models, scores and diagnostics.
    run_id : int or str
        The step's id in ``runs``.
    step : str
        ``"clv.fit"`` or ``"clv.predict"``.
    fitted_in : int or str, optional
        For a re-scoring: the run whose fitted parameters were reused (default: this run).
    fit_stats : mapping, optional
        ``log_likelihood``, ``aic``, ``bic`` of the reused fit (default: from the result).

    Returns
    -------
    str
        The run id as stored.
    """
    ensure_tables(con)
    rid = str(run_id)
    model, spend = result.model, result.spend
    if fit_stats is None:
        fit_stats = {"log_likelihood": model.log_likelihood_, "aic": result.aic,
                     "bic": result.bic}
    con.execute("UPDATE clv_runs SET is_current = false WHERE is_current")
    values = {
        "run_id": rid, "created_at": _now(), "purchase_model": result.purchase_model,
        "spend_model": result.spend_model, "unit": result.unit,
        "observation_end": result.observation_end, "horizon": int(result.horizon),
        "period_length": float(result.period_length),
        "discount_rate": float(result.discount_rate), "margin": float(result.margin),
        "params": _json(model.params_), "se": _json(getattr(model, "se_", {})),
        "log_likelihood": _number(fit_stats.get("log_likelihood")),
        "aic": _number(fit_stats.get("aic")), "bic": _number(fit_stats.get("bic")),
        "n_customers": int(result.n_customers), "one_time_share": result.one_time_share,
        "diagnostics": _json(result.diagnostics), "is_current": True,
        "spend_params": _json(spend.params_) if spend is not None else None,
        "spend_se": _json(getattr(spend, "se_", {})) if spend is not None else None,
        "step": step, "fitted_in": str(fitted_in) if fitted_in is not None else rid,
    }
    con.execute(f"INSERT INTO clv_runs ({', '.join(_RUN_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_RUN_COLUMNS))})", [values[c] for c in _RUN_COLUMNS])
    frame = result.scores[list(_SCORE_COLUMNS)]
    con.register("_crm_clv_scores", frame)
    try:
        columns = ", ".join(f'"{c}"' for c in _SCORE_COLUMNS)
        con.execute(f"INSERT INTO clv_scores (run_id, {columns}) "
                    f"SELECT ?, {columns} FROM _crm_clv_scores", [rid])
    finally:
        con.unregister("_crm_clv_scores")
    return rid


def save_validation(con: duckdb.DuckDBPyConnection, comparison: Any, run_id: int | str) -> int:
    """Store a :class:`crmlens.clv.validation.ModelComparison` (one row per model, curves).

    Returns the number of models stored.
    """
    ensure_tables(con)
    rid, created = str(run_id), _now()
    table = comparison.table
    rows, curves = [], []
    for record in table.to_dict("records"):
        name = record["model"]
        ev = comparison.evaluations.get(name)
        metrics = dict(ev.metrics) if ev is not None else {}
        ll = _number(record.get("log_likelihood"))
        n_params = record.get("n_params")
        rows.append([
            rid, created, name, ev.unit if ev else None, ev.calibration_end if ev else None,
            ev.observation_end if ev else None, ev.duration_holdout if ev else None,
            int(n_params) if _number(n_params) is not None else None, ll,
            _number(record.get("aic")), _number(record.get("bic")),
            *[_number(metrics.get(k, record.get(k))) for k in _VALIDATION_METRICS],
            record.get("grade") if ev is not None else None,
            bool(record.get("converged")) if record.get("converged") is not None else None,
            record.get("error") or None, name == comparison.best,
        ])
        if ev is None:
            continue
        for item in ev.by_frequency.to_dict("records"):
            x = int(item["frequency"])
            last = x == int(ev.by_frequency["frequency"].max())
            curves.append([rid, name, "by_frequency", float(x), f"{x}+" if last else str(x),
                           _number(item["expected"]), _number(item["actual"]),
                           _number(item.get("baseline"))])
        if ev.cumulative is not None:
            for item in ev.cumulative.to_dict("records"):
                curves.append([rid, name, "cumulative", float(item["period"]),
                               str(item["period_start"]), _number(item["expected"]),
                               _number(item["actual"]), None])
    if rows:
        con.executemany("INSERT INTO clv_validations VALUES (" + ", ".join("?" * 22) + ")",
                        rows)
    if curves:
        con.executemany("INSERT INTO clv_validation_curves VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        curves)
    return len(rows)


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClvRun:
    """One stored ``clv_runs`` row (JSON columns decoded)."""

    values: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.values["run_id"]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.values)
        for key in ("created_at", "observation_end"):
            if isinstance(out.get(key), (date, datetime)):
                out[key] = out[key].isoformat()
        return out


def _run_from_row(row: tuple) -> ClvRun:
    values = dict(zip(_RUN_COLUMNS, row, strict=True))
    for key in _JSON_COLUMNS:
        values[key] = json.loads(values[key]) if values[key] else None
    return ClvRun(values)


def list_runs(con: duckdb.DuckDBPyConnection) -> list[ClvRun]:
    """Stored CLV runs, newest first."""
    if not has_tables(con):
        return []
    rows = con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM clv_runs "
                       "ORDER BY created_at DESC, CAST(run_id AS BIGINT) DESC").fetchall()
    return [_run_from_row(r) for r in rows]


def get_run(con: duckdb.DuckDBPyConnection, run: int | str | None = None) -> ClvRun:
    """A stored run by id, or the current one (InputError when there is none)."""
    if not has_tables(con):
        raise InputError("error.clv_no_runs")
    if run is None:
        rows = con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM clv_runs "
                           "WHERE is_current").fetchall()
        if not rows:
            raise InputError("error.clv_no_runs")
    else:
        rows = con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM clv_runs WHERE run_id = ?",
                           [str(run).strip()]).fetchall()
        if not rows:
            raise InputError("error.clv_run_missing", run=str(run))
    return _run_from_row(rows[0])


def read_scores(con: duckdb.DuckDBPyConnection, run_id: int | str) -> pd.DataFrame:
    """Per-customer scores of a run, best first."""
    return con.execute("SELECT * EXCLUDE (run_id) FROM clv_scores WHERE run_id = ? "
                       "ORDER BY value_rank", [str(run_id)]).df()


def read_tiers(con: duckdb.DuckDBPyConnection, run_id: int | str) -> list[dict[str, Any]]:
    """Per value tier (top first): customers, share, CLV total/share/mean, mean scores."""
    rows = con.execute("""
        SELECT value_tier, count(*) AS customers,
               count(*) / sum(count(*)) OVER () AS share,
               sum(clv) AS clv_total,
               coalesce(sum(clv) / nullif(sum(sum(clv)) OVER (), 0), 0) AS clv_share,
               avg(clv) AS clv_mean, avg(p_alive) AS p_alive_mean,
               avg(expected_purchases) AS expected_purchases_mean,
               avg(p_purchase) AS p_purchase_mean, min(value_rank) AS first
        FROM clv_scores WHERE run_id = ? GROUP BY value_tier ORDER BY first""",
                       [str(run_id)]).fetchall()
    keys = ("tier", "customers", "share", "clv_total", "clv_share", "clv_mean", "p_alive_mean",
            "expected_purchases_mean", "p_purchase_mean")
    return [dict(zip(keys, (r[0], int(r[1]), *(_number(v) for v in r[2:9])), strict=True))
            for r in rows]


def read_validation(con: duckdb.DuckDBPyConnection, run_id: int | str | None = None
                    ) -> list[dict[str, Any]]:
    """The model comparison stored by a run (default: the newest one), best first."""
    if not has_tables(con):
        return []
    if run_id is None:
        row = con.execute("SELECT run_id FROM clv_validations "
                          "ORDER BY created_at DESC LIMIT 1").fetchall()
        if not row:
            return []
        run_id = row[0][0]
    frame = con.execute("SELECT * FROM clv_validations WHERE run_id = ? "
                        "ORDER BY is_best DESC, rmse NULLS LAST, model",
                        [str(run_id)]).df()
    records = frame.to_dict("records")
    for r in records:
        for key, value in r.items():
            if value is pd.NaT:
                r[key] = None
            elif isinstance(value, float):
                r[key] = _number(value)
            elif hasattr(value, "isoformat"):
                r[key] = value.isoformat()
            elif isinstance(value, np.generic):
                r[key] = value.item()
    return records
