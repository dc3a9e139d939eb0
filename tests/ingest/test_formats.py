"""Ingest from every format, encoding and header language."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import openpyxl
import pytest

from crmlens import Workspace
from tests.conftest import SMALL_ORDERS, write_csv

GBK_ORDERS = (
    "会员号,订单号,下单时间,商品编号,商品名称,类别,数量,单价,实付金额,渠道,地区\n"
    "M001,SO1001,2011年12月9日 12:50,P01,保温杯,厨具,2,￥59.00,￥118.00,天猫,浙江\n"
    "M001,SO1002,2011年12月10日,P02,筷子,厨具,1,￥12.50,￥12.50,京东,浙江\n"
    "M002,SO1003,2011年12月11日 9:05,P01,保温杯,厨具,1,￥59.00,￥59.00,门店,上海\n"
    "M003,SO1004,2011年12月12日,运费,运费,,1,10,10,天猫,北京\n"
)


def test_gbk_chinese_headers_and_dates(tmp_path):
    path = write_csv(tmp_path / "订单.csv", GBK_ORDERS, encoding="gbk")
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", path)
    assert r.options["encoding"] in ("gb18030", "gbk")
    assert r.mapping == {
        "customer_id": "会员号", "order_id": "订单号", "timestamp": "下单时间",
        "product_id": "商品编号", "product_name": "商品名称", "category": "类别",
        "quantity": "数量", "unit_price": "单价", "amount": "实付金额", "channel": "渠道",
        "region": "地区",
    }
    assert r.rows_read == 4 and r.rows_loaded == 4
    rows = ws.sql("SELECT customer_id, ts, product_name, amount, line_type FROM transactions "
                  "ORDER BY source_row")
    assert rows[0] == ("M001", datetime(2011, 12, 9, 12, 50), "保温杯", 118.0, "product")
    assert rows[2][1] == datetime(2011, 12, 11, 9, 5)
    assert rows[3][4] == "shipping"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "latin-1"])
def test_text_encodings(tmp_path, encoding):
    text = SMALL_ORDERS.replace("France", "Côte d'Ivoire")
    path = write_csv(tmp_path / "orders.csv", text, encoding=encoding)
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", path)
    assert r.rows_read == 6 and r.rows_loaded == 6
    assert ws.sql("SELECT region FROM transactions WHERE product_id = 'POST'")[0][0] == "Côte d'Ivoire"
    assert ws.sql("SELECT min(customer_id) FROM transactions")[0][0] == "12583"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiters(tmp_path, delimiter):
    path = write_csv(tmp_path / "orders.txt", SMALL_ORDERS.replace(",", delimiter))
    r = Workspace(tmp_path / "ws").ingest("transactions", path)
    assert r.options["delimiter"] == delimiter
    assert r.rows_loaded == 6


def test_excel_customers_sheet(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["这是说明页"])
    ws_sheet = wb.create_sheet("客户")
    ws_sheet.append(["客户编号", "姓名", "邮箱", "手机", "性别", "出生日期", "年收入", "注册日期", "等级"])
    ws_sheet.append(["M001", "张三", "ZHANG@Example.com ", "138-0013-8000", "男",
                     datetime(1990, 5, 1), 120000, datetime(2020, 1, 2), "金卡"])
    ws_sheet.append(["M002", "李四", "not-an-email", "123", "女", "1985/3/2", "8,000", "2021-06-01", "银卡"])
    ws_sheet.append(["M001", "张三(重复)", None, None, None, None, None, None, None])
    ws_sheet.append([None, "无编号", None, None, None, None, None, None, None])
    path = tmp_path / "客户资料.xlsx"
    wb.save(path)
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("customers", path, sheet="客户")
    assert r.options["sheet"] == "客户"
    assert r.rows_read == 4 and r.rows_loaded == 2
    assert r.rejected_by_reason == {"duplicate_customer": 1, "missing_customer_id": 1}
    rows = ws.sql("SELECT customer_id, email, phone, gender, birth_date, income, attributes, flags "
                  "FROM customers ORDER BY customer_id")
    assert rows[0][1] == "zhang@example.com" and rows[0][2] == "13800138000"
    assert rows[0][3] == "male" and str(rows[0][4]) == "1990-05-01" and rows[0][5] == 120000
    assert json.loads(rows[0][6]) == {"等级": "金卡"}
    assert rows[1][3] == "female" and rows[1][5] == 8000
    assert set(rows[1][7]) == {"invalid_email", "invalid_phone"}


def test_parquet_typed_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "customer_id": pa.array([1.0, 2.0, None]),
        "order_id": ["a", "b", "c"],
        "order_date": pa.array([datetime(2024, 1, 1), datetime(2024, 1, 2), None]),
        "amount": [10.0, float("nan"), 3.0],
    })
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", path)
    assert r.rows_read == 3
    assert r.rejected_by_reason == {"missing_timestamp": 1, "missing_amount": 1}
    assert ws.sql("SELECT customer_id, amount FROM transactions")[0] == ("1", 10.0)


def test_json_lines_events(tmp_path):
    lines = [{"customer": "C1", "time": "2024-03-01 10:00", "type": "review", "score": 5},
             {"customer": "C1", "time": "2024-03-02", "type": "review", "score": "n/a"},
             {"customer": None, "time": "2024-03-02", "type": "email_open", "score": None},
             {"customer": "C2", "time": "yesterday", "type": "review", "score": 3}]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("events", path, mapping=["value=score"])
    assert r.rows_read == 4 and r.rows_loaded == 2
    assert r.rejected_by_reason == {"missing_customer_id": 1, "bad_timestamp": 1}
    assert ws.sql("SELECT value FROM events ORDER BY ts") == [(5.0,), (None,)]
    assert r.flags_by_reason == {"bad_value": 1}


def test_sqlite_table_and_query(tmp_path):
    db = tmp_path / "erp.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE orders (cust TEXT, invoice TEXT, created_at TEXT, total REAL)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                    [("c1", "1", "2024-01-01", 5.0), ("c2", "2", "2024-01-02", 7.5)])
    con.commit()
    con.close()
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", f"sqlite:///{db}", table="orders",
                  mapping=["customer_id=cust", "order_id=invoice"])
    assert r.format == "sql" and r.rows_loaded == 2
    r2 = ws.ingest("transactions", f"sqlite:///{db}", query="SELECT * FROM orders WHERE total > 6")
    assert r2.rows_loaded == 1  # the saved mapping (cust, invoice) was reused
    assert r2.how["customer_id"] == "saved"


def test_dayfirst_detected_and_overridden(tmp_path):
    text = ("customer,order,date,amount\n"
            "c1,1,25/12/2011,5\nc1,2,3/4/2012,6\n")
    path = write_csv(tmp_path / "eu.csv", text)
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", path)
    assert r.options["dayfirst"] is True
    assert ws.sql("SELECT ts FROM transactions ORDER BY source_row")[1][0] == datetime(2012, 4, 3)
    us = write_csv(tmp_path / "us.csv", text.replace("25/12/2011", "12/25/2011"))
    r2 = Workspace(tmp_path / "ws2").ingest("transactions", us)
    assert r2.options["dayfirst"] is False
    r3 = Workspace(tmp_path / "ws3").ingest("transactions", path, dayfirst=False)
    assert r3.rejected_by_reason == {"bad_timestamp": 1}


def test_malformed_lines_are_rejected_with_their_row(tmp_path):
    text = ("customer,order,date,amount\n"
            "c1,1,2024-01-01,5\n"
            "c2,2,2024-01-02\n"              # too few fields
            "c3,3,2024-01-03,7\n"
            "c4,4,2024-01-04,8,extra\n"      # too many fields
            "c5,5,2024-01-05,9\n")
    path = write_csv(tmp_path / "ragged.csv", text)
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", path)
    assert r.rows_read == 5 and r.rows_loaded == 3
    assert r.rejected_by_reason == {"malformed_line": 2}
    assert ws.sql("SELECT source_row, customer_id FROM transactions ORDER BY 1") == [
        (1, "c1"), (3, "c3"), (5, "c5")]
    bad = ws.sql("SELECT source_row, original->>'line' FROM rejected ORDER BY 1")
    assert bad == [(2, "c2,2,2024-01-02"), (4, "c4,4,2024-01-04,8,extra")]


def test_reingest_replaces_same_file(tmp_path, orders_csv):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", orders_csv)
    r = ws.ingest("transactions", orders_csv)
    assert r.replaced_sources == [1]
    assert ws.sql("SELECT count(*) FROM transactions")[0][0] == 6
    assert ws.sql("SELECT count(*) FROM sources")[0][0] == 1


def test_messy_values_and_flags(tmp_path):
    text = ("客户ID,订单号,订单日期,数量,单价,是否退货\n"
            "A1,1,2024-01-01,2,\"¥1,234.50\",否\n"
            "A1,2,2024/1/2,1,１２.５０,是\n"           # return by flag
            "A1,2,2024/1/2,1,１２.５０,是\n"           # exact duplicate
            "A2,3,not a date,1,1.00,否\n"
            "A2,4,2024-01-03,abc,1.00,否\n"
            "A2,5,2024-01-03,1,free,否\n"
            ",6,2024-01-04,1,0,否\n"
            ",,,,,\n"
            "A3,7,2099-01-01,1,5,否\n")
    path = write_csv(tmp_path / "messy.csv", text)
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", path)
    assert r.rows_read == 9
    assert r.rejected_by_reason == {"duplicate_row": 1, "bad_timestamp": 1, "bad_quantity": 1,
                                    "bad_price": 1, "blank_row": 1}
    assert r.rows_loaded == 4
    rows = dict(ws.sql("SELECT order_id, amount FROM transactions"))
    assert rows["1"] == pytest.approx(2469.0) and rows["2"] == pytest.approx(-12.5)
    flags = dict(ws.sql("SELECT order_id, flags FROM transactions"))
    assert set(flags["6"]) == {"anonymous", "zero_price"}
    assert "future_date" in flags["7"] and "return" in flags["2"]
    detail = dict(ws.sql("SELECT reason, detail FROM rejected"))
    assert detail["bad_timestamp"] == "订单日期=not a date"
    assert detail["duplicate_row"] == "first copy at row 2"


def test_drop_flags_reject_instead_of_keep(tmp_path, orders_csv):
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", orders_csv, drop_flags=["zero_price"])
    assert r.rejected_by_reason == {"dropped_by_rule": 1}
    assert ws.sql("SELECT detail FROM rejected")[0][0] == "zero_price"
    again = ws.clean(drop_flags=[])
    assert again[0]["rows_loaded"] == 6 and again[0]["rows_rejected"] == 0


def test_return_matched_to_a_purchase_from_a_later_ingest(tmp_path):
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
    returns = write_csv(tmp_path / "dec.csv", header + "C900,P1,-1,2024-12-05 10:00,5,c1\n")
    buys = write_csv(tmp_path / "nov.csv", header + "800,P1,2,2024-11-20 10:00,5,c1\n"
                                                    "801,P2,1,2024-11-21 10:00,5,c1\n")
    ws = Workspace(tmp_path / "ws")
    first = ws.ingest("transactions", returns)
    assert first.flags_by_reason.get("unmatched_return") == 1
    ws.ingest("transactions", buys)
    row = ws.sql("SELECT return_of_order_id, flags FROM transactions WHERE is_return")[0]
    assert row[0] == "800" and "unmatched_return" not in row[1]
    net = dict(ws.sql("SELECT order_id, net_amount FROM orders"))
    assert net["800"] == pytest.approx(5.0)


def test_replacing_a_source_rematches_returns_of_other_sources(tmp_path):
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
    buys = write_csv(tmp_path / "nov.csv", header + "O1,P1,2,2024-11-20 10:00,5,c1\n")
    returns = write_csv(tmp_path / "dec.csv", header + "R9,P1,-1,2024-12-05 10:00,5,c1\n")
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", buys)
    ws.ingest("transactions", returns)
    assert ws.sql("SELECT return_of_order_id FROM transactions WHERE is_return")[0][0] == "O1"
    buys.write_text(header + "O2,P2,2,2024-11-20 10:00,5,c1\n")  # O1 is gone from the export
    ws.ingest("transactions", buys)
    row = ws.sql("SELECT return_of_order_id, flags FROM transactions WHERE is_return")[0]
    assert row[0] is None and "unmatched_return" in row[1]


def test_full_width_cancellation_id(tmp_path):
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
    path = write_csv(tmp_path / "fw.csv", header + "O1,P1,2,2024-11-20 10:00,5,c1\n"
                                                   "ＣO1,P1,1,2024-11-21 10:00,5,c1\n")
    r = Workspace(tmp_path / "ws").ingest("transactions", path)
    assert r.flags_by_reason.get("cancellation") == 1


def test_odd_order_ids_never_break_the_load(tmp_path):
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
    path = write_csv(tmp_path / "odd.csv", header + ",P1,2,2024-11-20 10:00,5,c1\n"
                                                    "CX9,P1,1,2024-11-21 10:00,5,c1\n"
                                                    "123,P1,1,2024-11-22 10:00,5,c1\n")
    r = Workspace(tmp_path / "ws").ingest("transactions", path)
    assert r.rows_loaded == 3
    assert r.flags_by_reason.get("derived_order_id") == 1
