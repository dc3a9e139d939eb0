"""Reading .xlsx workbooks (crmlens.ingest.excel) and the shared cell formatting."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmlens.errors import InputError
from crmlens.ingest import excel
from crmlens.ingest.cellformat import format_cell, unique_names
from crmlens.ingest.excel import SheetInfo, excel_to_parquet, list_sheets


def save(tmp_path: Path, sheets: dict[str, list[list[object]]], name: str = "crm.xlsx") -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    path = tmp_path / name
    wb.save(path)
    return path


def read(path: Path) -> list[dict[str, str | None]]:
    table = pq.read_table(path)
    assert all(f.type == pa.string() for f in table.schema)  # every column is text
    return table.to_pylist()


def expect_error(key: str, path: Path, **kwargs) -> InputError:
    out = path.parent / "out.parquet"
    with pytest.raises(InputError) as info:
        excel_to_parquet(path, out, **kwargs)
    err = info.value
    assert err.key == key
    assert path.name in err.message("en") and path.name in err.message("zh")
    assert not out.exists()
    return err


CUSTOMERS = [
    [],  # an empty first row: the header is the first non-empty row
    ["客户编号", "下单时间", "日期", "金额", None, "金额", "会员", "amount"],
    [17850.0, dt.datetime(2011, 12, 9, 8, 26), dt.date(2011, 12, 9), 15.3, "x", 2, True, 1e-7],
    [],  # an internal blank row is kept
    [
        13047,
        dt.datetime(2011, 12, 9, 8, 26, 1, 500000),
        None,
        0.1,
        None,
        -3.0,
        False,
        123456789012345,
    ],
    ["007", "2011-12-09", "", None, None, None, None, None],
    [],
    [],  # trailing blank rows are dropped
]


def test_reads_types_as_text(tmp_path):
    path = save(tmp_path, {"客户": CUSTOMERS, "Sheet2": [["a"], [1]]})
    out = tmp_path / "out.parquet"
    info = excel_to_parquet(path, out)
    assert info == SheetInfo(
        "客户",
        4,
        ["客户编号", "下单时间", "日期", "金额", "column_5", "金额_2", "会员", "amount"],
        header_row=2,
    )
    rows = read(out)
    assert [list(r.values()) for r in rows] == [
        ["17850", "2011-12-09 08:26:00", "2011-12-09", "15.3", "x", "2", "true", "1e-07"],
        [None] * 8,
        ["13047", "2011-12-09 08:26:01.5", None, "0.1", None, "-3", "false", "123456789012345"],
        ["007", "2011-12-09", None, None, None, None, None, None],
    ]


def test_duplicate_headers_are_case_insensitive(tmp_path):
    path = save(tmp_path, {"s": [["Amount", "amount", "Amount_2", "", " "], [1, 2, 3, 4, 5]]})
    info = excel_to_parquet(path, tmp_path / "o.parquet")
    # "amount" cannot become "amount_2": that name is taken (case-insensitively) by column 3.
    assert info.columns == ["Amount", "amount_3", "Amount_2", "column_4", "column_5"]


def test_sheet_by_name_index_and_digits(tmp_path):
    path = save(tmp_path, {"客户": [["a"], [1]], "订单": [["b"], [2], [3]], "2023": [["c"], [4]]})
    assert list_sheets(path) == ["客户", "订单", "2023"]
    out = tmp_path / "o.parquet"
    assert excel_to_parquet(path, out, sheet="订单").rows == 2
    assert excel_to_parquet(path, out, sheet=1).sheet == "订单"
    assert excel_to_parquet(path, out, sheet="1").sheet == "订单"
    assert excel_to_parquet(path, out, sheet="2023").sheet == "2023"  # a name wins over a position
    assert excel_to_parquet(path, out, sheet=" 客户 ").sheet == "客户"
    assert excel_to_parquet(path, out).sheet == "客户"
    assert read(out) == [{"a": "1"}]


def test_table_not_starting_in_a1(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["C3"], ws["D3"] = "id", "name"
    ws["C4"], ws["D4"] = 1, "张三"
    ws["C6"], ws["E6"] = 2, "note without header"
    path = tmp_path / "offset.xlsx"
    wb.save(path)
    info = excel_to_parquet(path, tmp_path / "o.parquet")
    assert info.columns == ["id", "name", "column_3"]
    assert info.header_row == 3
    assert [list(r.values()) for r in read(tmp_path / "o.parquet")] == [
        ["1", "张三", None],
        [None, None, None],
        ["2", None, "note without header"],
    ]


def test_stale_dimension_does_not_cut_rows(tmp_path):
    path = save(tmp_path, {"s": [["a", "b", "c"], [1, 2, 3]]})
    # Some exporters write <dimension ref="A1"/>; openpyxl would then read one column only.
    patched = tmp_path / "stale.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(patched, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(rb'<dimension ref="A1:C2"\s*/>', b'<dimension ref="A1"/>', data)
                assert b'<dimension ref="A1"/>' in data
            dst.writestr(item, data)
    excel_to_parquet(patched, tmp_path / "o.parquet")
    assert read(tmp_path / "o.parquet") == [{"a": "1", "b": "2", "c": "3"}]


def test_batches_and_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(excel, "BATCH_ROWS", 10)
    rows = [["n", "sq"]] + [[i, i * i] for i in range(35)]
    path = save(tmp_path, {"s": rows})
    calls: list[tuple[int, int | None]] = []
    out = tmp_path / "o.parquet"
    info = excel_to_parquet(path, out, progress=lambda done, total: calls.append((done, total)))
    assert info.rows == 35
    assert pq.ParquetFile(out).metadata.num_row_groups == 4
    assert [r["sq"] for r in read(out)] == [str(i * i) for i in range(35)]
    assert calls == [(10, 35), (20, 35), (30, 35), (35, 35)]


def test_header_only_sheet_has_no_rows(tmp_path):
    path = save(tmp_path, {"s": [["a", "b"], [], []]})
    info = excel_to_parquet(path, tmp_path / "o.parquet")
    assert (info.rows, info.columns) == (0, ["a", "b"])
    assert pq.read_table(tmp_path / "o.parquet").column_names == ["a", "b"]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_missing_sheet_lists_the_sheets(tmp_path):
    path = save(tmp_path, {"客户": [["a"], [1]], "订单": [["b"], [2]]})
    for wrong in ("Orders", 2, -1, "7"):
        err = expect_error("error.excel_sheet_missing", path, sheet=wrong)
        assert "'客户' (0), '订单' (1)" in err.message("en")
        assert str(wrong) in err.message("zh")


def test_empty_sheet(tmp_path):
    path = save(tmp_path, {"客户": [["a"], [1]], "空": [[], [None, ""]]})
    err = expect_error("error.excel_sheet_empty", path, sheet="空")
    assert "'空'" in err.message("en")


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a workbook at all\n",
        b"PK\x03\x04" + b"\x00" * 40,  # a truncated zip
    ],
)
def test_corrupt_file(tmp_path, data):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(data)
    err = expect_error("error.excel_corrupt", path)
    assert ".xlsx" in err.message("en") and "WPS" in err.message("zh")
    with pytest.raises(InputError, match=r"broken\.xlsx"):
        list_sheets(path)


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "report.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("word/document.xml", "<w/>")
    expect_error("error.excel_corrupt", path)


def test_truncated_workbook(tmp_path):
    good = save(tmp_path, {"s": [["a"]] + [[i] for i in range(2000)]})
    path = tmp_path / "cut.xlsx"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    expect_error("error.excel_corrupt", path)


def test_legacy_xls(tmp_path):
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000)
    err = expect_error("error.excel_xls", path)
    assert ".xlsx" in err.message("en") and "CSV" in err.message("en")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    expect_error("error.file_empty", path)


def test_value_right_of_the_table_after_the_first_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(excel, "BATCH_ROWS", 5)
    rows = [["id", "name"]] + [[i, "x"] for i in range(12)]
    rows[9] = [8, "x", None, "stray"]
    path = save(tmp_path, {"客户": rows})
    err = expect_error("error.excel_cells_outside", path)
    assert err.params["cell"] == "D10"
    assert "D10" in err.message("en") and "'客户'" in err.message("zh")


def test_unreadable_path(tmp_path):
    with pytest.raises(InputError) as info:
        excel_to_parquet(tmp_path / "nope.xlsx", tmp_path / "o.parquet")
    assert info.value.key == "error.file_unreadable"
    assert "nope.xlsx" in info.value.message("en")


# --------------------------------------------------------------------------------------------
# Cell formatting shared with the SQL reader
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("", None),
        (" ", " "),
        ("007", "007"),
        (True, "true"),
        (0, "0"),
        (17850.0, "17850"),
        (-0.0, "0"),
        (1e20, "100000000000000000000"),
        (15.3, "15.3"),
        (float("nan"), "nan"),
        (decimal.Decimal("17850.00"), "17850"),
        (decimal.Decimal("1.50"), "1.5"),
        (decimal.Decimal("1E-7"), "0.0000001"),
        (dt.datetime(2011, 12, 9, 8, 26), "2011-12-09 08:26:00"),
        (dt.datetime(2011, 12, 9, 8, 26, 0, 120), "2011-12-09 08:26:00.00012"),
        (dt.datetime(2011, 12, 9, 0, 0), "2011-12-09 00:00:00"),
        (
            dt.datetime(2011, 12, 9, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
            "2011-12-09 08:00:00+08:00",
        ),
        (dt.datetime(999, 1, 2, 3, 4, 5), "0999-01-02 03:04:05"),
        (dt.date(2011, 12, 9), "2011-12-09"),
        (dt.time(8, 26, 5), "08:26:05"),
        (dt.timedelta(hours=25, seconds=1), "25:00:01"),
        (dt.timedelta(seconds=-90), "-00:01:30"),
        (b"plain text", "plain text"),
        (b"\x00\xff", "\\x00ff"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        ({"tier": "金"}, '{"tier": "金"}'),
    ],
)
def test_format_cell(value, text):
    assert format_cell(value) == text


def test_format_cell_midnight_as_date():
    assert format_cell(dt.datetime(2011, 12, 9), midnight_as_date=True) == "2011-12-09"
    assert (
        format_cell(dt.datetime(2011, 12, 9, 0, 0, 1), midnight_as_date=True)
        == "2011-12-09 00:00:01"
    )


def test_unique_names():
    assert unique_names(["a", None, "A", "a_2", "", "a"]) == [
        "a",
        "column_2",
        "A_3",
        "a_2",
        "column_5",
        "a_4",
    ]
