"""Every bad input gives a clear message naming the file, a non-zero exit and no change."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_ORDERS, snapshot, write_csv


def _check_failed(result, *must_contain: str) -> str:
    text = result.output
    assert result.exit_code != 0, text
    assert "Traceback" not in text
    for piece in must_contain:
        assert piece in text, f"{piece!r} not in {text!r}"
    return text


@pytest.fixture
def ws_with_data(tmp_path: Path, cli, orders_csv: Path) -> Path:
    ws = tmp_path / "ws"
    assert cli("ingest", "transactions", orders_csv, "-w", ws).exit_code == 0
    return ws


def _ingest_fails(cli, ws: Path, path: Path, *extra: str, expect: tuple[str, ...] = ()):
    before = snapshot(ws)
    result = cli("ingest", "transactions", path, "-w", ws, *extra)
    _check_failed(result, path.name, *expect)
    assert snapshot(ws) == before
    return result


def test_empty_file(tmp_path, cli, ws_with_data):
    empty = write_csv(tmp_path / "empty.csv", "")
    _ingest_fails(cli, ws_with_data, empty)


def test_empty_file_into_new_workspace_leaves_nothing(tmp_path, cli):
    empty = write_csv(tmp_path / "empty.csv", "")
    ws = tmp_path / "new-ws"
    result = cli("ingest", "transactions", empty, "-w", ws)
    _check_failed(result, "empty.csv")
    assert not ws.exists()


def test_header_only_file(tmp_path, cli, ws_with_data):
    header = write_csv(tmp_path / "header.csv", SMALL_ORDERS.splitlines()[0] + "\n")
    _ingest_fails(cli, ws_with_data, header)


def test_binary_file(tmp_path, cli, ws_with_data):
    binary = tmp_path / "orders.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    _ingest_fails(cli, ws_with_data, binary)


def test_wrong_delimiter(tmp_path, cli, ws_with_data):
    semi = write_csv(tmp_path / "semi.csv", SMALL_ORDERS.replace(",", ";"))
    _ingest_fails(cli, ws_with_data, semi, "--delimiter", ",", expect=(";",))


def test_missing_required_role(tmp_path, cli, ws_with_data):
    no_date = write_csv(tmp_path / "nodate.csv", "CustomerID,UnitPrice\n1,2.5\n2,3.5\n")
    result = _ingest_fails(cli, ws_with_data, no_date, expect=("timestamp", "--map"))
    assert "CustomerID" in result.output  # lists the columns it did find


def test_unreadable_encoding(tmp_path, cli, ws_with_data):
    gbk = write_csv(tmp_path / "gbk.csv", "客户编号,订单号,下单时间,金额\n1,2,2011年12月9日,3\n",
                    encoding="gbk")
    _ingest_fails(cli, ws_with_data, gbk, "--encoding", "utf-8")


def test_corrupt_excel(tmp_path, cli, ws_with_data):
    bad = tmp_path / "客户资料.xlsx"
    bad.write_bytes(b"PK\x03\x04 this is not really a workbook" * 10)
    _ingest_fails(cli, ws_with_data, bad)


def test_missing_file(tmp_path, cli, ws_with_data):
    _ingest_fails(cli, ws_with_data, tmp_path / "nope.csv")


def test_unknown_role_in_map(cli, ws_with_data, orders_csv):
    before = snapshot(ws_with_data)
    result = cli("ingest", "transactions", orders_csv, "-w", ws_with_data, "--map", "colour=Country")
    _check_failed(result, "colour")
    assert snapshot(ws_with_data) == before


def test_read_only_workspace(tmp_path, cli, ws_with_data, orders_csv):
    before = snapshot(ws_with_data)
    modes = {p: p.stat().st_mode for p in [ws_with_data, *ws_with_data.iterdir()]}
    try:
        for p in modes:
            os.chmod(p, stat.S_IMODE(modes[p]) & ~0o222)
        result = cli("ingest", "transactions", orders_csv, "-w", ws_with_data)
        _check_failed(result, str(ws_with_data), "read-only")
    finally:
        for p, mode in modes.items():
            os.chmod(p, stat.S_IMODE(mode))
    assert snapshot(ws_with_data) == before


def test_locked_workspace(tmp_path, cli, ws_with_data, orders_csv):
    before = snapshot(ws_with_data)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "time.sleep(60)", str(ws_with_data / "crmlens.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = cli("ingest", "transactions", orders_csv, "-w", ws_with_data)
        _check_failed(result, str(ws_with_data), "another crmlens process")
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert snapshot(ws_with_data) == before


def test_reading_a_missing_workspace(tmp_path, cli):
    result = cli("quality", "-w", tmp_path / "nothing-here")
    _check_failed(result, "nothing-here", "crmlens init")
    assert not (tmp_path / "nothing-here").exists()


def test_chinese_messages(tmp_path, cli, ws_with_data):
    empty = write_csv(tmp_path / "空.csv", "")
    result = cli("ingest", "transactions", empty, "-w", ws_with_data, "--lang", "zh")
    text = _check_failed(result, "空.csv")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text.replace("空.csv", ""))
