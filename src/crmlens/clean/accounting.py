"""Shared parts of every clean step: blank and duplicate detection, rejected-row writing."""

from __future__ import annotations

import duckdb

from crmlens.clean.expressions import RawColumn, blank, lit, original_json


def blank_row_sql(columns: list[RawColumn]) -> str:
    return "(" + " AND ".join(blank(c) for c in columns) + ")" if columns else "true"


def write_rejected(
    con: duckdb.DuckDBPyConnection,
    *,
    stage: str,
    raw: str,
    source_id: int,
    kind: str,
    columns: list[RawColumn],
    detail_sql: str,
    reason_sql: str = "s.reason",
    where: str = "s.reason IS NOT NULL",
) -> None:
    """Copy the rejected rows of ``stage`` into ``rejected`` with their original values."""
    con.execute(f"""
        INSERT INTO rejected
        SELECT {source_id}, {lit(kind)}, s._row, {reason_sql}, {detail_sql},
               {original_json(columns)}
        FROM {stage} s JOIN {raw} r ON r._row = s._row
        WHERE {where}
    """)


def reason_sql(reasons: list[tuple[str, str, str]]) -> tuple[str, str]:
    """``CASE`` expressions for the first failing rule's reason code and its detail.

    ``reasons`` holds ``(condition, reason literal, detail expression)`` in priority order.
    """
    reason = "CASE " + " ".join(f"WHEN {w} THEN {v}" for w, v, _ in reasons) + " END"
    # The detail is computed only for rejected rows, in `write_rejected`, where the stage
    # (alias s) is joined to the raw row (alias r).
    detail = "CASE s.reason " + " ".join(f"WHEN {v} THEN {d}" for _, v, d in reasons) + " END"
    return reason, detail


def value_detail(col: RawColumn) -> str:
    """``Column=value`` text naming the offending cell."""
    return f"{lit(col.name)} || '=' || coalesce(CAST(r.{col.ref} AS VARCHAR), '')"


DUPS = "_crm_dups"


def build_duplicates(con: duckdb.DuckDBPyConnection, raw: str, columns: list[RawColumn],
                     keep_duplicates: bool) -> int:
    """Find exact duplicate rows: ``_crm_dups(_row, dup_rank, first_row)`` for each later copy.

    Hash first, compare exactly second: grouping ten million rows by one 64-bit hash is cheap,
    and only rows whose hash occurs more than once go through the exact all-columns window
    (so a hash collision can never make two different rows "duplicates").
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {DUPS} (_row BIGINT, dup_rank BIGINT, "
                "first_row BIGINT)")
    if keep_duplicates or not columns:
        return 0
    keys = ", ".join(c.ref for c in columns)
    con.execute(f"""
        INSERT INTO {DUPS}
        SELECT _row, dup_rank, first_row FROM (
            SELECT _row, row_number() OVER w AS dup_rank, first_value(_row) OVER w AS first_row
            FROM {raw}
            WHERE hash({keys}) IN (SELECT h FROM (SELECT hash({keys}) AS h FROM {raw})
                                   GROUP BY h HAVING count(*) > 1)
            WINDOW w AS (PARTITION BY {keys} ORDER BY _row)
        ) WHERE dup_rank > 1
    """)
    return int(con.execute(f"SELECT count(*) FROM {DUPS}").fetchone()[0])


def with_duplicates(source: str, any_duplicates: bool = True) -> str:
    """``source`` with ``__dup_rank`` (1 for first copies) and ``__first_row`` attached.

    Without duplicates the join is left out.
    """
    if not any_duplicates:
        return f"(SELECT *, 1 AS __dup_rank, CAST(NULL AS BIGINT) AS __first_row FROM {source})"
    return (f"(SELECT t.*, coalesce(d.dup_rank, 1) AS __dup_rank, d.first_row AS __first_row "
            f"FROM {source} t LEFT JOIN {DUPS} d ON t._row = d._row)")


def row_checks(columns: list[RawColumn], key_missing: str) -> list[tuple[str, str, str]]:
    """Reasons shared by every kind: blank rows, then exact duplicates.

    ``key_missing`` is a cheap condition true for every blank row (its date or customer id is
    missing); the costly all-columns-blank test only runs where it holds.
    """
    return [
        (f"{key_missing} AND {blank_row_sql(columns)}", "'blank_row'", "NULL"),
        ("__dup_rank > 1", "'duplicate_row'", "'first copy at row ' || s.first_row"),
    ]


def attributes_json(columns: list[RawColumn], exclude: set[str]) -> str:
    """Unmapped columns as a JSON object, so no customer attribute is thrown away."""
    rest = [c for c in columns if c.name not in exclude]
    if not rest:
        return "NULL"
    parts = []
    for c in rest:
        value = f"crm_text({c.ref})" if c.is_text else c.ref
        parts.append(f"{lit(c.name)}, {value}")
    return f"json_object({', '.join(parts)})"
