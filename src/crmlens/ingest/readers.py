"""Read a source into a raw workspace table, numbering every row.

Every format ends up as one DuckDB table ``raw_<kind>_<source_id>`` holding the source's
columns as they were plus ``_row`` (the 1-based data row in the source). CSV is read as text
(so ``007`` stays ``007`` and a bad date is a rejected row, not a failed load); Parquet and JSON
keep their types. Excel and SQL sources are streamed to a temporary Parquet file first.
CSV lines the parser cannot split are recorded as ``malformed_line`` rejections.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from crmlens.clean.expressions import RawColumn, lit
from crmlens.errors import InputError
from crmlens.progress import NO_PROGRESS, Progress, watch_query
from crmlens.workspace.store import quote_ident

log = logging.getLogger(__name__)

EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".tab": "csv", ".txt": "csv", ".dat": "csv",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "xls",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "json", ".ndjson": "json", ".json": "json",
}
SQL_SCHEMES = ("sqlite:", "postgresql:", "postgres:", "mysql:")


@dataclass(frozen=True)
class SourceSpec:
    """Where a source comes from and how to read it."""

    location: str           # absolute path, or URL (password masked) + table/query
    name: str               # short name for people: file name or table
    format: str             # csv, excel, parquet, json, sql
    path: Path | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    sheet: str | int | None = None


def resolve_source(
    source: str | Path, *, table: str | None = None, query: str | None = None,
    sheet: str | int | None = None,
) -> SourceSpec:
    """Work out the format of ``source`` (a path or a database URL) and check it exists."""
    text = str(source)
    if text.lower().startswith(SQL_SCHEMES) or (table or query):
        if not text.lower().startswith(SQL_SCHEMES):
            raise InputError("error.sql_needs_url", source=text)
        from crmlens.ingest.sqlsource import mask_url

        what = table or "query"
        return SourceSpec(location=f"{mask_url(text)}#{table or query}", name=what,
                          format="sql", url=text, table=table, query=query)
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError("error.file_missing", path=text)
    if path.is_dir():
        raise InputError("error.file_is_dir", path=text)
    fmt = EXTENSIONS.get(path.suffix.lower(), "csv")
    if fmt == "xls":
        raise InputError("error.excel_xls", path=text)
    if sheet is not None and fmt != "excel":
        raise InputError("error.sheet_not_excel", path=text)
    return SourceSpec(location=str(path.resolve()), name=path.name, format=fmt, path=path,
                      sheet=sheet)


@dataclass
class RawStage:
    """The raw table made from a source."""

    table: str
    columns: list[RawColumn]
    rows_read: int
    malformed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


def _describe(con: duckdb.DuckDBPyConnection, table: str) -> list[RawColumn]:
    rows = con.execute(f"DESCRIBE {table}").fetchall()
    return [RawColumn(r[0], r[1]) for r in rows if r[0] != "_row"]


def _read_failed(spec: SourceSpec, exc: duckdb.Error) -> InputError:
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return InputError("error.read_failed", path=spec.location, detail=detail)


def stage_raw(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    table: str,
    *,
    source_id: int,
    kind: str,
    tmpdir: Path,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> RawStage:
    """Create ``table`` from the source; CSV parse failures go straight to ``rejected``."""
    options: dict[str, Any] = {}
    if spec.format == "csv":
        return _stage_csv(con, spec, table, source_id=source_id, kind=kind, tmpdir=tmpdir,
                          encoding=encoding, delimiter=delimiter, progress=progress)
    if encoding or delimiter:
        raise InputError("error.text_options_not_text", path=spec.location, format=spec.format)
    path: Path
    if spec.format == "excel":
        from crmlens.ingest.excel import excel_to_parquet

        progress.stage("progress.reading_excel", name=spec.name)
        info = excel_to_parquet(spec.path, tmpdir / "sheet.parquet", sheet=spec.sheet)
        options["sheet"] = info.sheet
        path = tmpdir / "sheet.parquet"
    elif spec.format == "sql":
        from crmlens.ingest.sqlsource import sql_to_parquet

        progress.stage("progress.reading_sql", name=spec.name)
        sql_to_parquet(spec.url, tmpdir / "sql.parquet", table=spec.table, query=spec.query)
        options.update({"table": spec.table, "query": spec.query})
        path = tmpdir / "sql.parquet"
    else:
        path = spec.path
    progress.stage("progress.reading", name=spec.name)
    try:
        with watch_query(con, progress):
            if spec.format == "json":
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_json(?, records = true)",
                            [str(path)])
                _number_rows(con, table)
            else:
                con.execute(
                    f"CREATE TABLE {table} AS SELECT * EXCLUDE (file_row_number), "
                    f"file_row_number + 1 AS _row FROM read_parquet(?, file_row_number = true)",
                    [str(path)],
                )
    except duckdb.Error as exc:
        raise _read_failed(spec, exc) from None
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return RawStage(table=table, columns=_describe(con, table), rows_read=int(rows),
                    options=options)


def _stage_csv(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, table: str, *, source_id: int, kind: str,
    tmpdir: Path, encoding: str | None, delimiter: str | None, progress: Progress,
) -> RawStage:
    from crmlens.ingest.textfile import sniff_text_file, transcode_to_utf8

    assert spec.path is not None
    fmt = sniff_text_file(spec.path, encoding=encoding, delimiter=delimiter)
    read_path, duck_encoding = spec.path, fmt.duckdb_encoding
    if duck_encoding is None:
        # DuckDB reads UTF-8/UTF-16/Latin-1 itself; GBK and friends are streamed to UTF-8.
        progress.stage("progress.transcoding", name=spec.name, encoding=fmt.encoding)
        read_path = tmpdir / "utf8.csv"
        transcode_to_utf8(spec.path, fmt.encoding, read_path,
                          progress=lambda done, total: progress.fraction(done / max(total, 1)))
        duck_encoding = "utf-8"
    options = {"encoding": fmt.encoding, "delimiter": fmt.delimiter}
    progress.stage("progress.reading", name=spec.name)
    con.execute("DROP TABLE IF EXISTS crm_rej_errors; DROP TABLE IF EXISTS crm_rej_scans")
    scan = (
        f"read_csv(?, delim = {lit(fmt.delimiter)}, header = true, all_varchar = true, "
        f"quote = '\"', escape = '\"', encoding = {lit(duck_encoding)}, skip = 0, "
        "store_rejects = true, rejects_table = 'crm_rej_errors', "
        "rejects_scan = 'crm_rej_scans', max_line_size = 10000000)"
    )
    try:
        with watch_query(con, progress):
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM {scan}", [str(read_path)])
    except duckdb.Error as exc:
        raise _read_failed(spec, exc) from None
    # One rejection per bad line, numbered as a data row (line 1 is the header).
    bad = con.execute("""
        SELECT line - 1 AS pos, any_value(csv_line) AS text,
               string_agg(DISTINCT error_type, ', ') AS errors
        FROM crm_rej_errors GROUP BY line ORDER BY line
    """).fetchall()
    con.execute("DROP TABLE IF EXISTS crm_rej_errors; DROP TABLE IF EXISTS crm_rej_scans")
    _number_rows(con, table)
    if bad:
        _number_around_bad_lines(con, table, [int(b[0]) for b in bad])
        con.executemany(
            "INSERT INTO rejected VALUES (?, ?, ?, 'malformed_line', ?, ?)",
            [(source_id, kind, int(pos), errors, _json_line(text)) for pos, text, errors in bad],
        )
    good = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return RawStage(table=table, columns=_describe(con, table), rows_read=int(good) + len(bad),
                    malformed=len(bad), options=options)


def _number_rows(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Add ``_row``: 1, 2, 3 ... in the order the rows were read.

    Tables keep insertion order, but rows written inside an open transaction have row ids
    offset by a large constant, so we number from the smallest id rather than from zero.
    """
    con.execute(f"ALTER TABLE {table} ADD COLUMN _row BIGINT")
    lo, hi, n = con.execute(f"SELECT min(rowid), max(rowid), count(*) FROM {table}").fetchone()
    if n and hi - lo + 1 != n:  # never seen; number by row id order to stay correct
        con.execute(f"""UPDATE {table} SET _row = x.rn FROM (
            SELECT rowid AS rid, row_number() OVER (ORDER BY rowid) AS rn FROM {table}) x
            WHERE {table}.rowid = x.rid""")
    elif n:
        con.execute(f"UPDATE {table} SET _row = rowid - {int(lo)} + 1")


def _json_line(text: str | None) -> str:
    import json

    return json.dumps({"line": text}, ensure_ascii=False)


def _number_around_bad_lines(con: duckdb.DuckDBPyConnection, table: str, bad: list[int]) -> None:
    """Give good rows their position in the file when some lines were malformed.

    The k-th good row sits at k + (number of bad rows before it). With bad positions
    p_1 < p_2 < ..., the i-th bad row comes before good row k exactly when p_i - i < k.
    """
    gaps = [(p - i, i) for i, p in enumerate(sorted(bad), start=1)]
    con.execute("CREATE OR REPLACE TEMP TABLE _crm_gaps (q BIGINT, n BIGINT)")
    con.executemany("INSERT INTO _crm_gaps VALUES (?, ?)", gaps)
    con.execute(f"""
        UPDATE {table} SET _row = _row + coalesce((
            SELECT max(n) FROM _crm_gaps WHERE q < {table}._row), 0)
    """)
    con.execute("DROP TABLE _crm_gaps")


def sample_values(con: duckdb.DuckDBPyConnection, table: str, columns: list[RawColumn],
                  n: int = 2000) -> dict[str, list[object]]:
    """A repeatable sample of non-null values per column, for role detection."""
    out: dict[str, list[object]] = {}
    # From the first 200k rows: enough to see every column's shape, cheap on 10M rows.
    rows = con.execute(
        f"SELECT * EXCLUDE (_row) FROM (SELECT * FROM {table} LIMIT 200000) "
        f"USING SAMPLE reservoir({n} ROWS) REPEATABLE (7)"
    ).fetchall()
    for i, col in enumerate(columns):
        out[col.name] = [r[i] for r in rows if r[i] is not None]
    return out


def raw_table_name(kind: str, source_id: int) -> str:
    return f"raw_{kind}_{source_id}"
