"""The ``runs`` table: one row per step, so any result traces back to its data and settings."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class RunRecord:
    """A step in progress; written to ``runs`` inside the step's own transaction."""

    step: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    row_counts: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=_now)
    _t0: float = field(default_factory=time.perf_counter)
    run_id: int | None = None

    def reserve_id(self, con: duckdb.DuckDBPyConnection) -> int:
        row = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchone()
        self.run_id = int(row[0])
        return self.run_id

    def write(self, con: duckdb.DuckDBPyConnection, status: str = "ok") -> int:
        from crmlens import __version__

        if self.run_id is None:
            self.reserve_id(con)
        seconds = time.perf_counter() - self._t0
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.run_id, self.step, status, self.started_at, _now(), seconds,
                json.dumps(self.params, default=str), json.dumps(self.inputs, default=str),
                json.dumps(self.row_counts, default=str), __version__,
            ],
        )
        return int(self.run_id)


def list_runs(con: duckdb.DuckDBPyConnection, limit: int = 50) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT run_id, step, status, started_at, finished_at, seconds, params, inputs, "
        "row_counts, version FROM runs ORDER BY run_id DESC LIMIT ?",
        [limit],
    ).fetchall()
    out = []
    for r in rows:
        out.append({
            "run_id": r[0], "step": r[1], "status": r[2],
            "started_at": r[3].isoformat() if r[3] else None,
            "finished_at": r[4].isoformat() if r[4] else None,
            "seconds": round(r[5], 3) if r[5] is not None else None,
            "params": json.loads(r[6]) if r[6] else {},
            "inputs": json.loads(r[7]) if r[7] else [],
            "row_counts": json.loads(r[8]) if r[8] else {},
            "version": r[9],
        })
    return out
