"""Saved segmentations: ``segment_runs`` (one row per run), ``segments`` (membership) and
``segment_profiles`` (personas).

Every method (RFM, clustering, rule-based) saves through :func:`save_segmentation`, so history,
migration between runs and the report treat them alike. Callers hold the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import duckdb
import pandas as pd

from crmlens.errors import InputError


@dataclass(frozen=True)
class SegmentRun:
    """One saved segmentation."""

    run_id: int
    name: str
    method: str
    as_of: date | None
    params: dict[str, Any]
    n_segments: int
    n_customers: int
    created_at: datetime
    notes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "name": self.name, "method": self.method,
            "as_of": self.as_of.isoformat() if self.as_of else None, "params": self.params,
            "n_segments": self.n_segments, "n_customers": self.n_customers,
            "created_at": self.created_at.isoformat(timespec="seconds"), "notes": self.notes,
        }


_RUN_COLUMNS = ("run_id, name, method, as_of, params, n_segments, n_customers, created_at, "
                "notes")


def _next_run_id(con: duckdb.DuckDBPyConnection) -> int:
    # Segment runs share the id space of the runs table, so a run_id names one step everywhere.
    row = con.execute(
        "SELECT greatest((SELECT coalesce(max(run_id), 0) FROM runs), "
        "(SELECT coalesce(max(run_id), 0) FROM segment_runs)) + 1").fetchall()[0]
    return int(row[0])


def save_segmentation(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    method: str,
    as_of: date | None,
    params: Mapping[str, Any],
    labels: pd.DataFrame,
    notes: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    order: Sequence[str] | None = None,
) -> int:
    """Store a segmentation and return its run id.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable workspace connection; the caller holds the transaction.
    name : str
        The name users refer to (``"rfm"``, ``"clusters"``, ``"vip"``); several runs may share
        it, the latest one is what ``latest_run(name)`` returns.
    method : str
        ``"rfm"``, ``"kmeans"``, ``"rule"``, ``"waterfall"`` ...
    as_of : date or None
        The as-of date of the features the segmentation was made from.
    params : mapping
        JSON-able parameters of the method.
    labels : pandas.DataFrame
        Columns ``customer_id`` and ``segment`` (one row per customer).
    notes : mapping, optional
        JSON-able notes (sampling, chosen k and why ...).
    run_id : int, optional
        The id reserved for this step in ``runs`` (default: the next free id).
    order : sequence of str, optional
        Display order of the segment labels (stored in the notes).
    """
    if not name or not name.strip():
        raise InputError("error.segment_name_empty")
    if labels.empty:
        raise InputError("error.segment_no_customers", name=name)
    frame = pd.DataFrame({"customer_id": labels["customer_id"].astype(str),
                          "segment": labels["segment"].astype(str)})
    if frame["customer_id"].duplicated().any():
        raise ValueError("a customer may belong to one segment of a run only")
    rid = int(run_id) if run_id is not None else _next_run_id(con)
    note = dict(notes or {})
    if order is not None:
        note["order"] = [str(s) for s in order]
    con.execute(
        f"INSERT INTO segment_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [rid, name.strip(), method, as_of, json.dumps(dict(params), default=str),
         int(frame["segment"].nunique()), len(frame),
         datetime.now(timezone.utc).replace(tzinfo=None), json.dumps(note, default=str)])
    con.register("_crmlens_labels", frame)
    try:
        con.execute("INSERT INTO segments SELECT ?, customer_id, segment FROM _crmlens_labels",
                    [rid])
    finally:
        con.unregister("_crmlens_labels")
    return rid


def save_profiles(con: duckdb.DuckDBPyConnection, run_id: int,
                  profiles: Sequence[Mapping[str, Any]]) -> None:
    """Store the profile of each segment of a run (``segment``, ``n_customers`` + anything)."""
    con.execute("DELETE FROM segment_profiles WHERE run_id = ?", [run_id])
    rows = [[run_id, str(p["segment"]), i, int(p["n_customers"]), json.dumps(p, default=str)]
            for i, p in enumerate(profiles)]
    if rows:
        con.executemany("INSERT INTO segment_profiles VALUES (?, ?, ?, ?, ?)", rows)


def _run_from_row(row: Sequence[Any]) -> SegmentRun:
    return SegmentRun(run_id=int(row[0]), name=row[1], method=row[2], as_of=row[3],
                      params=json.loads(row[4]) if row[4] else {}, n_segments=int(row[5]),
                      n_customers=int(row[6]), created_at=row[7],
                      notes=json.loads(row[8]) if row[8] else {})


def list_runs(con: duckdb.DuckDBPyConnection, *, name: str | None = None) -> list[SegmentRun]:
    """Saved segmentations, newest first (optionally only those called ``name``)."""
    sql = f"SELECT {_RUN_COLUMNS} FROM segment_runs"
    params: list[Any] = []
    if name is not None:
        sql += " WHERE name = ?"
        params.append(name)
    return [_run_from_row(r) for r in con.execute(sql + " ORDER BY run_id DESC",
                                                  params).fetchall()]


def get_run(con: duckdb.DuckDBPyConnection, run_id: int) -> SegmentRun:
    """The saved segmentation with this id (InputError when there is none)."""
    rows = con.execute(f"SELECT {_RUN_COLUMNS} FROM segment_runs WHERE run_id = ?",
                       [int(run_id)]).fetchall()
    row = rows[0] if rows else None
    if row is None:
        raise InputError("error.segment_run_missing", run=str(run_id))
    return _run_from_row(row)


def latest_run(con: duckdb.DuckDBPyConnection, name: str) -> int | None:
    """The id of the newest run called ``name``, or None."""
    row = con.execute("SELECT max(run_id) FROM segment_runs WHERE name = ?", [name]).fetchall()[0]
    return int(row[0]) if row and row[0] is not None else None


def resolve_run(con: duckdb.DuckDBPyConnection, ref: str | int) -> SegmentRun:
    """A run from a user's reference: a run id (``"12"``) or a name (its latest run)."""
    text = str(ref).strip()
    if text.isdigit():
        return get_run(con, int(text))
    rid = latest_run(con, text)
    if rid is None:
        raise InputError("error.segment_run_missing", run=text)
    return get_run(con, rid)


def read_labels(con: duckdb.DuckDBPyConnection, run_id: int) -> pd.DataFrame:
    """Membership of a run: ``customer_id``, ``segment``."""
    return con.execute("SELECT customer_id, segment FROM segments WHERE run_id = ? "
                       "ORDER BY customer_id", [run_id]).df()


def read_profiles(con: duckdb.DuckDBPyConnection, run_id: int) -> list[dict[str, Any]]:
    """The stored profiles of a run, in display order."""
    rows = con.execute("SELECT profile FROM segment_profiles WHERE run_id = ? ORDER BY position",
                       [run_id]).fetchall()
    return [json.loads(r[0]) for r in rows]
