"""Deciding how to read ambiguous day/month dates such as 9/12/2011."""

from __future__ import annotations

import duckdb

from crmlens.clean.expressions import RawColumn


def detect_dayfirst(con: duckdb.DuckDBPyConnection, table: str, col: RawColumn) -> bool | None:
    """True/False when the values prove the order, None when every value is ambiguous.

    A first number above 12 (``25/12/2011``) proves day-first; a second one above 12
    (``12/25/2011``) proves month-first. Counted over the whole column, in SQL.
    """
    if not col.is_text:
        return None
    row = con.execute(f"""
        SELECT count(*) FILTER (WHERE a > 12 AND b <= 12), count(*) FILTER (WHERE b > 12 AND a <= 12)
        FROM (
            SELECT CAST(m[1] AS INTEGER) AS a, CAST(m[2] AS INTEGER) AS b
            FROM (SELECT regexp_extract(trim({col.ref}), '^(\\d{{1,2}})[-/.](\\d{{1,2}})[-/.]\\d{{2,4}}',
                                        ['d1', 'd2']) AS s FROM {table})
            , LATERAL (SELECT [s.d1, s.d2] AS m)
            WHERE s.d1 <> ''
        )
    """).fetchone()
    day_first, month_first = int(row[0]), int(row[1])
    if day_first == month_first == 0:
        return None
    return day_first >= month_first
