"""A small hand-made workspace, shared by the report tests and the data-quality tests.

Four sources, every figure countable by hand:

1. ``orders_2023.csv`` (transactions, English products): 20 rows read = 14 loaded + 6
   rejected (2 duplicate_row, 1 bad_timestamp, 1 bad_quantity, 1 blank_row, 1 malformed_line);
   flags anonymous 3, non_product 3, cancellation 1, return 1, unmatched_return 1,
   zero_price 1, negative_price 1, outlier_quantity 1, future_date 1.
2. ``门店订单.xlsx`` (transactions, Chinese products, no region, a channel): 8 read = 6 loaded
   + 2 rejected (missing_amount, dropped_by_rule); flags anonymous 1, derived_order_id 1,
   non_product 1.
3. ``crm_customers.csv`` (customers): 7 read = 5 loaded + 2 rejected (duplicate_customer,
   missing_customer_id); flags invalid_email, invalid_phone, implausible_age (1 each);
   ``income`` is mapped but always empty.
4. ``reviews.json`` (events): 4 read = 3 loaded + 1 rejected (bad_timestamp).

Transactions overall: net revenue 2,488; 6 customers (C1–C6); 13 orders; returns 15 of gross
sales 2,506; dates 2023-01-05 … 2023-04-20. By month (net / active / new customers):
2023-01 38 / 2 / 2, 2023-02 2,231 / 3 / 2, 2023-03 215 / 3 / 1, 2023-04 4 / 1 / 1.
Products by net revenue: P2 2,012, G2 256, G1 156, P3 30, P1 25. Regions: Germany 1,990,
UK 57, France 22.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from crmlens.workspace.schema import DDL

INGESTED = datetime(2023, 4, 1, 12, 0)

TXN_COLUMNS_1 = ["Invoice", "SKU", "Description", "Qty", "Date", "Price", "Customer", "Country"]
TXN_COLUMNS_2 = ["订单号", "商品编码", "商品名称", "数量", "金额", "下单时间", "会员编号", "渠道"]

SOURCES = [
    # id, kind, name, location, format, options, mapping, columns, read, loaded, rejected
    (1, "transactions", "orders_2023.csv", "data/orders_2023.csv", "csv",
     {"encoding": "utf-8", "delimiter": ";", "dayfirst": True},
     {"order_id": "Invoice", "product_id": "SKU", "product_name": "Description",
      "quantity": "Qty", "timestamp": "Date", "unit_price": "Price", "customer_id": "Customer",
      "region": "Country"},
     TXN_COLUMNS_1, 20, 14, 6),
    (2, "transactions", "门店订单.xlsx", "data/门店订单.xlsx", "xlsx", {"sheet": "订单"},
     {"order_id": "订单号", "product_id": "商品编码", "product_name": "商品名称",
      "quantity": "数量", "amount": "金额", "timestamp": "下单时间", "customer_id": "会员编号",
      "channel": "渠道"},
     TXN_COLUMNS_2, 8, 6, 2),
    (3, "customers", "crm_customers.csv", "data/crm_customers.csv", "csv", {"encoding": "gbk"},
     {"customer_id": "id", "name": "name", "email": "email", "phone": "phone",
      "gender": "gender", "age": "age", "income": "income", "region": "city"},
     ["id", "name", "email", "phone", "gender", "age", "income", "city"], 7, 5, 2),
    (4, "events", "reviews.json", "data/reviews.json", "json", {},
     {"customer_id": "user", "timestamp": "time", "event_type": "type", "value": "score",
      "text": "comment"},
     ["user", "time", "type", "score", "comment"], 4, 3, 1),
]


def _t(day: str) -> datetime:
    return datetime.fromisoformat(day)


# source_id, source_row, order_id, customer_id, ts, product_id, product_name, quantity,
# unit_price, amount, channel, region, is_return, line_type, return_of_order_id, flags
TRANSACTIONS = [
    (1, 2, "O1", "C1", _t("2023-01-05 10:00"), "P1", "WHITE MUG", 4, 2.5, 10.0, None, "UK",
     False, "product", None, []),
    (1, 3, "O1", "C1", _t("2023-01-05 10:00"), "P2", "RED LANTERN", 2, 4.0, 8.0, None, "UK",
     False, "product", None, []),
    (1, 4, "O1", "C1", _t("2023-01-05 10:00"), "POST", "POSTAGE", 1, 5.0, 5.0, None, "UK",
     False, "shipping", None, ["non_product"]),
    (1, 5, "O2", "C2", _t("2023-01-20 15:30"), "P3", "BLUE VASE", 1, 10.0, 10.0, None, "France",
     False, "product", None, []),
    (1, 6, "O3", None, _t("2023-01-25 09:00"), "P1", "WHITE MUG", 2, 2.5, 5.0, None, "UK",
     False, "product", None, ["anonymous"]),
    (1, 7, "O3", None, _t("2023-01-25 09:00"), "P2", "RED LANTERN", 1, 0.0, 0.0, None, "UK",
     False, "product", None, ["anonymous", "zero_price"]),
    (1, 8, "CO1", "C1", _t("2023-02-02 11:00"), "P1", "WHITE MUG", -2, 2.5, -5.0, None, "UK",
     True, "product", "O1", ["cancellation"]),
    (1, 9, "O4", "C1", _t("2023-02-10 12:00"), "P3", "BLUE VASE", 3, 10.0, 30.0, None, "UK",
     False, "product", None, []),
    (1, 10, "O5", "C3", _t("2023-02-14 08:00"), "P2", "RED LANTERN", 500, 4.0, 2000.0, None,
     "Germany", False, "product", None, ["outlier_quantity"]),
    (1, 11, "O6", "C2", _t("2023-03-03 13:00"), "P1", "WHITE MUG", 6, 2.5, 15.0, None, "France",
     False, "product", None, []),
    (1, 12, "O6", "C2", _t("2023-03-03 13:00"), "M", "Manual", 1, -3.0, -3.0, None, "France",
     False, "manual", None, ["non_product", "negative_price"]),
    (1, 13, "R9", "C3", _t("2023-03-10 10:00"), "P3", "BLUE VASE", -1, 10.0, -10.0, None,
     "Germany", True, "product", None, ["return", "unmatched_return"]),
    (1, 14, "O7", None, _t("2023-03-15 16:00"), "POST", "POSTAGE", 1, 5.0, 5.0, None, None,
     False, "shipping", None, ["anonymous", "non_product"]),
    (1, 15, "O8", "C4", _t("2023-04-20 09:00"), "P2", "RED LANTERN", 1, 4.0, 4.0, None, "UK",
     False, "product", None, ["future_date"]),
    (2, 2, "S1", "C5", _t("2023-02-05 10:00"), "G1", "保温杯", 2, None, 78.0, "门店", None,
     False, "product", None, []),
    (2, 3, "S1", "C5", _t("2023-02-05 10:00"), "G2", "茶叶礼盒", 1, None, 128.0, "门店", None,
     False, "product", None, []),
    (2, 4, "S2", "C6", _t("2023-03-08 19:00"), "G1", "保温杯", 1, None, 39.0, "线上", None,
     False, "product", None, []),
    (2, 5, "C5-20230320T1800", "C5", _t("2023-03-20 18:00"), "G2", "茶叶礼盒", 1, None, 128.0,
     "线上", None, False, "product", None, ["derived_order_id"]),
    (2, 6, "S3", None, _t("2023-03-21 12:00"), "G1", "保温杯", 1, None, 39.0, "门店", None,
     False, "product", None, ["anonymous"]),
    (2, 7, "S4", "C6", _t("2023-03-25 09:00"), "FEE", "手续费", 1, None, 2.0, "线上", None,
     False, "fee", None, ["non_product"]),
]

# source_id, source_row, customer_id, name, email, phone, gender, age, income, region, flags
CUSTOMERS = [
    (3, 2, "C1", "Alice", "alice@example.com", "+44 20 7946 0000", "F", 34.0, None, "London",
     []),
    (3, 3, "C2", "Bob", "bob@example", "+33 1 23 45 67 89", "M", 41.0, None, "Paris",
     ["invalid_email"]),
    (3, 4, "C3", "张伟", "zhangwei@example.cn", "13800138000", "M", 150.0, None, "上海",
     ["implausible_age"]),
    (3, 5, "C5", "李娜", "lina@example.cn", "123", "F", 29.0, None, "北京", ["invalid_phone"]),
    (3, 6, "C7", "Carol", "carol@example.com", None, "F", None, None, "London", []),
]

# source_id, source_row, customer_id, ts, event_type, value, text, flags
EVENTS = [
    (4, 2, "C1", _t("2023-02-01 09:00"), "review", 5.0, "很好", []),
    (4, 3, "C2", _t("2023-03-01 10:00"), "review", 3.0, "ok", []),
    (4, 4, "C3", _t("2023-03-05 11:00"), "click", None, None, []),
]


def _orig1(*values: str) -> str:
    return json.dumps(dict(zip(TXN_COLUMNS_1, values)), ensure_ascii=False)


# source_id, kind, source_row, reason, detail, original (JSON text)
REJECTED = [
    (1, "transactions", 16, "duplicate_row", "same as row 2",
     _orig1("O1", "P1", "WHITE MUG", "4", "05/01/2023 10:00", "2.5", "C1", "UK")),
    (1, "transactions", 17, "duplicate_row", "same as row 3",
     _orig1("O1", "P2", "RED LANTERN", "2", "05/01/2023 10:00", "4", "C1", "UK")),
    (1, "transactions", 18, "bad_timestamp", "31/02/2023",
     _orig1("O9", "P1", "WHITE MUG", "1", "31/02/2023", "2.5", "C2", "France")),
    (1, "transactions", 19, "bad_quantity", "two",
     _orig1("O9", "P2", "RED LANTERN", "two", "01/03/2023 10:00", "4", "C2", "France")),
    (1, "transactions", 20, "blank_row", None, _orig1("", "", "", "", "", "", "", "")),
    # A line the parser could not split keeps its raw text rather than columns.
    (1, "transactions", 21, "malformed_line", "9 fields, expected 8",
     json.dumps("O10;P1;WHITE MUG;1;02/03/2023;2.5;C3;UK;extra")),
    (2, "transactions", 8, "missing_amount", None,
     json.dumps({"订单号": "S5", "商品名称": "保温杯", "金额": ""}, ensure_ascii=False)),
    (2, "transactions", 9, "dropped_by_rule", "zero_price",
     json.dumps({"订单号": "S6", "商品名称": "试用装", "金额": "0"}, ensure_ascii=False)),
    (3, "customers", 7, "duplicate_customer", "C1 already at row 2",
     json.dumps({"id": "C1", "name": "Alice B."})),
    (3, "customers", 8, "missing_customer_id", None, json.dumps({"id": "", "name": "Nobody"})),
    (4, "events", 5, "bad_timestamp", "yesterday",
     json.dumps({"user": "C1", "time": "yesterday", "type": "review"})),
]


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every workspace table, empty."""
    for ddl in DDL.values():
        con.execute(ddl)


def build_workspace(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables and fill them with the rows described in the module docstring."""
    create_schema(con)
    con.executemany(
        "INSERT INTO sources VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [(sid, kind, name, loc, fmt, json.dumps(opts, ensure_ascii=False),
          json.dumps(mapping, ensure_ascii=False), json.dumps(cols, ensure_ascii=False),
          read, loaded, rejected, INGESTED)
         for sid, kind, name, loc, fmt, opts, mapping, cols, read, loaded, rejected in SOURCES],
    )
    con.executemany(
        """INSERT INTO transactions (source_id, source_row, order_id, customer_id, ts,
               product_id, product_name, quantity, unit_price, amount, channel, region,
               is_return, line_type, return_of_order_id, flags)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        TRANSACTIONS,
    )
    con.executemany(
        """INSERT INTO customers (source_id, source_row, customer_id, name, email, phone,
               gender, age, income, region, flags)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        CUSTOMERS,
    )
    con.executemany(
        """INSERT INTO events (source_id, source_row, customer_id, ts, event_type, value, text,
               flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        EVENTS,
    )
    con.executemany("INSERT INTO rejected VALUES (?, ?, ?, ?, ?, ?)", REJECTED)


@pytest.fixture
def workspace_db(tmp_path: Path) -> Path:
    """Path of a workspace store (``<tmp>/demo-shop/crmlens.duckdb``) holding the test rows."""
    path = tmp_path / "demo-shop" / "crmlens.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    try:
        build_workspace(con)
    finally:
        con.close()
    return path


@pytest.fixture
def workspace_con(workspace_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the test workspace (writable, so a test can alter the data)."""
    con = duckdb.connect(str(workspace_db))
    yield con
    con.close()


@pytest.fixture
def empty_con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A workspace store with every table created and no rows."""
    con = duckdb.connect()
    create_schema(con)
    yield con
    con.close()


@pytest.fixture
def bare_con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A store without any table at all."""
    con = duckdb.connect()
    yield con
    con.close()
