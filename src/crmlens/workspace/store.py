"""The DuckDB store of a workspace: opening, locking, transactions.

DuckDB allows one writing process per database file; a second writer gets a lock error, which
we turn into a clear message. Every step writes inside one transaction, so a failure or a kill
leaves the previous committed state (DuckDB's write-ahead log discards the unfinished one).
"""

from __future__ import annotations

import contextlib
import logging
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from crmlens.clean import sqlfuncs
from crmlens.errors import WorkspaceError
from crmlens.workspace.schema import DDL

log = logging.getLogger(__name__)


def is_write_protected(path: Path) -> bool:
    """True when the owner write bit is off.

    We look at the mode bits rather than ``os.access`` because root passes ``os.access``
    checks: a user who made the folder read-only means it, whoever runs the command.
    """
    try:
        return not (path.stat().st_mode & stat.S_IWUSR)
    except FileNotFoundError:
        return False


def connect(
    db_path: Path, *, read_only: bool = False, engine: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the workspace database with our settings and cleaning functions."""
    engine = engine or {}
    config: dict[str, Any] = {"memory_limit": str(engine.get("memory_limit", "1500MB"))}
    threads = int(engine.get("threads", 0) or 0)
    if threads > 0:
        config["threads"] = threads
    try:
        con = duckdb.connect(str(db_path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise WorkspaceError("error.workspace_locked", path=str(db_path.parent)) from None
        raise WorkspaceError(
            "error.workspace_unreadable", path=str(db_path), detail=text.splitlines()[0]
        ) from None
    except duckdb.Error as exc:
        raise WorkspaceError(
            "error.workspace_unreadable", path=str(db_path), detail=str(exc).splitlines()[0]
        ) from None
    # Keep DuckDB's own progress bar off stdout (ours reads query_progress() instead).
    con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = true; "
                "SET enable_progress_bar_print = false")
    sqlfuncs.register(con)
    return con


def close(con: duckdb.DuckDBPyConnection) -> None:
    sqlfuncs.unregister(con)
    con.close()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in DDL.values():
        con.execute(ddl)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: all of it is committed, or none of it."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'
