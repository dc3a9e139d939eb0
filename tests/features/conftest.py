"""A tiny hand-made transactions table whose features are worked out by hand in the tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from crmlens.workspace import Workspace
from crmlens.workspace.schema import DDL

AS_OF = "2024-07-01"

# order_id, customer_id, ts, product_id, category, quantity, amount, channel, is_return, line_type
ROWS = [
    ("O1", "A", "2024-01-01 10:00", "P1", "Toys", 2, 20.0, "web", False, "product"),
    ("O1", "A", "2024-01-01 10:00", "P2", "Books", 1, 10.0, "web", False, "product"),
    ("O2", "A", "2024-01-11 10:00", "P1", "Toys", 3, 30.0, "app", False, "product"),
    ("O2", "A", "2024-01-11 10:00", "POST", None, 1, 5.0, "app", False, "shipping"),
    ("C2", "A", "2024-01-15 09:00", "P1", "Toys", -1, -10.0, "app", True, "product"),
    ("O3", "A", "2024-05-01 14:00", "P3", "Garden", 1, 40.0, "web", False, "product"),
    ("O4", "A", "2024-06-20 10:00", "P2", "Books", 2, 20.0, "web", False, "product"),
    ("O5", "A", "2024-07-05 10:00", "P1", "Toys", 100, 1000.0, "web", False, "product"),
    ("O6", "B", "2024-03-01 09:00", "P1", "Toys", 1, 15.0, "store", False, "product"),
    ("O7", None, "2024-06-30 12:00", "P1", "Toys", 99, 999.0, "web", False, "product"),
    ("C8", "C", "2024-02-01 12:00", "P2", "Books", -1, -10.0, "web", True, "product"),
]


def insert_rows(con: duckdb.DuckDBPyConnection, rows=ROWS, start: int = 0) -> None:
    con.executemany(
        "INSERT INTO transactions VALUES (1, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, ?, ?, NULL, ?, ?, "
        "NULL, [])",
        [[start + i, r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], r[5], r[6], r[7],
          r[8], r[9]] for i, r in enumerate(rows)])


def add_side_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("INSERT INTO customers (source_id, source_row, customer_id, gender, birth_date, "
                "income, region, signup_date, flags) VALUES "
                "(2, 0, 'A', 'F', DATE '1990-07-02', 5000, 'East', TIMESTAMP '2023-12-01', [])")
    con.executemany(
        "INSERT INTO events (source_id, source_row, customer_id, ts, event_type, value, flags) "
        "VALUES (3, ?, ?, ?, ?, ?, [])",
        [[0, "A", datetime(2024, 2, 1), "review", 4.0],
         [1, "A", datetime(2024, 3, 1), "Rating", 2.0],
         [2, "A", datetime(2024, 3, 2), "email_open", None],
         [3, "A", datetime(2024, 4, 2), "email_click", 9.0],
         [4, "A", datetime(2024, 8, 1), "review", 5.0]])


@pytest.fixture
def con():
    """An in-memory database with the workspace tables and the tiny transactions."""
    c = duckdb.connect()
    for ddl in DDL.values():
        c.execute(ddl)
    insert_rows(c)
    yield c
    c.close()


@pytest.fixture
def tiny_ws(tmp_path: Path) -> Workspace:
    """A workspace holding the tiny transactions (written straight into its tables)."""
    ws = Workspace(tmp_path / "ws").init()
    c = duckdb.connect(str(ws.db_path))
    insert_rows(c)
    add_side_tables(c)
    c.close()
    return ws
