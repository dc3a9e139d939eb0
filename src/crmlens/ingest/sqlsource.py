"""Reading a table or a query from a SQL database into a Parquet file of string columns.

Supported URLs:

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (standard library, opened
  read-only);
* ``postgresql://user:password@host:port/database`` (``postgres://`` too; needs psycopg 3:
  ``pip install 'crmlens[postgres]'``);
* ``mysql://user:password@host:port/database`` (needs PyMySQL: ``pip install 'crmlens[mysql]'``).

A ``+driver`` suffix as in SQLAlchemy URLs (``postgresql+psycopg://``) is accepted and ignored.
Every session is read-only (SQLite ``mode=ro``, ``READ ONLY`` transactions elsewhere), so a
query given by the user cannot change the CRM database. Rows are streamed with
``fetchmany`` (server-side cursors for PostgreSQL and MySQL) so memory stays flat.
"""

from __future__ import annotations

import importlib
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from crmlens.errors import InputError
from crmlens.ingest.cellformat import StringParquetSink, format_cell, unique_names

__all__ = ["SUPPORTED_URLS", "SqlSourceInfo", "mask_url", "sql_to_parquet"]

log = logging.getLogger(__name__)

#: The URL forms we accept, as shown to the user.
SUPPORTED_URLS = (
    "sqlite:///path/to/file.db",
    "postgresql://user:password@host:port/database",
    "mysql://user:password@host:port/database",
)
_CONNECT_TIMEOUT = 10  # seconds; an unreachable host must not hang the CLI
_SECRET_PARAMS = {"password", "pass", "pwd", "passwd"}

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class SqlSourceInfo:
    """What :func:`sql_to_parquet` wrote.

    Attributes
    ----------
    rows : int
        Rows written.
    columns : list of str
        Column names, unique and non-blank.
    description : str
        ``<url with password masked> table=<name>`` or ``... query=<query>``.
    """

    rows: int
    columns: list[str]
    description: str


def sql_to_parquet(
    url: str,
    out_path: Path,
    *,
    table: str | None = None,
    query: str | None = None,
    batch_size: int = 50_000,
    progress: Progress | None = None,
) -> SqlSourceInfo:
    """Stream a table or the result of a query into a Parquet file with all columns as strings.

    Parameters
    ----------
    url : str
        Database URL (see the module docstring).
    out_path : Path
        Parquet file to write; removed again if reading fails half-way.
    table : str, optional
        Table to read, ``table`` or ``schema.table``; a part in double quotes (or backticks)
        may itself contain dots. Quoted safely as identifiers.
    query : str, optional
        A single SELECT statement. Exactly one of ``table`` and ``query`` must be given.
    batch_size : int
        Rows fetched and written per step.
    progress : callable, optional
        Called as ``progress(rows_written, None)`` after each batch (the total is unknown).

    Returns
    -------
    SqlSourceInfo

    Raises
    ------
    InputError
        ``error.sql_table_or_query``, ``error.sql_scheme``, ``error.sql_table_name``,
        ``error.sql_driver_missing``, ``error.sql_connect``, ``error.sql_query``,
        ``error.sql_no_columns``.
    """
    masked = mask_url(url)
    table = table if table and table.strip() else None
    query = query if query and query.strip() else None
    if (table is None) == (query is None):
        raise InputError("error.sql_table_or_query", source=masked)
    dialect = _dialect(url, masked)
    if table is not None:
        parts = _split_table(table)
        if parts is None or len(parts) > dialect.max_parts:
            raise InputError("error.sql_table_name", url=masked, table=table)
        sql = f"SELECT * FROM {'.'.join(dialect.quote(p) for p in parts)}"
        description = f"{masked} table={table}"
    else:
        sql = query.strip().rstrip(";").strip() if query else ""
        description = f"{masked} query={' '.join(sql.split())}"
    conn = dialect.connect()
    try:
        rows, columns = _copy(dialect, conn, sql, description, out_path, batch_size, progress)
    finally:
        _close_quietly(conn)
    log.info("read %d rows x %d columns from %s", rows, len(columns), description)
    return SqlSourceInfo(rows, columns, description)


def mask_url(url: str) -> str:
    """``url`` with the password (in the user info or a ``password=`` parameter) as ``***``.

    Parameters
    ----------
    url : str

    Returns
    -------
    str
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
    masked = url
    if password is not None:
        # Only the secret is replaced: urlunsplit would also rewrite sqlite:///x as sqlite:/x.
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        masked = masked.replace(parts.netloc, f"{user}:***@{hostport}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*/:"
            )
            masked = masked.replace("?" + parts.query, "?" + query, 1)
    return masked


# --------------------------------------------------------------------------------------------
# Table names
# --------------------------------------------------------------------------------------------

_CLOSING = {'"': '"', "`": "`", "[": "]"}


def _split_table(name: str) -> list[str] | None:
    """Split ``schema.table`` into parts; a part starting with a quote runs to its closing quote.

    Returns None for an unusable name (empty part, unterminated quote, text after a quote).
    """
    parts: list[str] = []
    text, i = name.strip(), 0
    while i < len(text):
        if text[i] in _CLOSING:
            part, i = _quoted_part(text, i)
            if part is None:
                return None
        else:
            end = text.find(".", i)
            end = len(text) if end < 0 else end
            part, i = text[i:end].strip(), end
        parts.append(part)
        if i < len(text):
            if text[i] != "." or i == len(text) - 1:
                return None
            i += 1
    if not parts or any(not p.strip() for p in parts):
        return None
    return parts


def _quoted_part(text: str, start: int) -> tuple[str | None, int]:
    close = _CLOSING[text[start]]
    buf: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == close:
            if close != "]" and text[i + 1 : i + 2] == close:  # doubled quote = literal quote
                buf.append(close)
                i += 2
                continue
            return "".join(buf), i + 1
        buf.append(text[i])
        i += 1
    return None, i


# --------------------------------------------------------------------------------------------
# Dialects
# --------------------------------------------------------------------------------------------


class _Dialect:
    """How to connect to one kind of database and how it quotes identifiers."""

    max_parts = 2
    quote_char = '"'

    def __init__(self, url: str, masked: str) -> None:
        self.url = url
        self.masked = masked
        try:
            self.password = unquote(urlsplit(url).password or "")
        except ValueError:
            self.password = ""

    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def connect(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def cursor(self, conn: Any) -> Any:
        return conn.cursor()

    def errors(self) -> tuple[type[BaseException], ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    def reason(self, exc: BaseException) -> str:
        """One line of the driver's message, with the password scrubbed just in case."""
        text = " ".join(str(exc).split()).rstrip(" .") or type(exc).__name__
        if len(self.password) >= 3:
            text = text.replace(self.password, "***")
        return text[:500]

    def connect_error(self, exc: BaseException) -> InputError:
        return InputError("error.sql_connect", url=self.masked, reason=self.reason(exc))

    def _import(self, module: str, driver: str, extra: str) -> Any:
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise InputError(
                "error.sql_driver_missing", url=self.masked, driver=driver, extra=extra
            ) from exc


class _Sqlite(_Dialect):
    def __init__(self, url: str, masked: str) -> None:
        super().__init__(url, masked)
        self.path = _sqlite_path(url)

    def connect(self) -> Any:
        if self.path is None or not self.path.is_file():
            reason = (
                "no database file given"
                if self.path is None
                else f"no such file: {self.path.resolve()}"
            )
            raise InputError("error.sql_connect", url=self.masked, reason=reason)
        # A URI with mode=ro: the file is never created, locked for writing or modified.
        uri = self.path.resolve().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # "not a database"?
        except sqlite3.Error as exc:
            raise self.connect_error(exc) from exc
        return conn

    def errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)


def _sqlite_path(url: str) -> Path | None:
    # SQLAlchemy's convention: sqlite:///relative.db and sqlite:////absolute.db.
    rest = url.split(":", 1)[1]
    rest = rest.split("?", 1)[0]
    if rest.startswith("///"):
        rest = rest[3:]
    elif rest.startswith("//"):
        rest = rest[2:]
    rest = unquote(rest)
    return Path(rest) if rest else None


class _Postgres(_Dialect):
    max_parts = 3

    def connect(self) -> Any:
        psycopg = self._import("psycopg", "psycopg", "postgres")
        try:
            conn = psycopg.connect(_base_scheme_url(self.url), connect_timeout=_CONNECT_TIMEOUT)
            conn.read_only = True  # every transaction is BEGIN READ ONLY
        except psycopg.Error as exc:
            raise self.connect_error(exc) from exc
        return conn

    def cursor(self, conn: Any) -> Any:
        return conn.cursor(name="crmlens_read")  # server-side: rows arrive per fetchmany

    def errors(self) -> tuple[type[BaseException], ...]:
        return (importlib.import_module("psycopg").Error,)


class _Mysql(_Dialect):
    quote_char = "`"

    def connect(self) -> Any:
        pymysql = self._import("pymysql", "PyMySQL", "mysql")
        parts = urlsplit(self.url)
        try:
            conn = pymysql.connect(
                host=parts.hostname or "localhost",
                port=parts.port or 3306,
                user=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
                database=unquote(parts.path.lstrip("/")) or None,
                charset="utf8mb4",
                connect_timeout=_CONNECT_TIMEOUT,
                cursorclass=pymysql.cursors.SSCursor,  # unbuffered: rows arrive per fetchmany
            )
        except (pymysql.err.MySQLError, ValueError) as exc:
            raise self.connect_error(exc) from exc
        try:
            with conn.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
        except pymysql.err.MySQLError as exc:  # very old servers; the query still runs
            log.warning("%s: could not start a read-only transaction: %s", self.masked, exc)
        return conn

    def errors(self) -> tuple[type[BaseException], ...]:
        return (importlib.import_module("pymysql").err.MySQLError,)


_DIALECTS: dict[str, type[_Dialect]] = {
    "sqlite": _Sqlite,
    "postgresql": _Postgres,
    "postgres": _Postgres,
    "mysql": _Mysql,
}


def _base_scheme_url(url: str) -> str:
    scheme, sep, rest = url.partition(":")
    return scheme.split("+", 1)[0].lower() + sep + rest


def _dialect(url: str, masked: str) -> _Dialect:
    scheme = url.partition(":")[0] if ":" in url else ""
    base = scheme.split("+", 1)[0].lower()
    if base not in _DIALECTS:
        raise InputError(
            "error.sql_scheme",
            url=masked,
            scheme=scheme or url,
            supported=", ".join(SUPPORTED_URLS),
        )
    return _DIALECTS[base](url, masked)


# --------------------------------------------------------------------------------------------
# Copying
# --------------------------------------------------------------------------------------------


def _close_quietly(obj: Any) -> None:
    try:
        obj.close()
    except Exception as exc:  # closing after an error must not hide that error
        log.debug("ignoring error on close: %s", exc)


def _copy(
    dialect: _Dialect,
    conn: Any,
    sql: str,
    description: str,
    out_path: Path,
    batch_size: int,
    progress: Progress | None,
) -> tuple[int, list[str]]:
    errors = dialect.errors()

    def query_error(exc: BaseException) -> InputError:
        return InputError("error.sql_query", source=description, reason=dialect.reason(exc))

    cursor = dialect.cursor(conn)
    try:
        try:
            cursor.execute(sql)
            described = cursor.description
        except errors as exc:
            raise query_error(exc) from exc
        if not described:
            raise InputError("error.sql_no_columns", source=description)
        columns = unique_names(str(d[0]) if d[0] is not None else None for d in described)
        sink = StringParquetSink(Path(out_path), columns)
        try:
            while True:
                try:
                    rows = cursor.fetchmany(max(batch_size, 1))  # 0 would read nothing
                except errors as exc:
                    raise query_error(exc) from exc
                if not rows:
                    break
                sink.write([[format_cell(v) for v in row] for row in rows])
                if progress is not None:
                    progress(sink.rows, None)
            sink.close()
        except BaseException:
            sink.close(failed=True)
            raise
    finally:
        _close_quietly(cursor)
    return sink.rows, columns
