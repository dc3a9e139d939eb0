"""Baskets: the sparse (CSR) input of the frequent-itemset miners.

A basket is an order (or all purchases of a customer), an item a product (or a category). The
heavy work — filtering merchandise lines, netting returns, dropping oversized baskets, coding
items densely — runs as SQL inside DuckDB; Python receives two flat integer arrays (CSR) and
the labels. Nothing here ever builds a dense baskets x items matrix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np

from crmlens.errors import InputError

log = logging.getLogger(__name__)

BASKET_KEYS = {"order": "coalesce(return_of_order_id, order_id)", "customer": "customer_id"}
ITEM_KEYS = {"product": "product_id", "category": "category"}


@dataclass(frozen=True)
class Baskets:
    """Baskets in compressed sparse row form.

    Attributes
    ----------
    indptr : numpy.ndarray
        int64 row pointer, length ``n_baskets + 1``.
    indices : numpy.ndarray
        int32 item codes; sorted and unique within each basket.
    basket_ids : numpy.ndarray
        Label of each basket (order id or customer id).
    item_ids : numpy.ndarray
        Label of each item code ``0 .. n_items - 1`` (product id or category).
    item_names : numpy.ndarray
        Display name of each item code (``''`` when unknown).
    n_dropped_large : int
        Baskets dropped because they held more than ``max_basket_size`` items.
    """

    indptr: np.ndarray
    indices: np.ndarray
    basket_ids: np.ndarray
    item_ids: np.ndarray
    item_names: np.ndarray
    n_dropped_large: int = 0

    @property
    def n_baskets(self) -> int:
        """Number of baskets."""
        return len(self.indptr) - 1

    @property
    def n_items(self) -> int:
        """Number of distinct items (item codes run from 0 to ``n_items - 1``)."""
        return len(self.item_ids)

    @property
    def sizes(self) -> np.ndarray:
        """Number of items in each basket."""
        return np.diff(self.indptr)

    def basket(self, i: int) -> list[str]:
        """Item ids of basket ``i`` (for display and tests)."""
        return [self.item_ids[c] for c in self.indices[self.indptr[i]:self.indptr[i + 1]]]


def baskets_from_lists(
    transactions: Iterable[Iterable[object]],
    *,
    item_names: dict[object, str] | None = None,
    max_basket_size: int | None = None,
) -> Baskets:
    """Build :class:`Baskets` from an in-memory list of baskets (lists of item labels).

    Parameters
    ----------
    transactions : iterable of iterables
        One basket per element; duplicate items inside a basket count once.
    item_names : dict, optional
        Display name per item label (default: the label itself).
    max_basket_size : int, optional
        Drop baskets with more distinct items than this (counted in ``n_dropped_large``).

    Returns
    -------
    Baskets
        Item codes follow the sorted order of the item labels (as strings).
    """
    rows = [sorted({str(x) for x in basket}) for basket in transactions]
    dropped = 0
    if max_basket_size is not None:
        _check_max_basket_size(max_basket_size)
        kept = [r for r in rows if len(r) <= max_basket_size]
        dropped = len(rows) - len(kept)
        rows = kept
    labels = sorted({x for r in rows for x in r})
    code = {x: i for i, x in enumerate(labels)}
    sizes = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(sizes, out=indptr[1:])
    indices = np.fromiter((code[x] for r in rows for x in r), dtype=np.int32,
                          count=int(indptr[-1]))
    names = item_names or {}
    return Baskets(
        indptr=indptr, indices=indices,
        basket_ids=np.array([str(i) for i in range(len(rows))], dtype=object),
        item_ids=np.array(labels, dtype=object),
        item_names=np.array([str(names.get(x, x)) for x in labels], dtype=object),
        n_dropped_large=dropped,
    )


def load_baskets(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str = "transactions",
    basket: str = "order",
    item: str = "product",
    start: date | datetime | str | None = None,
    end: date | datetime | str | None = None,
    customers: str | Sequence[str] | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    max_basket_size: int | None = None,
) -> Baskets:
    """Read baskets from the workspace's clean transactions.

    Only merchandise lines (``line_type = 'product'``) count, from identified and anonymous
    orders alike (``basket="customer"`` needs a customer id). An item is in a basket when its
    net quantity there is positive, so a return cancels the purchase it refers to (returns
    carry ``return_of_order_id`` when the data links them to their order).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to the workspace store.
    source : str, default "transactions"
        Table or view with the columns of the clean ``transactions`` table.
    basket : {"order", "customer"}, default "order"
        What a basket is: one order, or everything one customer bought.
    item : {"product", "category"}, default "product"
        What an item is.
    start, end : date, datetime or ISO string, optional
        Keep lines with ``start <= ts < end``.
    customers : str or list of str, optional
        Restrict to these customers: a list of customer ids, or the name of a table or view
        with a ``customer_id`` column (for example one segment).
    include, exclude : list of str, optional
        Keep only these item ids / drop these item ids (applied before basket sizes).
    max_basket_size : int, optional
        Drop baskets with more distinct items than this; their number is reported in
        ``n_dropped_large`` (never silently). Very large baskets make every miner's run time
        grow with the square of their size, so this is the cap for pathological data.

    Returns
    -------
    Baskets
        Item codes are dense ranks of the kept item ids (sorted), baskets sorted by id.

    Raises
    ------
    InputError
        For an unknown basket or item kind, a bad ``max_basket_size``, or when no basket is
        left after filtering.
    """
    if basket not in BASKET_KEYS:
        raise InputError("error.basket.bad_basket_kind", value=basket,
                         allowed=", ".join(BASKET_KEYS))
    if item not in ITEM_KEYS:
        raise InputError("error.basket.bad_item_kind", value=item, allowed=", ".join(ITEM_KEYS))
    if max_basket_size is not None:
        _check_max_basket_size(max_basket_size)
    b_key = BASKET_KEYS[basket] if basket == "customer" else BASKET_KEYS["order"]
    i_key = ITEM_KEYS[item]
    where = ["line_type = 'product'", f"{i_key} IS NOT NULL", f"{b_key} IS NOT NULL"]
    params: list[object] = []
    if start is not None:
        where.append("ts >= CAST(? AS TIMESTAMP)")
        params.append(str(start))
    if end is not None:
        where.append("ts < CAST(? AS TIMESTAMP)")
        params.append(str(end))
    if customers is not None:
        if isinstance(customers, str):
            where.append(f"customer_id IN (SELECT CAST(customer_id AS VARCHAR) FROM "
                         f"{_quote_name(customers)})")
        else:
            where.append("list_contains(CAST(? AS VARCHAR[]), customer_id)")
            params.append([str(c) for c in customers])
    if include is not None:
        where.append(f"list_contains(CAST(? AS VARCHAR[]), {i_key})")
        params.append([str(x) for x in include])
    if exclude is not None:
        where.append(f"NOT list_contains(CAST(? AS VARCHAR[]), {i_key})")
        params.append([str(x) for x in exclude])
    size_cap = "" if max_basket_size is None else f"WHERE n <= {int(max_basket_size)}"
    name_col = "product_name" if item == "product" else "category"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _basket_pairs AS
        WITH lines AS (
            SELECT CAST({b_key} AS VARCHAR) AS b, CAST({i_key} AS VARCHAR) AS i,
                   quantity, {name_col} AS name
            FROM {_quote_name(source)}
            WHERE {' AND '.join(where)}
        ),
        net AS (
            SELECT b, i FROM lines GROUP BY b, i HAVING sum(quantity) > 0
        ),
        sized AS (
            SELECT b, i, count(*) OVER (PARTITION BY b) AS n FROM net
        )
        SELECT b, i, n FROM sized
    """, params)
    try:
        n_dropped = 0
        if max_basket_size is not None:
            n_dropped = con.execute(
                f"SELECT count(DISTINCT b) FROM _basket_pairs WHERE n > {int(max_basket_size)}"
            ).fetchone()[0]
        # Dense codes: items and baskets numbered in sorted id order over what is kept.
        arrays = con.execute(f"""
            SELECT dense_rank() OVER (ORDER BY b) - 1 AS bc,
                   CAST(dense_rank() OVER (ORDER BY i) - 1 AS INTEGER) AS ic
            FROM _basket_pairs {size_cap}
            ORDER BY bc, ic
        """).fetchnumpy()
        basket_ids = con.execute(
            f"SELECT DISTINCT b FROM _basket_pairs {size_cap} ORDER BY b").fetchnumpy()["b"]
        items = con.execute(f"""
            WITH kept AS (SELECT DISTINCT i FROM _basket_pairs {size_cap}),
            named AS (
                SELECT CAST({i_key} AS VARCHAR) AS i, {name_col} AS name, count(*) AS c
                FROM {_quote_name(source)}
                WHERE line_type = 'product' AND {name_col} IS NOT NULL
                  AND CAST({i_key} AS VARCHAR) IN (SELECT i FROM kept)
                GROUP BY 1, 2
            ),
            best AS (SELECT i, name FROM
                     (SELECT i, name, row_number() OVER
                         (PARTITION BY i ORDER BY c DESC, name) AS r FROM named)
                     WHERE r = 1)
            SELECT kept.i, coalesce(best.name, '') AS name
            FROM kept LEFT JOIN best USING (i) ORDER BY kept.i
        """).fetchnumpy()
    finally:
        con.execute("DROP TABLE IF EXISTS _basket_pairs")
    if len(basket_ids) == 0:
        raise InputError("error.basket.empty")
    bc = np.asarray(arrays["bc"], dtype=np.int64)
    indptr = np.zeros(len(basket_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(bc, minlength=len(basket_ids)), out=indptr[1:])
    if n_dropped:
        log.info("dropped %d baskets with more than %d items", n_dropped, max_basket_size)
    return Baskets(
        indptr=indptr,
        indices=np.asarray(arrays["ic"], dtype=np.int32),
        basket_ids=np.asarray(basket_ids, dtype=object),
        item_ids=np.asarray(items["i"], dtype=object),
        item_names=np.asarray(items["name"], dtype=object),
        n_dropped_large=int(n_dropped),
    )


def _check_max_basket_size(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError("error.basket.bad_max_basket_size", value=value)


def _quote_name(name: str) -> str:
    """Quote a (possibly schema-qualified) table name as SQL identifiers."""
    parts = name.split(".")
    if not name or any(not p for p in parts):
        raise InputError("error.basket.bad_table_name", name=name)
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)
