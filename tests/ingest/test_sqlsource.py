"""Reading SQL databases (crmlens.ingest.sqlsource); servers only on a closed loopback port."""

from __future__ import annotations

import socket
import sqlite3
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmlens.errors import InputError
from crmlens.ingest.sqlsource import SqlSourceInfo, mask_url, sql_to_parquet

ORDERS = [
    (1, "张三", 17850.0, "2011-12-09 08:26:00", 15.3, None),
    (2, "Müller", 13047.0, None, 0.1, b"\x00\xff"),
    (3, None, None, "2011-12-10", -2.0, "😀".encode()),
]


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "crm.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE orders "
        "(id INTEGER, name TEXT, customer REAL, ts TEXT, amount REAL, extra BLOB)"
    )
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ORDERS)
    con.execute('CREATE TABLE "we""ird" (x INTEGER)')
    con.execute('INSERT INTO "we""ird" VALUES (42)')
    con.execute('CREATE TABLE "has.dot" (y TEXT)')
    con.execute("INSERT INTO \"has.dot\" VALUES ('dotted')")
    con.commit()
    con.close()
    return path


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path gives sqlite:////tmp/...


def read(path: Path) -> list[dict[str, str | None]]:
    table = pq.read_table(path)
    assert all(f.type == pa.string() for f in table.schema)
    return table.to_pylist()


def expect_error(key: str, url: str, tmp_path: Path, **kwargs) -> InputError:
    out = tmp_path / "out.parquet"
    with pytest.raises(InputError) as info:
        sql_to_parquet(url, out, **kwargs)
    err = info.value
    assert err.key == key
    assert err.message("en") != err.message("zh")
    assert not out.exists()
    return err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


def test_table(db, tmp_path):
    out = tmp_path / "out.parquet"
    info = sql_to_parquet(url_of(db), out, table="orders")
    assert info == SqlSourceInfo(
        3, ["id", "name", "customer", "ts", "amount", "extra"], f"{url_of(db)} table=orders"
    )
    assert [list(r.values()) for r in read(out)] == [
        ["1", "张三", "17850", "2011-12-09 08:26:00", "15.3", None],
        ["2", "Müller", "13047", None, "0.1", "\\x00ff"],
        ["3", None, None, "2011-12-10", "-2", "😀"],
    ]


def test_relative_path(db, tmp_path, monkeypatch):
    monkeypatch.chdir(db.parent)
    assert sql_to_parquet("sqlite:///crm.db", tmp_path / "o.parquet", table="orders").rows == 3


def test_query_with_duplicate_and_blank_column_names(db, tmp_path):
    out = tmp_path / "out.parquet"
    info = sql_to_parquet(
        url_of(db), out, query='SELECT id, id, name AS "" FROM orders WHERE id < 3;  '
    )
    assert info.columns == ["id", "id_2", "column_3"]
    assert info.description.endswith('query=SELECT id, id, name AS "" FROM orders WHERE id < 3')
    assert read(out) == [
        {"id": "1", "id_2": "1", "column_3": "张三"},
        {"id": "2", "id_2": "2", "column_3": "Müller"},
    ]


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("main.orders", "id", "1"),
        ('"main"."orders"', "id", "1"),
        ('we"ird', "x", "42"),  # a quote inside a plain name is part of the name
        ('"we""ird"', "x", "42"),
        ('"has.dot"', "y", "dotted"),
        ('main."has.dot"', "y", "dotted"),
    ],
)
def test_table_names_are_quoted_identifiers(db, tmp_path, table, column, value):
    out = tmp_path / "out.parquet"
    sql_to_parquet(url_of(db), out, table=table)
    assert read(out)[0][column] == value


def test_table_name_cannot_inject_sql(db, tmp_path):
    err = expect_error(
        "error.sql_query", url_of(db), tmp_path, table="orders; DROP TABLE orders; --"
    )
    assert "no such table" in err.message("en")
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    con.close()


def test_database_is_opened_read_only(db, tmp_path):
    err = expect_error("error.sql_query", url_of(db), tmp_path, query="DELETE FROM orders")
    assert "readonly" in err.message("en")
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    con.close()


def test_batches_and_progress(db, tmp_path):
    calls: list[tuple[int, int | None]] = []
    out = tmp_path / "out.parquet"
    info = sql_to_parquet(
        url_of(db), out, table="orders", batch_size=2, progress=lambda *a: calls.append(a)
    )
    assert info.rows == 3
    assert calls == [(2, None), (3, None)]
    assert pq.ParquetFile(out).metadata.num_row_groups == 2


def test_empty_table_writes_the_columns(db, tmp_path):
    out = tmp_path / "out.parquet"
    info = sql_to_parquet(url_of(db), out, query="SELECT id, name FROM orders WHERE 0")
    assert (info.rows, info.columns) == (0, ["id", "name"])
    assert pq.read_table(out).column_names == ["id", "name"]


def test_error_half_way_leaves_no_file(db, tmp_path):
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE big (v INTEGER)")
    con.executemany("INSERT INTO big VALUES (?)", [(1,), (2,), (-(2**63),)])
    con.commit()
    con.close()
    # abs() of the smallest integer overflows, on the third row, after a batch was written.
    err = expect_error(
        "error.sql_query", url_of(db), tmp_path, query="SELECT abs(v) FROM big", batch_size=1
    )
    assert "overflow" in err.message("en")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"table": "orders", "query": "SELECT 1"}, {"table": " ", "query": ""}]
)
def test_table_or_query(db, tmp_path, kwargs):
    err = expect_error("error.sql_table_or_query", url_of(db), tmp_path, **kwargs)
    assert "--table" in err.message("en") and db.name in err.message("zh")


def test_unknown_scheme_lists_supported_and_masks_password(tmp_path):
    err = expect_error(
        "error.sql_scheme", "oracle://scott:tiger99@db.example/crm", tmp_path, table="t"
    )
    message = err.message("en")
    assert "'oracle'" in message and "tiger99" not in message and "scott:***@" in message
    for scheme in ("sqlite:///", "postgresql://", "mysql://"):
        assert scheme in message


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgresql://bob:s3cret!@127.0.0.1:5432/crm", "psycopg", "postgres"),
        ("postgres+psycopg://bob:s3cret!@127.0.0.1/crm", "psycopg", "postgres"),
        ("mysql://bob:s3cret!@127.0.0.1:3306/crm", "pymysql", "mysql"),
    ],
)
def test_driver_missing(tmp_path, monkeypatch, url, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    err = expect_error("error.sql_driver_missing", url, tmp_path, table="orders")
    assert f"pip install 'crmlens[{extra}]'" in err.message("en")
    assert f"pip install 'crmlens[{extra}]'" in err.message("zh")
    assert "s3cret" not in err.message("en") and "bob:***@127.0.0.1" in err.message("en")


@pytest.mark.parametrize(("scheme", "module"), [("postgresql", "psycopg"), ("mysql", "pymysql")])
def test_cannot_connect_to_closed_port(tmp_path, scheme, module):
    pytest.importorskip(module)
    port = closed_port()
    url = f"{scheme}://bob:s3cret-pw@127.0.0.1:{port}/crm"
    err = expect_error("error.sql_connect", url, tmp_path, table="orders")
    message = err.message("en")
    assert f"bob:***@127.0.0.1:{port}/crm" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in err.message("zh")
    assert "refused" in message.lower() or str(port) in message


def test_sqlite_file_missing_or_not_a_database(tmp_path):
    err = expect_error("error.sql_connect", "sqlite:///no/such/file.db", tmp_path, table="t")
    assert "file.db" in err.message("en")
    assert not (tmp_path / "no").exists()  # read-only: nothing created
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    err = expect_error("error.sql_connect", url_of(junk), tmp_path, table="t")
    assert "not a database" in err.message("en")
    expect_error("error.sql_connect", "sqlite://", tmp_path, table="t")


def test_missing_table_and_bad_query(db, tmp_path):
    err = expect_error("error.sql_query", url_of(db), tmp_path, table="customers")
    assert "no such table: customers" in err.message("en") and "table=customers" in err.message(
        "zh"
    )
    err = expect_error("error.sql_query", url_of(db), tmp_path, query="SELEC id FROM orders")
    assert "syntax error" in err.message("en")


def test_statement_without_columns(db, tmp_path):
    err = expect_error("error.sql_no_columns", url_of(db), tmp_path, query="-- just a comment")
    assert "crm.db" in err.message("en")


@pytest.mark.parametrize("table", ["a..b", ".orders", "orders.", '"unterminated', '"a"x', "a.b.c"])
def test_unusable_table_names(db, tmp_path, table):
    err = expect_error("error.sql_table_name", url_of(db), tmp_path, table=table)
    assert table in err.message("en")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://bob:pa%40ss@db:5432/crm", "postgresql://bob:***@db:5432/crm"),
        ("mysql://bob@db/crm", "mysql://bob@db/crm"),
        ("sqlite:///relative/crm.db", "sqlite:///relative/crm.db"),
        (
            "postgresql://db/crm?sslmode=require&password=x1",
            "postgresql://db/crm?sslmode=require&password=***",
        ),
        ("postgresql://bob:a@b@db/crm", "postgresql://bob:***@db/crm"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked
