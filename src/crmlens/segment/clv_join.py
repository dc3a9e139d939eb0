"""Mean predicted CLV and P(alive) per segment, from the current CLV run (``clv_scores``).

A segmentation and a CLV run are made independently; this joins them on ``customer_id`` so a
segment profile can say what its customers are expected to be worth. Customers of a segment
that the CLV run did not score (e.g. no purchase before its observation end) are left out of
the means and counted in ``n_scored``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

# Columns of the result, in order.
COLUMNS = ("segment", "n_customers", "n_scored", "mean_clv", "mean_p_alive")


def _has_tables(con: duckdb.DuckDBPyConnection, *names: str) -> bool:
    found = con.execute(
        """
        SELECT count(DISTINCT table_name) FROM information_schema.tables
        WHERE table_catalog = current_database() AND table_schema = current_schema()
          AND table_name IN (SELECT unnest(?::VARCHAR[]))
        """, [list(names)]).fetchone()[0]
    return int(found) == len(names)


def current_clv_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The ``run_id`` of the current CLV run, or None when there is none.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store; only read.

    Returns
    -------
    str or None
        None when the CLV tables do not exist or no run is marked current. Should several be
        marked, the newest one wins.
    """
    if not _has_tables(con, "clv_runs", "clv_scores"):
        return None
    row = con.execute("SELECT run_id FROM clv_runs WHERE is_current "
                      "ORDER BY created_at DESC, run_id DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def segment_clv(con: duckdb.DuckDBPyConnection, segment_run_id: int, *,
                clv_run_id: str | None = None) -> pd.DataFrame | None:
    """Per segment of a segmentation: mean predicted CLV and mean P(alive) of its customers.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store; only read.
    segment_run_id : int
        The segmentation (``segments.run_id``).
    clv_run_id : str, optional
        The CLV run to join; default the current one.

    Returns
    -------
    pandas.DataFrame or None
        Columns ``segment``, ``n_customers`` (members), ``n_scored`` (members with a CLV
        score), ``mean_clv``, ``mean_p_alive`` (NaN for a segment with no scored member), one
        row per segment; None when there is no CLV run to join.
    """
    run = clv_run_id if clv_run_id is not None else current_clv_run_id(con)
    if run is None:
        return None
    # The LEFT JOIN keeps segments whose members all lack a score; avg ignores their NULLs.
    return con.execute(
        """
        SELECT s.segment, count(*) AS n_customers, count(c.customer_id) AS n_scored,
               avg(c.clv) AS mean_clv, avg(c.p_alive) AS mean_p_alive
        FROM segments s
        LEFT JOIN clv_scores c ON c.customer_id = s.customer_id AND c.run_id = ?
        WHERE s.run_id = ?
        GROUP BY s.segment ORDER BY s.segment
        """, [str(run), int(segment_run_id)]).df()[list(COLUMNS)]


def segment_clv_by_name(con: duckdb.DuckDBPyConnection, segment_run_id: int
                        ) -> dict[str, dict[str, float | None]]:
    """:func:`segment_clv` as ``{segment: {"mean_clv": ..., "mean_p_alive": ...}}``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store; only read.
    segment_run_id : int
        The segmentation.

    Returns
    -------
    dict
        Empty when there is no current CLV run; missing means are None.
    """
    frame = segment_clv(con, segment_run_id)
    if frame is None:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for row in frame.itertuples(index=False):
        out[str(row.segment)] = {
            "mean_clv": None if pd.isna(row.mean_clv) else float(row.mean_clv),
            "mean_p_alive": None if pd.isna(row.mean_p_alive) else float(row.mean_p_alive),
        }
    return out
