"""The plan of _sql.py gives exactly the features of the plan before it (_plan_before.py).

The data: generated purchases with what real data has planted in them (returns a week later,
anonymous orders, postage lines, lines without category, channel or product id, times of day),
so every column and every branch of the plan (one bit-set pass, hash parts, the
count(DISTINCT) fallback) is compared, column by column, with the earlier plan.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from crmlens.datasets.generator import generate_dataset
from crmlens.features import _compute, _sql, compute_features
from crmlens.workspace.schema import DDL

from . import _plan_before as before

AS_OF = "2024-10-01"


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("plan")
    raw = generate_dataset(base / "raw", n_customers=300, seed=11).transactions
    path = base / "tx.parquet"
    duckdb.execute(f"""COPY (
        WITH l AS (
            SELECT *, hash(order_id, product_id) % 100 < 4 AS ret, hash(order_id) % 100 < 3 AS anon
            FROM read_parquet('{raw}')
        ), product AS (
            SELECT CASE WHEN ret THEN 'C' || order_id ELSE order_id END AS order_id,
                   CASE WHEN anon THEN NULL ELSE customer_id END AS customer_id,
                   order_date + INTERVAL (hash(order_id) % 24) HOUR
                       + CASE WHEN ret THEN INTERVAL 7 DAY ELSE INTERVAL 0 DAY END AS ts,
                   CASE WHEN hash(product_id, 1) % 100 < 2 THEN NULL ELSE product_id END
                       AS product_id,
                   CASE WHEN hash(product_id, 2) % 100 < 3 THEN NULL ELSE category END
                       AS category,
                   CAST(CASE WHEN ret THEN -quantity ELSE quantity END AS DOUBLE) AS quantity,
                   round((CASE WHEN ret THEN -quantity ELSE quantity END) * unit_price, 2)
                       AS amount,
                   CASE WHEN hash(order_id, 3) % 100 < 2 THEN NULL ELSE channel END AS channel,
                   ret AS is_return, 'product' AS line_type
            FROM l
        ), postage AS (
            SELECT order_id, any_value(customer_id) AS customer_id, min(order_date) AS ts,
                   'POST' AS product_id, NULL AS category, 1.0 AS quantity, 4.95 AS amount,
                   any_value(channel) AS channel, false AS is_return, 'shipping' AS line_type
            FROM l WHERE hash(order_id, 4) % 100 < 10 AND NOT anon
            GROUP BY order_id
        )
        SELECT * FROM product UNION ALL SELECT * FROM postage
    ) TO '{path}' (FORMAT parquet)""")
    return str(path)


def _before(con: duckdb.DuckDBPyConnection, source: str | None) -> pd.DataFrame:
    """The features as the earlier plan computed them (same flow as its compute_features)."""
    plan = _compute._plan(con, as_of=AS_OF, source=source, customers=None, events=None)
    chan = con.execute(before.discovery_sql("channel", from_stage=False, source=plan.source,
                                            as_of=plan.as_of)).fetchall()
    for statement in before.stage_sql(plan.source, plan.as_of, _compute._shares(chan, [], False)):
        con.execute(statement)
    cat = con.execute(before.discovery_sql("category", from_stage=True)).fetchall()
    null_cat = con.execute(before.null_category_sql(from_stage=True)).fetchall() != []
    shares = _compute._shares(chan, cat, null_cat)
    con.execute(before.final_sql("_before", plan.as_of, shares, plan.side))
    con.execute(before.cleanup_sql())
    return con.table("_before").df().set_index("customer_id").sort_index()


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert list(got.index) == list(want.index)
    for col in want.columns:
        if pd.api.types.is_float_dtype(want[col]):
            # Sums in another order: equal up to rounding.
            np.testing.assert_allclose(got[col], want[col], rtol=1e-12, atol=1e-9, err_msg=col)
        else:
            assert got[col].equals(want[col]), col


@pytest.fixture(scope="module")
def reference(lines) -> pd.DataFrame:
    want = _before(duckdb.connect(), lines)
    # The data exercises what it should: an "other" category, an unknown channel, returns.
    assert "share_category_other" in want.columns and "share_channel_unknown" in want.columns
    assert (want.returned_spend > 0).any() and (want.non_product_spend > 0).any()
    assert len(want) > 250
    return want


@pytest.mark.parametrize("budget, max_parts, parts", [
    (_sql.BITSET_BUDGET_BYTES, _sql.MAX_PARTS, 1),
    (20_000, 8, 3),  # bit sets split over hash parts of the customers
    (1_000, 4, 0),  # too many parts: count(DISTINCT)
])
def test_same_features_as_before(lines, reference, monkeypatch, budget, max_parts, parts):
    monkeypatch.setattr(_sql, "BITSET_BUDGET_BYTES", budget)
    monkeypatch.setattr(_sql, "MAX_PARTS", max_parts)
    con = duckdb.connect()
    n_products, n_categories = con.execute(
        f"SELECT count(DISTINCT product_id), count(DISTINCT category) FROM '{lines}' "
        f"WHERE customer_id IS NOT NULL AND ts < DATE '{AS_OF}' AND NOT is_return "
        "AND line_type = 'product' AND quantity > 0").fetchall()[0]
    n_customers = con.execute(f"SELECT count(DISTINCT customer_id) FROM '{lines}' "
                              f"WHERE ts < DATE '{AS_OF}'").fetchall()[0][0]
    assert _sql.distinct_parts(n_products, n_categories, n_customers) == parts
    res = compute_features(con, as_of=AS_OF, source=lines)
    _assert_same(con.table(res.table).df().set_index("customer_id").sort_index(), reference)


def test_workspace_tables_same_as_before():
    """With the workspace tables (customers and events joined too)."""
    from .conftest import add_side_tables, insert_rows

    con = duckdb.connect()
    for ddl in DDL.values():
        con.execute(ddl)
    insert_rows(con)
    add_side_tables(con)
    want = _before(con, None)
    res = compute_features(con, as_of=AS_OF)
    _assert_same(con.table(res.table).df().set_index("customer_id").sort_index(), want)


@pytest.mark.parametrize("update", [
    "UPDATE transactions SET product_id = 'P1'",  # one product id: bit sets of one bit
    "UPDATE transactions SET product_id = NULL, category = NULL",  # no ids at all
    "UPDATE transactions SET channel = NULL",  # only the unknown channel
])
def test_degenerate_ids_same_as_before(update):
    from .conftest import insert_rows

    con = duckdb.connect()
    for ddl in DDL.values():
        con.execute(ddl)
    insert_rows(con)
    con.execute(update)
    want = _before(con, None)
    res = compute_features(con, as_of=AS_OF)
    _assert_same(con.table(res.table).df().set_index("customer_id").sort_index(), want)
