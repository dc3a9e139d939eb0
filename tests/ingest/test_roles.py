"""Column roles from English and Chinese headers and from values."""

from __future__ import annotations

import pytest

from crmlens.errors import InputError
from crmlens.ingest.roles import (
    apply_overrides, check_required, detect_roles, normalize_header, parse_overrides,
)

MUST_MAP = {
    "customer_id": ["CustomerID", "Customer ID", "客户ID", "客户编号", "会员号", "customer_id"],
    "order_id": ["InvoiceNo", "订单号", "Order Number"],
    "timestamp": ["InvoiceDate", "下单时间", "订单日期"],
    "unit_price": ["UnitPrice", "单价"],
    "quantity": ["Quantity", "数量"],
    "amount": ["金额", "实付金额", "Total Amount"],
}
SAMPLE_VALUES = {
    "customer_id": ["17850", "13047"], "order_id": ["536365", "536366"],
    "timestamp": ["2011-12-09 12:50", "2011年12月9日"], "unit_price": ["2.55", "¥3.39"],
    "quantity": ["6", "2"], "amount": ["15.30", "1,234.50"],
}


@pytest.mark.parametrize("role,header", [(r, h) for r, hs in MUST_MAP.items() for h in hs])
def test_required_examples_map(role, header):
    columns = [header, "Other"]
    mapping = detect_roles("transactions", columns,
                           {header: SAMPLE_VALUES[role], "Other": ["x", "y"]})
    assert mapping.column(role) == header


def test_online_retail_headers():
    cols = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
            "CustomerID", "Country"]
    samples = {"InvoiceNo": ["536365"], "StockCode": ["85123A"], "Description": ["HEART"],
               "Quantity": ["6"], "InvoiceDate": ["2010-12-01 08:26:00"], "UnitPrice": ["2.55"],
               "CustomerID": ["17850.0"], "Country": ["United Kingdom"]}
    m = detect_roles("transactions", cols, samples)
    assert m.roles == {
        "order_id": "InvoiceNo", "product_id": "StockCode", "product_name": "Description",
        "quantity": "Quantity", "timestamp": "InvoiceDate", "unit_price": "UnitPrice",
        "customer_id": "CustomerID", "region": "Country",
    }


def test_chinese_headers_all_roles():
    cols = ["会员号", "订单号", "下单时间", "商品编号", "商品名称", "类别", "数量", "单价",
            "实付金额", "渠道", "地区", "是否退货"]
    samples = {c: ["1"] for c in cols}
    samples["下单时间"] = ["2011年12月9日 12:50"]
    samples["商品名称"] = ["保温杯"]
    m = detect_roles("transactions", cols, samples)
    assert m.roles == {
        "customer_id": "会员号", "order_id": "订单号", "timestamp": "下单时间",
        "product_id": "商品编号", "product_name": "商品名称", "category": "类别",
        "quantity": "数量", "unit_price": "单价", "amount": "实付金额", "channel": "渠道",
        "region": "地区", "return_flag": "是否退货",
    }


def test_header_that_lies_about_dates_loses_the_role():
    m = detect_roles("transactions", ["Date", "When"],
                     {"Date": ["apple", "pear", "plum"], "When": ["2011-01-02", "2011-02-03"]})
    assert m.column("timestamp") == "When"
    assert m.how["timestamp"] == "values"


def test_customer_roles_from_values():
    cols = ["客户编号", "contact", "手机", "性别", "生日", "年收入", "churned"]
    samples = {"客户编号": ["C1"], "contact": ["a@b.com", "x@y.cn"], "手机": ["13800138000"],
               "性别": ["男"], "生日": ["1990-01-02"], "年收入": ["120000"], "churned": ["yes"]}
    m = detect_roles("customers", cols, samples)
    assert m.column("email") == "contact"
    assert m.column("phone") == "手机"
    assert m.column("gender") == "性别"
    assert m.column("birth_date") == "生日"
    assert m.column("income") == "年收入"
    assert m.labels == ["churned"]


def test_overrides_and_required():
    cols = ["a", "b", "c"]
    m = detect_roles("transactions", cols, {})
    with pytest.raises(InputError) as exc:
        check_required(m, "f.csv", cols)
    assert exc.value.key == "error.missing_role"
    apply_overrides(m, parse_overrides(["customer_id=a", "timestamp=b", "amount=c"],
                                       "transactions", cols), "user")
    check_required(m, "f.csv", cols)
    assert m.how["customer_id"] == "user"
    # moving a column to another role frees the old one; role= unmaps
    apply_overrides(m, parse_overrides(["order_id=a", "amount="], "transactions", cols), "user")
    assert m.column("order_id") == "a" and m.column("customer_id") is None
    assert m.column("amount") is None


@pytest.mark.parametrize("item,key", [("nope", "error.map_syntax"),
                                      ("colour=a", "error.map_unknown_role"),
                                      ("customer_id=zzz", "error.map_unknown_column")])
def test_bad_overrides(item, key):
    with pytest.raises(InputError) as exc:
        parse_overrides([item], "transactions", ["a"])
    assert exc.value.key == key


def test_normalize_header():
    assert normalize_header(" Customer ID ") == "customerid"
    assert normalize_header("金额（元）") == "金额"
    assert normalize_header("ＣｕｓｔｏｍｅｒＩＤ") == "customerid"
