"""Progress reporting from library code to whatever shell is showing it.

Library functions take an optional :class:`Progress`; the CLI passes a Rich-backed one, the
API a job-status one, tests nothing. Long SQL statements report DuckDB's own query progress.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import duckdb


class Progress:
    """Receives progress events; this base class ignores them."""

    def stage(self, key: str, **params: object) -> None:
        """A new stage begins (``key`` is an i18n catalogue key)."""

    def fraction(self, done: float) -> None:
        """Share of the current stage done, from 0 to 1."""


NO_PROGRESS = Progress()


@contextlib.contextmanager
def watch_query(con: duckdb.DuckDBPyConnection, progress: Progress,
                interval: float = 0.25) -> Iterator[None]:
    """Report DuckDB's progress for the statements run inside the block."""
    if progress is NO_PROGRESS:
        yield
        return
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval):
            try:
                pct = con.query_progress()
            except duckdb.Error:
                return
            if pct is not None and pct >= 0:
                progress.fraction(min(pct, 100.0) / 100.0)

    thread = threading.Thread(target=poll, name="crmlens-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
