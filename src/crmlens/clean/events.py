"""Cleaning of events: interactions and feedback such as review scores."""

from __future__ import annotations

import duckdb

from crmlens.clean import expressions as ex
from crmlens.clean.accounting import (
    DUPS, attributes_json, build_duplicates, reason_sql, row_checks, value_detail,
    with_duplicates, write_rejected,
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

    def get(role: str, build, default: str = "CAST(NULL AS VARCHAR)") -> str:
        return build(r[role]) if role in r else default

    plan = ex.StagePlan()
    dups = build_duplicates(con, raw, columns, options.keep_duplicates)
    reasons = row_checks(columns, "__customer_id IS NULL")
    reasons += [
        ("__customer_id IS NULL", "'missing_customer_id'", ex.lit(r["customer_id"].name)),
        (f"__ts IS NULL AND NOT {plan.present(r['timestamp'])}", "'missing_timestamp'",
         ex.lit(r["timestamp"].name)),
        ("__ts IS NULL", "'bad_timestamp'", value_detail(r["timestamp"])),
    ]
    reason, detail = reason_sql(reasons)
    bad_value = (f"__value IS NULL AND {plan.present(r['value'])}" if "value" in r else "false")
    parsed = {
        "customer_id": get("customer_id", ex.identifier),
        "ts": plan.timestamp(r["timestamp"], dayfirst=options.dayfirst),
        "event_type": get("event_type", ex.text),
        "value": get("value", plan.number, "CAST(NULL AS DOUBLE)"),
        "channel": get("channel", ex.text),
        "order_id": get("order_id", ex.identifier),
        "product_id": get("product_id", ex.identifier),
        "text": get("text", ex.text),
        "attributes": attributes_json(columns, mapping.mapped_columns()),
    }
    inner = ", ".join(f"{expr} AS __{name}" for name, expr in parsed.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {STAGE} AS
        SELECT _row, __first_row AS first_row, {', '.join(f'__{n} AS {n}' for n in parsed)},
               {bad_value} AS bad_value, {reason} AS reason
        FROM (SELECT *, {inner} FROM {plan.source(with_duplicates(raw, dups > 0))})
    """)
    now = options.now.strftime("%Y-%m-%d %H:%M:%S")
    flags = ("list_filter(["
             "CASE WHEN bad_value THEN 'bad_value' END, "
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
    con.execute(f"DROP TABLE {STAGE}; DROP TABLE IF EXISTS {DUPS}")
