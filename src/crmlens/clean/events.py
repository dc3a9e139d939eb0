"""Cleaning of events: interactions and feedback such as review scores."""

from __future__ import annotations

import duckdb

from crmlens.clean import expressions as ex
from crmlens.clean.accounting import (
    attributes_json, reason_sql, row_checks, value_detail, write_rejected,
)
from crmlens.clean.options import CleanOptions
from crmlens.ingest.roles import RoleMapping

STAGE = "_crm_stage_ev"


def clean_events(
    con: duckdb.DuckDBPyConnection,
    *,
    raw: str,
    source_id: int,
    mapping: RoleMapping,
    columns: list[ex.RawColumn],
    options: CleanOptions,
) -> None:
    """Clean raw events into ``events`` and ``rejected``."""
    cols = {c.name: c for c in columns}
    r = {role: cols[name] for role, name in mapping.roles.items()}
    null = "CAST(NULL AS VARCHAR)"

    def get(role: str, build, default: str = null) -> str:
        return build(r[role]) if role in r else default

    row_items, reasons = row_checks(columns, options.keep_duplicates)
    reasons += [
        ("customer_id IS NULL", "'missing_customer_id'", ex.lit(r["customer_id"].name)),
        ("NOT ts_present", "'missing_timestamp'", ex.lit(r["timestamp"].name)),
        ("ts IS NULL", "'bad_timestamp'", value_detail(r["timestamp"])),
    ]
    reason, detail = reason_sql(reasons)
    value_present = ex.present(r["value"]) if "value" in r else "false"
    now = options.now.strftime("%Y-%m-%d %H:%M:%S")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {STAGE} AS
        WITH parsed AS (
            SELECT _row,
                {get('customer_id', ex.identifier)} AS customer_id,
                {ex.timestamp(r['timestamp'], dayfirst=options.dayfirst)} AS ts,
                {ex.present(r['timestamp'])} AS ts_present,
                {get('event_type', ex.text)} AS event_type,
                {get('value', ex.number, 'CAST(NULL AS DOUBLE)')} AS value,
                {value_present} AS value_present,
                {get('channel', ex.text)} AS channel,
                {get('order_id', ex.identifier)} AS order_id,
                {get('product_id', ex.identifier)} AS product_id,
                {get('text', ex.text)} AS text,
                {attributes_json(columns, mapping.mapped_columns())} AS attributes,
                {row_items}
            FROM {raw}
        )
        SELECT *, {reason} AS reason FROM parsed
    """)
    flags = ("list_filter(["
             "CASE WHEN value_present AND value IS NULL THEN 'bad_value' END, "
             f"CASE WHEN ts > TIMESTAMP '{now}' THEN 'future_date' END"
             "], lambda f: f IS NOT NULL)")
    con.execute(f"""
        INSERT INTO events
        SELECT {source_id}, _row, customer_id, ts, event_type, value, channel, order_id,
               product_id, text, attributes, {flags}
        FROM {STAGE} WHERE reason IS NULL
    """)
    write_rejected(con, stage=STAGE, raw=raw, source_id=source_id, kind="events",
                   columns=columns, detail_sql=detail)
    con.execute(f"DROP TABLE {STAGE}")
