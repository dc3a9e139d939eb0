"""The features in the workspace: table ``customer_features`` keyed by (as_of, customer_id).

Several as-of dates live side by side. The fixed columns come from the catalogue; a share
column seen for the first time is added with ``ALTER TABLE`` (NULL for the other dates), and
``customer_feature_sets`` records which columns (and which data values) belong to each date,
so reading one date gives exactly its columns.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from crmlens.errors import InputError
from crmlens.features import _sql
from crmlens.features._catalogue import definitions
from crmlens.features._compute import FeatureResult, parse_as_of

TABLE = "customer_features"
SETS_TABLE = "customer_feature_sets"

_SETS_DDL = f"""CREATE TABLE IF NOT EXISTS {SETS_TABLE} (
    as_of        DATE PRIMARY KEY,
    run_id       INTEGER,
    n_customers  BIGINT NOT NULL,
    columns      JSON NOT NULL,
    shares       JSON NOT NULL,
    computed_at  TIMESTAMP NOT NULL
)"""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = ?", [name]).fetchall()[0][0])


def store_features(con: duckdb.DuckDBPyConnection, result: FeatureResult, *,
                   run_id: int | None = None) -> None:
    """Write ``result`` into ``customer_features``, replacing the rows of its as-of date.

    Run it inside the step's transaction (:func:`crmlens.workspace.store.transaction`).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace connection that computed ``result``.
    result : FeatureResult
    run_id : int, optional
        The ``runs`` row of the step, recorded with the date's column set.
    """
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (as_of DATE NOT NULL, "
                "customer_id VARCHAR NOT NULL, PRIMARY KEY (as_of, customer_id))")
    con.execute(_SETS_DDL)
    for name in result.columns:
        sql_type = _sql.STATIC_TYPES.get(name, "DOUBLE")
        con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {_q(name)} {sql_type}")
    con.execute(f"DELETE FROM {TABLE} WHERE as_of = ?", [result.as_of])
    cols = ", ".join(_q(c) for c in ["as_of", "customer_id", *result.columns])
    con.execute(f"INSERT INTO {TABLE} ({cols}) SELECT {cols} FROM {result.table}")
    con.execute(f"DELETE FROM {SETS_TABLE} WHERE as_of = ?", [result.as_of])
    con.execute(f"INSERT INTO {SETS_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                [result.as_of, run_id, result.n_customers, json.dumps(result.columns),
                 json.dumps(result.shares, ensure_ascii=False), datetime.now()])


def stored_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """As-of dates with stored features, latest first."""
    if not _table_exists(con, SETS_TABLE):
        return []
    return [r[0] for r in con.execute(f"SELECT as_of FROM {SETS_TABLE} ORDER BY as_of DESC")
            .fetchall()]


def stored_set(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, Any]:
    row = con.execute(f"SELECT columns, shares, n_customers, run_id FROM {SETS_TABLE} "
                      "WHERE as_of = ?", [as_of]).fetchall()[0]
    return {"columns": json.loads(row[0]), "shares": json.loads(row[1]),
            "n_customers": int(row[2]), "run_id": row[3]}


def read_features(con: duckdb.DuckDBPyConnection, *,
                  as_of: str | date | None = None) -> pd.DataFrame:
    """The stored features of one as-of date as a DataFrame (one row per customer).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A workspace connection.
    as_of : str (YYYY-MM-DD) or date, optional
        Default: the latest stored date.

    Returns
    -------
    pandas.DataFrame
        Columns ``as_of``, ``customer_id`` and the features of that date (share columns of
        other dates left out), sorted by ``customer_id``.

    Raises
    ------
    crmlens.errors.InputError
        No features stored, or none for ``as_of``.
    """
    dates = stored_dates(con)
    if not dates:
        raise InputError("error.features_none_stored")
    day = parse_as_of(as_of) or dates[0]
    if day not in dates:
        raise InputError("error.features_date_not_stored", as_of=day.isoformat(),
                         dates=", ".join(d.isoformat() for d in dates[:10]))
    cols = ", ".join(_q(c) for c in ["as_of", "customer_id", *stored_set(con, day)["columns"]])
    return con.execute(f"SELECT {cols} FROM {TABLE} WHERE as_of = ? ORDER BY customer_id",
                       [day]).df()


def feature_catalogue(lang: str | None = "en", *,
                      result: FeatureResult | None = None) -> list[dict[str, Any]]:
    """Definitions of the features: name, label in ``lang``, unit, kind, group, definition.

    Parameters
    ----------
    lang : {"en", "zh"}, default "en"
    result : FeatureResult, optional
        When given, the share families are expanded into the result's actual columns (with
        ``family`` naming the template); otherwise the families are listed as templates such
        as ``share_channel_{slug}``.

    Returns
    -------
    list of dict
    """
    out = []
    for d in definitions():
        if d.family and result is not None:
            prefix = d.name.split("{")[0]
            for share in result.shares:
                if share["name"].startswith(prefix):
                    out.append({**d.to_dict(lang), "name": share["name"],
                                "label": result.label(share["name"], lang),
                                "family": d.name, "value": share["value"]})
        else:
            out.append(d.to_dict(lang))
    return out
