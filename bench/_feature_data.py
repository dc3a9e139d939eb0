"""Synthetic clean transactions as Parquet for bench/segment.py (columns of the workspace table).

``crmlens.datasets.generator.generate_dataset`` draws the purchases (customers, orders, lines,
categories, channels); one DuckDB statement then turns its export into the clean
``transactions`` schema and plants what real data has and the features must handle: 3 % of
orders anonymous, 2 % of product lines returned a week later (``C``-prefixed order, negative
quantity and amount), 5 % of orders with a postage line.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb


def make_transactions(out_dir: Path, n_rows: int, *, seed: int = 0) -> tuple[Path, float, int]:
    """Write ``transactions.parquet`` of about ``n_rows`` rows; (path, seconds, rows)."""
    from crmlens.datasets.generator import generate_dataset

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "transactions.parquet"
    t0 = time.perf_counter()
    # Postage lines add about 2 % rows on top of the generator's lines.
    raw = generate_dataset(out_dir / "raw", n_transactions=int(n_rows / 1.02), seed=seed)
    con = duckdb.connect(config={"memory_limit": "3GB"})
    con.execute(f"""COPY (
        WITH lines AS (
            SELECT *, hash(order_id, product_id, {seed}) % 100 < 2 AS ret,
                   hash(order_id, {seed}) % 100 < 3 AS anon
            FROM read_parquet('{raw.transactions}')
        ), product AS (
            SELECT CASE WHEN ret THEN 'C' || order_id ELSE order_id END AS order_id,
                   CASE WHEN anon THEN NULL ELSE customer_id END AS customer_id,
                   order_date + CASE WHEN ret THEN INTERVAL 7 DAY ELSE INTERVAL 0 DAY END AS ts,
                   product_id, product_name, category,
                   CAST(CASE WHEN ret THEN -quantity ELSE quantity END AS DOUBLE) AS quantity,
                   unit_price,
                   round((CASE WHEN ret THEN -quantity ELSE quantity END) * unit_price, 2)
                       AS amount,
                   channel, region, ret AS is_return, 'product' AS line_type,
                   CASE WHEN ret THEN order_id END AS return_of_order_id
            FROM lines
        ), postage AS (
            SELECT order_id, any_value(customer_id) AS customer_id, min(order_date) AS ts,
                   'POST' AS product_id, 'POSTAGE' AS product_name, NULL AS category,
                   1.0 AS quantity, 4.95 AS unit_price, 4.95 AS amount,
                   any_value(channel) AS channel, any_value(region) AS region, false AS is_return,
                   'shipping' AS line_type, NULL AS return_of_order_id
            FROM lines WHERE hash(order_id, {seed}, 1) % 100 < 5 AND NOT anon
            GROUP BY order_id
        )
        SELECT 1 AS source_id, row_number() OVER () AS source_row, *,
               CAST([] AS VARCHAR[]) AS flags
        FROM (SELECT * FROM product UNION ALL SELECT * FROM postage)
    ) TO '{target}' (FORMAT parquet, ROW_GROUP_SIZE 122880)""")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0]
    con.close()
    for p in (out_dir / "raw").iterdir():
        p.unlink()
    (out_dir / "raw").rmdir()
    return target, time.perf_counter() - t0, int(rows)
