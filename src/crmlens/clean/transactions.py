"""Cleaning of transaction lines: parse, classify, flag, net returns, reject with reasons."""

from __future__ import annotations

import math

import duckdb

from crmlens.clean import expressions as ex
from crmlens.clean.accounting import (
    DUPS, build_duplicates, reason_sql, row_checks, value_detail, with_duplicates,
    write_rejected,
)
from crmlens.clean.line_types import line_type_sql
from crmlens.clean.options import CleanOptions
from crmlens.ingest.roles import RoleMapping

STAGE = "_crm_stage_tx"


def _role(mapping: RoleMapping, cols: dict[str, ex.RawColumn], role: str) -> ex.RawColumn | None:
    name = mapping.column(role)
    return cols[name] if name else None


def _stage_sql(raw: str, mapping: RoleMapping, cols: dict[str, ex.RawColumn],
               options: CleanOptions, any_duplicates: bool = True) -> tuple[str, str]:
    """The parse query (one row per raw row, with its reject reason) and the detail SQL.

    Raw columns travel along so that the costlier presence and blank tests run only for the
    rows whose parsed value is missing.
    """
    r = {role: _role(mapping, cols, role) for role in mapping.roles}
    null = "CAST(NULL AS VARCHAR)"

    def get(role: str, build, default: str = null) -> str:
        return build(r[role]) if r.get(role) else default

    all_cols = list(cols.values())
    plan = ex.StagePlan()

    def num(role: str) -> str:
        return plan.number(r[role]) if r.get(role) else "CAST(NULL AS DOUBLE)"

    ts_expr = plan.timestamp(r["timestamp"], dayfirst=options.dayfirst)
    qty_expr, price_expr, amount_expr = num("quantity"), num("unit_price"), num("amount")
    reasons = row_checks(all_cols, "__ts IS NULL")
    reasons += [
        (f"__ts IS NULL AND NOT {plan.present(r['timestamp'])}", "'missing_timestamp'",
         ex.lit(r["timestamp"].name)),
        ("__ts IS NULL", "'bad_timestamp'", value_detail(r["timestamp"])),
    ]
    for role, var, code in (("quantity", "__qty", "bad_quantity"),
                            ("unit_price", "__price", "bad_price"),
                            ("amount", "__amount", "bad_amount")):
        if r.get(role):
            reasons.append((f"{var} IS NULL AND {plan.present(r[role])}", f"'{code}'",
                            value_detail(r[role])))
    reasons.append(("__amount IS NULL AND __price IS NULL", "'missing_amount'", "NULL"))
    reason_case, detail_case = reason_sql(reasons)
    return f"""
        SELECT _row, __first_row AS first_row,
            __customer_id AS customer_id, __order_id AS order_id_in, __ts AS ts,
            __product_id AS product_id, __product_name AS product_name, __category AS category,
            __qty AS qty, __price AS price, __amount AS amount_in, __channel AS channel,
            __region AS region, __return_flag AS return_flag,
            coalesce(__line_type, 'product') AS line_type,
            {reason_case} AS reason
        FROM (
            SELECT *,
                {get('customer_id', ex.identifier)} AS __customer_id,
                {get('order_id', ex.identifier)} AS __order_id,
                {ts_expr} AS __ts,
                {get('product_id', ex.identifier)} AS __product_id,
                {get('product_name', ex.text)} AS __product_name,
                {get('category', ex.text)} AS __category,
                {qty_expr} AS __qty,
                {price_expr} AS __price,
                {amount_expr} AS __amount,
                {get('channel', ex.text)} AS __channel,
                {get('region', ex.text)} AS __region,
                {get('return_flag', ex.boolean, 'CAST(NULL AS BOOLEAN)')} AS __return_flag
            FROM {plan.source(with_duplicates(_with_line_types(raw, r), any_duplicates))}
        )
    """, detail_case


LINE_TYPES = "_crm_line_types"
CANCELLATIONS = "_crm_cancellations"
ORDER_IDS = "_crm_order_ids"
RETURN_MATCH = "_crm_return_match"


def _with_line_types(raw: str, r: dict[str, ex.RawColumn | None]) -> str:
    """The raw table joined to the line-type lookup (built per distinct product)."""
    keys = [c for c in (r.get("product_id"), r.get("product_name")) if c is not None]
    if not keys:
        return f"(SELECT *, CAST(NULL AS VARCHAR) AS __line_type FROM {raw})"
    on = " AND ".join(f"t.{c.ref} IS NOT DISTINCT FROM lt.k{i}" for i, c in enumerate(keys))
    return f"(SELECT t.*, lt.line_type AS __line_type FROM {raw} t LEFT JOIN {LINE_TYPES} lt ON {on})"


def _build_line_types(con: duckdb.DuckDBPyConnection, raw: str, mapping: RoleMapping,
                      cols: dict[str, ex.RawColumn], options: CleanOptions) -> None:
    """Classify each distinct (product id, name) once instead of every line."""
    pid = cols.get(mapping.column("product_id") or "")
    name = cols.get(mapping.column("product_name") or "")
    keys = [c for c in (pid, name) if c is not None]
    if not keys:
        return
    key_sql = ", ".join(f"{c.ref} AS k{i}" for i, c in enumerate(keys))
    pid_sql = ex.identifier(pid).replace(pid.ref, "k0") if pid else "CAST(NULL AS VARCHAR)"
    name_sql = (ex.text(name).replace(name.ref, f"k{len(keys) - 1}") if name
                else "CAST(NULL AS VARCHAR)")
    rule = line_type_sql("pid", "pname", options.line_type_rules)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {LINE_TYPES} AS
        SELECT *, {rule} AS line_type
        FROM (SELECT *, {pid_sql} AS pid, {name_sql} AS pname
              FROM (SELECT DISTINCT {key_sql} FROM {raw}))
    """)


def _fences(con: duckdb.DuckDBPyConnection, k: float) -> tuple[float | None, float | None]:
    """Upper Tukey fences of log(1 + |x|) for quantity and price over kept product lines,
    back on the value scale (one scan for both)."""
    row = con.execute(f"""
        SELECT quantile_cont(ln(1 + abs(qty)), [0.25, 0.75]),
               quantile_cont(ln(1 + abs(price)), [0.25, 0.75])
        FROM {STAGE} WHERE reason IS NULL AND line_type = 'product'
    """).fetchone()

    def fence(q: list[float] | None) -> float | None:
        if not q or q[0] is None:
            return None
        iqr = max(q[1] - q[0], 0.5)  # a column of nearly one value would otherwise flag all
        return math.expm1(q[1] + k * iqr)

    return fence(row[0]), fence(row[1])


def _cancellation_test(con: duckdb.DuckDBPyConnection, raw: str,
                       order_col: ex.RawColumn | None) -> str:
    """SQL testing whether a row's order id marks a cancellation ("C" + an order number).

    Two export styles are recognised: ids that are otherwise numeric (Online Retail:
    ``C536379``), and "C" + the id of an order that exists in the same source
    (``CO00001234`` cancels ``O00001234``). A shop whose ids merely start with "C" (``CN...``)
    matches neither, so it is not read as returns.
    """
    if order_col is None:
        return "false"
    if order_col.is_text and not con.execute(
            f"SELECT count(*) FROM {raw} "
            f"WHERE regexp_matches({order_col.ref}, '^\\s*[CcＣｃ]')").fetchone()[0]:
        return "false"  # no id starts with C: nothing to analyse
    oid = ex.identifier(order_col)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ORDER_IDS} AS SELECT DISTINCT {oid} AS o FROM {raw}")
    ids = f"(SELECT o FROM {ORDER_IDS})"
    numeric, c_ids, c_known = con.execute(f"""
        SELECT count(*) FILTER (WHERE regexp_matches(o, '^\\d+$')) > 0.5 * count(o),
               count(*) FILTER (WHERE regexp_matches(o, '^[Cc]')),
               count(*) FILTER (WHERE regexp_matches(o, '^[Cc]') AND substr(o, 2) IN {ids})
        FROM {ORDER_IDS}
    """).fetchone()
    tests = []
    if numeric:
        tests.append("coalesce(regexp_matches(order_id_in, '^[Cc]\\d+$'), false)")
    if c_ids and c_known >= 0.5 * c_ids:
        # The few cancellation ids, so the per-row test probes a small table.
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {CANCELLATIONS} AS
            SELECT o FROM {ids} WHERE regexp_matches(o, '^[Cc]') AND substr(o, 2) IN {ids}
        """)
        tests.append(f"coalesce(order_id_in IN (SELECT o FROM {CANCELLATIONS}), false)")
    con.execute(f"DROP TABLE {ORDER_IDS}")
    return " OR ".join(tests) or "false"


def clean_transactions(
    con: duckdb.DuckDBPyConnection,
    *,
    raw: str,
    source_id: int,
    mapping: RoleMapping,
    columns: list[ex.RawColumn],
    options: CleanOptions,
) -> None:
    """Clean raw transaction lines of one source into ``transactions`` and ``rejected``.

    Every raw row ends up in exactly one of the two tables.
    """
    cols = {c.name: c for c in columns}
    order_col = cols[mapping.column("order_id")] if mapping.column("order_id") else None
    c_test = _cancellation_test(con, raw, order_col)
    has_qty = mapping.column("quantity") is not None
    qty0 = "coalesce(qty, 1)" if has_qty else "1.0"
    _build_line_types(con, raw, mapping, cols, options)
    dups = build_duplicates(con, raw, columns, options.keep_duplicates)
    stage_sql, detail = _stage_sql(raw, mapping, cols, options, dups > 0)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {STAGE} AS
        SELECT *,
            -- A return: a return flag, a cancellation invoice, or a negative quantity of a
            -- product (a negative discount or fee line is not a return).
            coalesce(return_flag, false) OR {c_test}
                OR ({qty0} < 0 AND line_type = 'product') AS is_return
        FROM ({stage_sql})
    """)
    q_fence, p_fence = _fences(con, options.outlier_fence)
    if not has_qty:
        q_fence = None
    now = options.now.strftime("%Y-%m-%d %H:%M:%S")

    # Signed values: returns carry negative quantity and amount whatever the export did.
    quantity = f"CASE WHEN is_return THEN -abs({qty0}) ELSE {qty0} END"
    raw_amount = f"coalesce(amount_in, {qty0} * price)"
    amount = f"CASE WHEN is_return THEN -abs({raw_amount}) ELSE {raw_amount} END"
    unit_price = f"coalesce(price, CASE WHEN {qty0} <> 0 THEN abs(amount_in / {qty0}) END)"
    order_id = ("coalesce(order_id_in, 'auto:' || coalesce(customer_id, 'anonymous') || '@' || "
                "strftime(ts, '%Y-%m-%dT%H:%M:%S'))")
    flag_items = [
        "CASE WHEN customer_id IS NULL THEN 'anonymous' END",
        f"CASE WHEN {c_test} THEN 'cancellation' WHEN is_return THEN 'return' END",
        "CASE WHEN line_type <> 'product' THEN 'non_product' END",
        "CASE WHEN price = 0 THEN 'zero_price' END",
        "CASE WHEN price < 0 THEN 'negative_price' END",
        f"CASE WHEN ts > TIMESTAMP '{now}' THEN 'future_date' END",
        "CASE WHEN order_id_in IS NULL THEN 'derived_order_id' END",
    ]
    if q_fence is not None:
        flag_items.append(f"CASE WHEN line_type = 'product' AND abs(qty) > {q_fence!r} "
                          "THEN 'outlier_quantity' END")
    if p_fence is not None:
        flag_items.append(f"CASE WHEN line_type = 'product' AND abs(price) > {p_fence!r} "
                          "THEN 'outlier_price' END")
    flags = "list_filter([" + ", ".join(flag_items) + "], lambda f: f IS NOT NULL)"
    drop_list = "[" + ", ".join(ex.lit(f) for f in options.drop_flags) + "]"
    # Returns are netted before anything is written (an UPDATE of the big table afterwards
    # would make the commit rewrite it). Purchases of earlier sources count too.
    purchases_kept = "reason IS NULL AND NOT is_return AND customer_id IS NOT NULL"
    if options.drop_flags:
        purchases_kept += f" AND len(list_intersect({flags}, {drop_list})) = 0"
    # Only purchases of (customer, product) pairs that have a return can match one: the
    # as-of join then sorts thousands of rows instead of millions.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {RETURN_MATCH} AS
        WITH r AS (
            SELECT _row, customer_id, coalesce(product_id, '') AS product_id, ts FROM {STAGE}
            WHERE reason IS NULL AND is_return AND customer_id IS NOT NULL
        ), pairs AS (SELECT DISTINCT customer_id, product_id FROM r),
        p AS (
            SELECT customer_id, coalesce(product_id, '') AS product_id, ts, {order_id} AS order_id
            FROM {STAGE} WHERE {purchases_kept}
            UNION ALL
            SELECT customer_id, coalesce(product_id, '') AS product_id, ts, order_id
            FROM transactions WHERE NOT is_return AND customer_id IS NOT NULL
        )
        SELECT r._row, m.order_id
        FROM r ASOF LEFT JOIN (SELECT p.* FROM p SEMI JOIN pairs
                               ON p.customer_id = pairs.customer_id
                              AND p.product_id = pairs.product_id) m
          ON r.customer_id = m.customer_id AND r.product_id = m.product_id AND r.ts >= m.ts
    """)
    all_flags = (f"{flags} || CASE WHEN is_return AND customer_id IS NOT NULL "
                 "AND m.order_id IS NULL THEN ['unmatched_return'] ELSE [] END")
    if options.drop_flags:
        dropped = f"(len(list_intersect(flags, {drop_list})) > 0)"
        drop_detail = f"array_to_string(list_intersect(s.flags, {drop_list}), ',')"
    else:
        dropped, drop_detail = "false", "NULL"
    # Only returns look up their match: the join probes thousands of rows, not millions.
    kept = (f"(SELECT *, CAST(NULL AS VARCHAR) AS return_of, {flags} AS flags FROM {STAGE} "
            f"WHERE reason IS NULL AND NOT is_return "
            f"UNION ALL BY NAME "
            f"SELECT k.*, m.order_id AS return_of, {all_flags} AS flags FROM {STAGE} k "
            f"LEFT JOIN {RETURN_MATCH} m ON k._row = m._row "
            f"WHERE k.reason IS NULL AND k.is_return)")

    con.execute(f"""
        INSERT INTO transactions
        SELECT {source_id}, _row, {order_id}, customer_id, ts, product_id, product_name,
               category, {quantity}, {unit_price}, {amount}, channel, region, is_return,
               line_type, return_of, flags
        FROM {kept} WHERE NOT {dropped}
    """)
    write_rejected(con, stage=STAGE, raw=raw, source_id=source_id, kind="transactions",
                   columns=columns, detail_sql=detail)
    if options.drop_flags:
        write_rejected(con, stage=kept, raw=raw, source_id=source_id, kind="transactions",
                       columns=columns, reason_sql="'dropped_by_rule'",
                       detail_sql=drop_detail, where=dropped.replace("flags", "s.flags"))
    for table in (STAGE, LINE_TYPES, DUPS, CANCELLATIONS, RETURN_MATCH):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def match_returns(con: duckdb.DuckDBPyConnection, source_id: int) -> None:
    """Keep the returns of the other sources netted after this source changed.

    A return is matched to the customer's latest earlier purchase of the same product when its
    own source is cleaned. Another source's return needs matching again when it found no
    purchase then (the purchase may have arrived now) or when the order it pointed to is gone
    (its source was replaced). Only those few rows are updated.
    """
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {RETURN_MATCH} AS
        SELECT source_id, source_row, customer_id, coalesce(product_id, '') AS product_id, ts
        FROM transactions t
        WHERE source_id <> {int(source_id)} AND is_return AND customer_id IS NOT NULL
          AND (list_contains(flags, 'unmatched_return')
               OR (return_of_order_id IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM transactions p
                   WHERE p.order_id = t.return_of_order_id AND NOT p.is_return)))
    """)
    if not con.execute(f"SELECT count(*) FROM {RETURN_MATCH}").fetchone()[0]:
        con.execute(f"DROP TABLE {RETURN_MATCH}")
        return
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _crm_rematch AS
        SELECT r.source_id, r.source_row, p.order_id
        FROM {RETURN_MATCH} r
        ASOF LEFT JOIN (SELECT customer_id, coalesce(product_id, '') AS product_id, ts, order_id
                        FROM transactions WHERE NOT is_return AND customer_id IS NOT NULL) p
          ON r.customer_id = p.customer_id AND r.product_id = p.product_id AND r.ts >= p.ts
    """)
    con.execute("""
        UPDATE transactions t SET
            return_of_order_id = m.order_id,
            flags = list_filter(t.flags, lambda f: f <> 'unmatched_return')
                    || CASE WHEN m.order_id IS NULL THEN ['unmatched_return'] ELSE [] END
        FROM _crm_rematch m
        WHERE t.source_id = m.source_id AND t.source_row = m.source_row
    """)
    con.execute(f"DROP TABLE {RETURN_MATCH}; DROP TABLE _crm_rematch")


ORDERS_VIEW = """
CREATE OR REPLACE VIEW orders AS
WITH purchases AS (
    SELECT order_id, any_value(customer_id) AS customer_id, min(ts) AS ts,
           count(*) AS lines, sum(quantity) AS items, sum(amount) AS gross_amount
    FROM transactions WHERE NOT is_return GROUP BY order_id
), returned AS (
    SELECT return_of_order_id AS order_id, sum(amount) AS returned_amount
    FROM transactions WHERE is_return AND return_of_order_id IS NOT NULL GROUP BY 1
)
SELECT p.*, coalesce(r.returned_amount, 0) AS returned_amount,
       p.gross_amount + coalesce(r.returned_amount, 0) AS net_amount
FROM purchases p LEFT JOIN returned r USING (order_id)
"""
