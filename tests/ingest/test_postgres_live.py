"""Ingest from a real PostgreSQL server started on loopback for this test."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from crmlens import Workspace

psycopg = pytest.importorskip("psycopg")

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
               if (p / "initdb").exists()), None) if Path("/usr/lib/postgresql").exists() else None
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(PG_BIN is None and shutil.which("initdb") is None,
                                 reason="PostgreSQL server binaries not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; tests run as root in CI, so drop to the postgres user.
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="module")
def pg_url():
    bin_dir = PG_BIN or Path(shutil.which("initdb")).parent
    root = Path(tempfile.mkdtemp(prefix="crmlens-pg-"))
    os.chmod(root, 0o777)
    data = root / "data"
    port = _free_port()
    subprocess.run(_as_pg_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                                "--auth=trust", "-E", "UTF8", "--locale=C"]),
                   check=True, capture_output=True)
    subprocess.run(_as_pg_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l",
                                str(root / "log"), "-o",
                                f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        for _ in range(50):
            try:
                with psycopg.connect(url) as con:
                    con.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE SCHEMA shop")
            con.execute("CREATE TABLE shop.orders (会员号 text, 订单号 text, 下单时间 timestamp, "
                        "金额 numeric(10,2), 渠道 text)")
            con.execute("INSERT INTO shop.orders VALUES "
                        "('M1', 'A1', '2024-01-02 10:00', 99.50, '天猫'), "
                        "('M2', 'A2', '2024-01-03 11:00', 12.00, NULL), "
                        "(NULL, 'A3', NULL, 5.00, '京东')")
        yield url
    finally:
        subprocess.run(_as_pg_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                    "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_ingest_postgres_table(tmp_path, pg_url):
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", pg_url, table="shop.orders")
    assert r.format == "sql" and "postgres@127.0.0.1" in r.location
    assert r.mapping == {"customer_id": "会员号", "order_id": "订单号", "timestamp": "下单时间",
                         "amount": "金额", "channel": "渠道"}
    assert r.rows_read == 3 and r.rows_loaded == 2
    assert r.rejected_by_reason == {"missing_timestamp": 1}
    assert ws.sql("SELECT amount FROM transactions ORDER BY ts") == [(99.5,), (12.0,)]


def test_ingest_postgres_query(tmp_path, pg_url):
    ws = Workspace(tmp_path / "ws")
    r = ws.ingest("transactions", pg_url,
                  query="SELECT * FROM shop.orders WHERE 金额 > 10 AND 下单时间 IS NOT NULL")
    assert r.rows_loaded == 2


def test_wrong_password_database_is_a_clear_error(tmp_path, pg_url, cli):
    bad = pg_url.replace("/postgres", "/no_such_db")
    result = cli("ingest", "transactions", bad, "--table", "orders", "-w", tmp_path / "ws")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "no_such_db" in result.output
    assert not (tmp_path / "ws").exists()
