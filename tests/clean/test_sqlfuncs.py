"""The SQL value parsers against hand-written cases."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from crmlens.clean import sqlfuncs


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    sqlfuncs.register(c)
    yield c
    sqlfuncs.unregister(c)
    c.close()


@pytest.mark.parametrize("text,value", [
    ("¥1,234.50", 1234.5), ("$1,234.50", 1234.5), ("1.234,50 €", 1234.5), ("１２.５０", 12.5),
    ("１，２３４．５", 1234.5), ("12,5", 12.5), ("1.234", 1.234), ("1.234.567", 1234567.0),
    ("(12.50)", -12.5), ("12.50-", -12.5), ("RMB 99", 99.0), ("99元", 99.0), ("-5", -5.0),
    ("1 234,50", 1234.5), ("3件", 3.0), ("2.5e3", 2500.0), ("£0.85", 0.85),
    ("abc", None), ("", None), ("NaN", None), ("N/A", None), (None, None),
])
def test_money(con, text, value):
    got = con.execute("SELECT crm_number(?)", [text]).fetchone()[0]
    assert got == (pytest.approx(value) if value is not None else None)


D = datetime(2011, 12, 9, 12, 50)
DAY = datetime(2011, 12, 9)


@pytest.mark.parametrize("text,dayfirst,value", [
    ("2011-12-09 12:50:00", True, D), ("2011/12/9 12:50", False, D), ("9/12/2011", True, DAY),
    ("9/12/2011", False, datetime(2011, 9, 12)), ("12/9/2011 12:50", False, D),
    ("2011年12月9日", True, DAY), ("2011年12月9日 12时50分", False, D), ("2011.12.09", True, DAY),
    ("1323435000", True, D), ("1323435000000", False, D), ("20111209", True, DAY),
    ("09-Dec-2011", True, DAY), ("Dec 9, 2011", False, DAY), ("2011-12-09T12:50:00Z", True, D),
    ("12/9/2011 12:50 PM", False, D), ("9.12.11", True, DAY), ("４０８８６.５", True,
                                                                 datetime(2011, 12, 9, 12)),
    ("not a date", True, None), ("0011-01-01", True, None), ("", True, None),
])
def test_dates(con, text, dayfirst, value):
    fn = "crm_ts_dayfirst" if dayfirst else "crm_ts_monthfirst"
    assert con.execute(f"SELECT {fn}(?)", [text]).fetchone()[0] == value


@pytest.mark.parametrize("text,value", [
    ("17850.0", "17850"), (" Ｃ123 ", "C123"), ("  a\t b  ", "a b"), ("null", None), ("", None),
    ("007", "007"),
])
def test_ids(con, text, value):
    assert con.execute("SELECT crm_id(?)", [text]).fetchone()[0] == value


@pytest.mark.parametrize("text,value", [("是", True), ("否", False), ("Yes", True), ("0", False),
                                        ("returned", True), ("maybe", None)])
def test_bools(con, text, value):
    assert con.execute("SELECT crm_bool(?)", [text]).fetchone()[0] is value
