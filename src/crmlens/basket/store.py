"""Basket results in the workspace: ``basket_runs``, ``basket_itemsets``, ``basket_rules``
(columns as in ``notes/basket_api.md``; the CLI and the report read them).

``run_id`` is the ``runs`` table id of the step that wrote the rows (stored as text).
``segment`` is NULL for the results over all baskets and the segment's label for the results
restricted to that segment's customers. Exactly one ``basket_runs`` row is current: the
newest. Callers hold the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError

DDL: dict[str, str] = {
    "basket_runs": """
        CREATE TABLE IF NOT EXISTS basket_runs (
            run_id       VARCHAR PRIMARY KEY,
            created_at   TIMESTAMP NOT NULL,
            basket       VARCHAR NOT NULL,
            item         VARCHAR NOT NULL,
            min_support  DOUBLE,
            min_count    BIGINT,
            max_len      INTEGER,
            algorithm    VARCHAR,
            kind         VARCHAR,
            n_baskets    BIGINT,
            n_items      BIGINT,
            n_itemsets   BIGINT,
            n_rules      BIGINT,
            segment_run  VARCHAR,
            params       JSON,
            is_current   BOOLEAN NOT NULL
        )""",
    "basket_itemsets": """
        CREATE TABLE IF NOT EXISTS basket_itemsets (
            run_id   VARCHAR NOT NULL,
            segment  VARCHAR,
            itemset  VARCHAR[],
            names    VARCHAR[],
            length   INTEGER,
            count    BIGINT,
            support  DOUBLE
        )""",
    "basket_rules": """
        CREATE TABLE IF NOT EXISTS basket_rules (
            run_id            VARCHAR NOT NULL,
            segment           VARCHAR,
            antecedent        VARCHAR[],
            consequent        VARCHAR[],
            antecedent_names  VARCHAR[],
            consequent_names  VARCHAR[],
            antecedent_count  BIGINT,
            consequent_count  BIGINT,
            count             BIGINT,
            support           DOUBLE,
            confidence        DOUBLE,
            lift              DOUBLE,
            leverage          DOUBLE,
            conviction        DOUBLE,
            zhang             DOUBLE
        )""",
}

RUN_COLUMNS = ("run_id", "created_at", "basket", "item", "min_support", "min_count", "max_len",
               "algorithm", "kind", "n_baskets", "n_items", "n_itemsets", "n_rules",
               "segment_run", "params", "is_current")
ITEMSET_COLUMNS = ("itemset", "names", "length", "count", "support")
RULE_COLUMNS = ("antecedent", "consequent", "antecedent_names", "consequent_names",
                "antecedent_count", "consequent_count", "count", "support", "confidence",
                "lift", "leverage", "conviction", "zhang")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the basket tables if they do not exist yet."""
    for ddl in DDL.values():
        con.execute(ddl)


def has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the workspace holds basket results."""
    row = con.execute("SELECT count(*) FROM information_schema.tables "
                      "WHERE table_name = 'basket_runs'").fetchall()[0]
    return bool(row[0])


def itemsets_frame(itemsets: Any) -> pd.DataFrame:
    """Frequent itemsets as flat rows: ``itemset`` (sorted item ids), ``names``, ``length``,
    ``count``, ``support``; most frequent first, then shortest, then by items.

    Parameters
    ----------
    itemsets : crmlens.basket.itemsets.Itemsets

    Returns
    -------
    pandas.DataFrame
    """
    ids = np.asarray(itemsets.item_ids, dtype=object)
    names = np.asarray(itemsets.item_names, dtype=object)
    rows = []
    for codes, count in zip(itemsets.items, itemsets.counts, strict=True):
        pairs = sorted((str(ids[k]), "" if names[k] is None else str(names[k])) for k in codes)
        rows.append(([p[0] for p in pairs], [p[1] for p in pairs], len(pairs), int(count)))
    frame = pd.DataFrame(rows, columns=["itemset", "names", "length", "count"])
    if frame.empty:
        frame = frame.astype({"length": "int64", "count": "int64"})
    frame["support"] = frame["count"] / max(int(itemsets.n_baskets), 1)
    frame["_key"] = frame["itemset"].map(tuple)
    frame = frame.sort_values(["count", "length", "_key"], ascending=[False, True, True],
                              kind="mergesort")
    return frame.drop(columns="_key").reset_index(drop=True)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame,
            columns: tuple[str, ...], run_id: str, segment: str | None) -> int:
    if frame is None or frame.empty:
        return 0
    view = f"_crm_{table}"
    data = frame[list(columns)].copy()
    if "conviction" in data:
        # DOUBLE holds inf; JSON readers get null for it (see read_rules).
        data["conviction"] = data["conviction"].astype(float)
    con.register(view, data)
    try:
        cols = ", ".join(f'"{c}"' for c in columns)
        con.execute(f"INSERT INTO {table} (run_id, segment, {cols}) "
                    f"SELECT ?, ?, {cols} FROM {view}", [run_id, segment])
    finally:
        con.unregister(view)
    return len(data)


def save_run(con: duckdb.DuckDBPyConnection, run_id: int | str, *, basket: str, item: str,
             min_support: float | int | None, min_count: int | None, max_len: int | None,
             algorithm: str, kind: str, n_baskets: int, n_items: int,
             itemsets: Mapping[str | None, pd.DataFrame],
             rules: Mapping[str | None, pd.DataFrame] | None = None,
             segment_run: int | str | None = None,
             params: Mapping[str, Any] | None = None) -> str:
    """Store a basket step and make it the current run.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable workspace connection; the caller holds the transaction.
    run_id : int or str
        The step's id in ``runs``.
    basket, item : str
        What a basket and an item were (``order``/``customer``, ``product``/``category``).
    min_support, min_count, max_len, algorithm, kind
        Mining settings (``min_count`` is the absolute threshold over all baskets).
    n_baskets, n_items : int
        Over all baskets.
    itemsets : mapping segment -> DataFrame
        Flat itemsets (:func:`itemsets_frame`) per segment; key None for all baskets.
    rules : mapping segment -> DataFrame, optional
        Rules (:func:`crmlens.basket.rules.association_rules`) per segment.
    segment_run : int or str, optional
        The segmentation the segments come from.
    params : mapping, optional
        Every option of the step (JSON).

    Returns
    -------
    str
        The run id as stored.
    """
    ensure_tables(con)
    rid = str(run_id)
    rules = rules or {}
    n_itemsets = len(itemsets.get(None, ())) if itemsets.get(None) is not None else 0
    n_rules = len(rules[None]) if rules.get(None) is not None else 0
    con.execute("UPDATE basket_runs SET is_current = false WHERE is_current")
    values = {
        "run_id": rid, "created_at": _now(), "basket": basket, "item": item,
        "min_support": None if min_support is None else float(min_support),
        "min_count": None if min_count is None else int(min_count),
        "max_len": None if max_len is None else int(max_len), "algorithm": algorithm,
        "kind": kind, "n_baskets": int(n_baskets), "n_items": int(n_items),
        "n_itemsets": n_itemsets, "n_rules": n_rules,
        "segment_run": None if segment_run is None else str(segment_run),
        "params": json.dumps(dict(params or {}), default=str), "is_current": True,
    }
    con.execute(f"INSERT INTO basket_runs ({', '.join(RUN_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(RUN_COLUMNS))})", [values[c] for c in RUN_COLUMNS])
    for segment, frame in itemsets.items():
        _insert(con, "basket_itemsets", frame, ITEMSET_COLUMNS, rid, segment)
    for segment, frame in rules.items():
        _insert(con, "basket_rules", frame, RULE_COLUMNS, rid, segment)
    return rid


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BasketRun:
    """One stored ``basket_runs`` row (``params`` decoded)."""

    values: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.values["run_id"]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.values)
        if isinstance(out.get("created_at"), datetime):
            out["created_at"] = out["created_at"].isoformat(timespec="seconds")
        return out


def _run_from_row(row: tuple) -> BasketRun:
    values = dict(zip(RUN_COLUMNS, row, strict=True))
    values["params"] = json.loads(values["params"]) if values["params"] else {}
    return BasketRun(values)


def list_runs(con: duckdb.DuckDBPyConnection) -> list[BasketRun]:
    """Stored basket runs, newest first."""
    if not has_tables(con):
        return []
    rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM basket_runs "
                       "ORDER BY created_at DESC, CAST(run_id AS BIGINT) DESC").fetchall()
    return [_run_from_row(r) for r in rows]


def get_run(con: duckdb.DuckDBPyConnection, run: int | str | None = None) -> BasketRun:
    """A stored run by id, or the current one (InputError when there is none)."""
    if not has_tables(con):
        raise InputError("error.basket_no_runs")
    if run is None:
        rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM basket_runs "
                           "WHERE is_current").fetchall()
        if not rows:
            raise InputError("error.basket_no_runs")
    else:
        rows = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM basket_runs "
                           "WHERE run_id = ?", [str(run).strip()]).fetchall()
        if not rows:
            raise InputError("error.basket_run_missing", run=str(run))
    return _run_from_row(rows[0])


def _segment_filter(segment: str | None) -> str:
    return "segment IS NULL" if segment is None else "segment = ?"


def read_itemsets(con: duckdb.DuckDBPyConnection, run_id: int | str, *,
                  segment: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """Stored itemsets of a run (all baskets, or one segment), most frequent first."""
    params: list[Any] = [str(run_id)] + ([] if segment is None else [segment])
    sql = (f"SELECT {', '.join(ITEMSET_COLUMNS)} FROM basket_itemsets WHERE run_id = ? AND "
           f"{_segment_filter(segment)} ORDER BY count DESC, length, itemset")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, params).df()


def read_rules(con: duckdb.DuckDBPyConnection, run_id: int | str, *,
               segment: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """Stored rules of a run (all baskets, or one segment), highest lift first."""
    params: list[Any] = [str(run_id)] + ([] if segment is None else [segment])
    sql = (f"SELECT {', '.join(RULE_COLUMNS)} FROM basket_rules WHERE run_id = ? AND "
           f"{_segment_filter(segment)} ORDER BY lift DESC, confidence DESC, count DESC, "
           "antecedent, consequent")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, params).df()


def segment_summary(con: duckdb.DuckDBPyConnection, run_id: int | str) -> list[dict[str, Any]]:
    """Per segment of a run: itemsets and rules stored (segments in label order)."""
    rows = con.execute("""
        SELECT segment, sum(n_itemsets)::BIGINT, sum(n_rules)::BIGINT FROM (
            SELECT segment, count(*) AS n_itemsets, 0 AS n_rules FROM basket_itemsets
            WHERE run_id = ? AND segment IS NOT NULL GROUP BY segment
            UNION ALL
            SELECT segment, 0, count(*) FROM basket_rules
            WHERE run_id = ? AND segment IS NOT NULL GROUP BY segment)
        GROUP BY segment ORDER BY segment""", [str(run_id), str(run_id)]).fetchall()
    return [{"segment": r[0], "n_itemsets": int(r[1]), "n_rules": int(r[2])} for r in rows]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON-able dicts: lists for arrays, None for NaN and infinity."""
    out = []
    for row in frame.to_dict("records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, np.ndarray):
                value = [str(v) for v in value.tolist()]
            elif isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, (float, np.floating)):
                value = float(value) if np.isfinite(value) else None
            clean[key] = value
        out.append(clean)
    return out
