"""Shared parts of every clean step: blank and duplicate detection, rejected-row writing."""

from __future__ import annotations

import duckdb

from crmlens.clean.expressions import RawColumn, blank, lit, original_json


def blank_row_sql(columns: list[RawColumn]) -> str:
    return "(" + " AND ".join(blank(c) for c in columns) + ")" if columns else "true"


def duplicate_rank_sql(columns: list[RawColumn]) -> str:
    """Rank of a row among exact copies of it (1 = first seen, by source row)."""
    keys = ", ".join(c.ref for c in columns)
    return f"row_number() OVER (PARTITION BY {keys} ORDER BY _row)"


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


def row_checks(columns: list[RawColumn], keep_duplicates: bool,
               key_missing: str) -> tuple[str, list[tuple[str, str, str]]]:
    """Select items and reasons shared by every kind: blank rows and exact duplicates.

    ``key_missing`` is a cheap condition true for every blank row (its date or customer id is
    missing); the costly all-columns-blank test only runs where it holds.
    """
    keys = ", ".join(c.ref for c in columns)
    if keep_duplicates:
        items = "1 AS dup_rank, _row AS first_row"
    else:
        window = f"OVER (PARTITION BY {keys} ORDER BY _row)"
        items = f"row_number() {window} AS dup_rank, first_value(_row) {window} AS first_row"
    reasons = [
        (f"{key_missing} AND {blank_row_sql(columns)}", "'blank_row'", "NULL"),
        ("dup_rank > 1", "'duplicate_row'", "'first copy at row ' || s.first_row"),
    ]
    return items, reasons


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
