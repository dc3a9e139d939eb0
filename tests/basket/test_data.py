"""Baskets from the workspace: merchandise only, returns netted, filters, size cap, errors."""

from __future__ import annotations

import numpy as np
import pytest

from crmlens import Workspace
from crmlens.basket import baskets_from_lists, load_baskets
from crmlens.errors import InputError
from tests.conftest import ONLINE_RETAIL, write_csv

ORDERS = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    # order 1001: apple bought and returned inside the order, pear returned later (C1002)
    "1001,P1,Apple,2,2020-01-01 10:00:00,1.0,C1,UK\n"
    "1001,P1,Apple,-2,2020-01-01 10:05:00,1.0,C1,UK\n"
    "1001,P2,Pear,1,2020-01-01 10:00:00,1.0,C1,UK\n"
    "1001,P3,Plum,3,2020-01-01 10:00:00,1.0,C1,UK\n"
    "1001,P4,Fig,1,2020-01-01 10:00:00,1.0,C1,UK\n"
    "C1002,P2,Pear,-1,2020-01-02 10:00:00,1.0,C1,UK\n"
    # order 1003: anonymous, with a postage line that is not merchandise
    "1003,POST,POSTAGE,1,2020-01-03 10:00:00,5.0,,UK\n"
    "1003,P3,Plum,1,2020-01-03 10:00:00,1.0,,UK\n"
    "1003,P5,Kiwi,1,2020-01-03 10:00:00,1.0,,UK\n"
    # order 1004: another customer, later in time
    "1004,P3,Plum,1,2020-02-01 10:00:00,1.0,C2,UK\n"
    "1004,P4,Fig,2,2020-02-01 10:00:00,1.0,C2,UK\n"
    "1005,P5,Kiwi,1,2020-02-02 10:00:00,1.0,C1,UK\n"
)


@pytest.fixture(scope="module")
def small_ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("basketdata")
    ws = Workspace(base / "ws")
    ws.ingest("transactions", write_csv(base / "orders.csv", ORDERS))
    return ws


def _as_sets(b):
    return {b.basket_ids[i]: set(b.basket(i)) for i in range(b.n_baskets)}


def test_orders_net_returns_and_skip_non_merchandise(small_ws):
    with small_ws.reader() as con:
        b = load_baskets(con)
    assert _as_sets(b) == {"1001": {"P3", "P4"}, "1003": {"P3", "P5"}, "1004": {"P3", "P4"},
                           "1005": {"P5"}}
    assert list(b.item_ids) == ["P3", "P4", "P5"]
    assert list(b.item_names) == ["Plum", "Fig", "Kiwi"]
    assert b.indptr.dtype == np.int64 and b.indices.dtype == np.int32
    assert b.n_baskets == 4 and b.n_items == 3 and b.n_dropped_large == 0


def test_customer_baskets_leave_out_anonymous_orders(small_ws):
    with small_ws.reader() as con:
        b = load_baskets(con, basket="customer")
    assert _as_sets(b) == {"C1": {"P3", "P4", "P5"}, "C2": {"P3", "P4"}}


def test_filters(small_ws):
    with small_ws.reader() as con:
        dated = load_baskets(con, start="2020-01-02", end="2020-02-02")
        only = load_baskets(con, include=["P3", "P5"])
        without = load_baskets(con, exclude=["P3"])
        listed = load_baskets(con, customers=["C2"])
        con.execute("CREATE TEMP TABLE seg AS SELECT 'C1' AS customer_id")
        table = load_baskets(con, customers="seg")
    assert _as_sets(dated) == {"1003": {"P3", "P5"}, "1004": {"P3", "P4"}}
    assert _as_sets(only) == {"1001": {"P3"}, "1003": {"P3", "P5"}, "1004": {"P3"},
                              "1005": {"P5"}}
    assert _as_sets(without) == {"1001": {"P4"}, "1003": {"P5"}, "1004": {"P4"},
                                 "1005": {"P5"}}
    assert _as_sets(listed) == {"1004": {"P3", "P4"}}
    assert _as_sets(table) == {"1001": {"P3", "P4"}, "1005": {"P5"}}


def test_large_baskets_are_dropped_and_counted(small_ws):
    with small_ws.reader() as con:
        b = load_baskets(con, max_basket_size=1)
    assert _as_sets(b) == {"1005": {"P5"}}
    assert b.n_dropped_large == 3


@pytest.mark.parametrize("kwargs, key", [
    ({"basket": "session"}, "error.basket.bad_basket_kind"),
    ({"item": "brand"}, "error.basket.bad_item_kind"),
    ({"max_basket_size": 0}, "error.basket.bad_max_basket_size"),
    ({"include": ["nothing"]}, "error.basket.empty"),
    ({"start": "2030-01-01"}, "error.basket.empty"),
])
def test_bad_input_is_an_input_error(small_ws, kwargs, key):
    with small_ws.reader() as con, pytest.raises(InputError) as err:
        load_baskets(con, **kwargs)
    assert err.value.key == key
    assert "{" not in err.value.message("zh")


def test_baskets_from_lists():
    b = baskets_from_lists([["b", "a", "a"], ["c"], ["a", "b", "c", "d"]], max_basket_size=3)
    assert b.n_baskets == 2 and b.n_dropped_large == 1
    assert list(b.item_ids) == ["a", "b", "c"]
    assert b.basket(0) == ["a", "b"] and b.basket(1) == ["c"]


def test_online_retail_baskets(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", ONLINE_RETAIL)
    with ws.reader() as con:
        b = load_baskets(con)
        (expected,) = con.execute("""
            SELECT count(*) FROM (
                SELECT coalesce(return_of_order_id, order_id), product_id FROM transactions
                WHERE line_type = 'product' AND product_id IS NOT NULL
                GROUP BY ALL HAVING sum(quantity) > 0)""").fetchone()
    assert len(b.indices) == expected
    assert 19_000 < b.n_baskets < 22_000 and 3_500 < b.n_items < 4_200
    # sorted, unique item codes inside every basket
    rows = np.repeat(np.arange(b.n_baskets), b.sizes)
    same_row = rows[1:] == rows[:-1]
    assert (np.diff(b.indices)[same_row] > 0).all()
    assert b.sizes.min() >= 1
