"""Shared fixtures: temporary workspaces, an in-process CLI runner, workspace snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crmlens.cli import app

ONLINE_RETAIL = Path(__file__).resolve().parents[1] / "src/crmlens/datasets/data/online_retail.parquet"


@pytest.fixture
def cli():
    """Run the CLI in-process: ``cli("ingest", "transactions", path, "-w", ws)``."""
    runner = CliRunner()

    def invoke(*args: object):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def snapshot(folder: Path) -> dict | None:
    """A logical fingerprint of a workspace: files, settings bytes, every table's rows."""
    folder = Path(folder)
    if not folder.exists():
        return None
    state: dict = {"files": sorted(p.name for p in folder.iterdir() if not p.name.endswith(".wal"))}
    settings = folder / "crmlens.toml"
    if settings.exists():
        state["settings"] = hashlib.sha256(settings.read_bytes()).hexdigest()
    db = folder / "crmlens.duckdb"
    if db.exists():
        con = duckdb.connect(str(db), read_only=True)
        try:
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
            state["tables"] = {
                name: con.execute(
                    f'SELECT count(*), sum(hash(CAST(t AS VARCHAR))) FROM "{name}" t').fetchone()
                for name in tables
            }
        finally:
            con.close()
    return state


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


SMALL_ORDERS = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom\n"
    "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850,United Kingdom\n"
    "C536379,22633,HAND WARMER UNION JACK,-1,2010-12-01 09:41:00,1.85,17850,United Kingdom\n"
    "536370,POST,POSTAGE,3,2010-12-01 08:45:00,18.00,12583,France\n"
    "536371,22632,HAND WARMER RED,2,2010-12-01 09:00:00,0,,United Kingdom\n"
)


@pytest.fixture
def orders_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "orders.csv", SMALL_ORDERS)
