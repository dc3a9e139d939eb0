"""Purchase histories as sparse matrices, built in DuckDB: customers x items and orders x items.

Only merchandise lines count (``line_type = 'product'``; shipping, fees, vouchers ... are left
out as the clean step classified them). A customer "has" an item when at least one of their
non-return orders holds it and their net quantity of it over the window is positive (a bought
and fully returned product is not a preference). The matrices are scipy CSR, never dense.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from crmlens.errors import InputError

# Orders with more distinct products than this are left out of the co-occurrence counts (a
# wholesale order of 500 lines adds 125k pairs and says little about what goes together);
# they still count for the customer's history. The number left out is reported.
MAX_BASKET_SIZE = 100


@dataclass(frozen=True)
class Interactions:
    """Who bought what, as sparse matrices sharing one item coding.

    Attributes
    ----------
    customers : scipy.sparse.csr_matrix
        ``n_customers x n_items``, float32: the number of orders in which the customer bought
        the item (rows of identified customers only).
    orders : scipy.sparse.csr_matrix
        ``n_orders x n_items``, binary float32: order baskets (anonymous orders included),
        without the baskets larger than ``max_basket_size``.
    customer_ids, item_ids, item_names : numpy.ndarray
        Labels of the rows of ``customers`` and of the item codes.
    n_dropped_large : int
        Orders left out of ``orders`` for their size.
    """

    customers: sp.csr_matrix
    orders: sp.csr_matrix
    customer_ids: np.ndarray
    item_ids: np.ndarray
    item_names: np.ndarray
    n_dropped_large: int = 0

    @property
    def n_customers(self) -> int:
        return self.customers.shape[0]

    @property
    def n_items(self) -> int:
        return self.customers.shape[1]

    def item_codes(self, ids: Sequence[str]) -> np.ndarray:
        """Codes of the given item ids that exist here (unknown ids are ignored)."""
        index = pd.Index(self.item_ids)
        codes = index.get_indexer(list(ids))
        return codes[codes >= 0]


def _window(start: str | date | datetime | None, end: str | date | datetime | None
            ) -> tuple[str, list]:
    where, params = [], []
    if start is not None:
        where.append("ts >= CAST(? AS TIMESTAMP)")
        params.append(str(start))
    if end is not None:
        where.append("ts < CAST(? AS TIMESTAMP)")
        params.append(str(end))
    return "".join(f" AND {w}" for w in where), params


def load_interactions(con: duckdb.DuckDBPyConnection, *,
                      start: str | date | datetime | None = None,
                      end: str | date | datetime | None = None,
                      exclude: Sequence[str] | None = None,
                      include: Sequence[str] | None = None,
                      max_basket_size: int | None = MAX_BASKET_SIZE) -> Interactions:
    """Read the purchase histories of a time window from the workspace's ``transactions``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Workspace connection.
    start, end : str, date or datetime, optional
        Window ``[start, end)`` of the transaction timestamps (default: everything).
    exclude : sequence of str, optional
        Product ids left out of the catalogue.
    include : sequence of str, optional
        If given, only these product ids (a product line).
    max_basket_size : int or None, default 100
        Larger orders are left out of ``orders`` (counted in ``n_dropped_large``).

    Returns
    -------
    Interactions
    """
    if max_basket_size is not None and max_basket_size < 2:
        raise InputError("error.recommend_bad_option", option="max_basket_size",
                         value=str(max_basket_size))
    window, params = _window(start, end)
    filters = ""
    if exclude:
        filters += " AND product_id NOT IN (SELECT unnest(?::VARCHAR[]))"
        params.append([str(x) for x in exclude])
    if include is not None:
        filters += " AND product_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append([str(x) for x in include])
    base = f"""
        SELECT order_id, customer_id, product_id, product_name, quantity, is_return
        FROM transactions
        WHERE line_type = 'product' AND product_id IS NOT NULL{window}{filters}"""
    # One pass: per (order, product) the bought lines; per (customer, product) the net
    # quantity decides whether the customer keeps the item.
    rows = con.execute(f"""
        WITH lines AS ({base}),
        bought AS (
            SELECT order_id, any_value(customer_id) AS customer_id, product_id
            FROM lines WHERE NOT is_return AND quantity > 0
            GROUP BY order_id, product_id),
        kept AS (
            SELECT customer_id, product_id FROM lines WHERE customer_id IS NOT NULL
            GROUP BY customer_id, product_id HAVING sum(quantity) > 0)
        SELECT b.order_id, b.customer_id, b.product_id,
               (k.customer_id IS NOT NULL) AS kept
        FROM bought b LEFT JOIN kept k
          ON b.customer_id = k.customer_id AND b.product_id = k.product_id
        ORDER BY b.product_id""", params).df()
    names = dict(con.execute(f"""
        SELECT product_id, mode(product_name) FROM ({base}) GROUP BY product_id""",
                             params).fetchall())
    item_codes, item_ids = pd.factorize(rows["product_id"], sort=True)
    n_items = len(item_ids)
    item_names = np.array([names.get(i) or "" for i in item_ids], dtype=object)
    order_codes, _ = pd.factorize(rows["order_id"])
    orders = sp.csr_matrix((np.ones(len(rows), np.float32), (order_codes, item_codes)),
                           shape=(int(order_codes.max()) + 1 if len(rows) else 0, n_items))
    orders.sum_duplicates()
    orders.data[:] = 1.0
    n_dropped = 0
    if max_basket_size is not None and orders.shape[0]:
        sizes = np.diff(orders.indptr)
        large = sizes > max_basket_size
        n_dropped = int(large.sum())
        if n_dropped:
            orders = orders[~large]
    known = rows["kept"].to_numpy(bool)
    cust_codes, customer_ids = pd.factorize(rows.loc[known, "customer_id"], sort=True)
    customers = sp.csr_matrix(
        (np.ones(len(cust_codes), np.float32), (cust_codes, item_codes[known])),
        shape=(len(customer_ids), n_items))
    customers.sum_duplicates()  # order counts per customer and item
    return Interactions(customers=customers, orders=orders.tocsr(),
                        customer_ids=np.asarray(customer_ids, dtype=object),
                        item_ids=np.asarray(item_ids, dtype=object), item_names=item_names,
                        n_dropped_large=n_dropped)
