"""Cell values as text, and the all-string Parquet sink shared by the Excel and SQL readers.

Workbooks and databases hand us typed values (floats, datetimes, Decimals ...). Every source is
staged as strings so that typing happens once, in the cleaning stage, with the same rules for a
CSV, a sheet or a table: these helpers turn a value into the canonical text that a CSV export of
the same data would most likely contain, without losing information.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["StringParquetSink", "format_cell", "unique_names"]


def format_cell(value: Any, *, midnight_as_date: bool = False) -> str | None:
    """Render one cell value as text.

    Parameters
    ----------
    value : Any
        A value from openpyxl or a DB-API driver.
    midnight_as_date : bool
        Render a datetime at exactly 00:00:00 as a date. openpyxl returns ``datetime`` even for
        cells formatted as plain dates, so the Excel reader turns this on.

    Returns
    -------
    str or None
        ``None`` for an empty cell (``None`` or ``""``); otherwise datetimes as
        ``YYYY-MM-DD HH:MM:SS`` (fractional seconds and a UTC offset only when present), dates as
        ``YYYY-MM-DD``, integral floats without ``.0``, other floats with ``repr``, Decimals in
        plain positional notation, booleans as ``true``/``false``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, decimal.Decimal):
        return _format_decimal(value)
    if isinstance(value, dt.datetime):
        return _format_datetime(value, midnight_as_date)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return _format_time(value)
    if isinstance(value, dt.timedelta):
        return _format_timedelta(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _format_bytes(bytes(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _format_float(value: float) -> str:
    # 17850.0 -> "17850": spreadsheets store every number as a float, and an ID or a quantity
    # must read back the way the user typed it.
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def _format_decimal(value: decimal.Decimal) -> str:
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return str(int(value))
    # normalize() drops trailing zeros; "f" avoids exponent notation such as 1E-7.
    return format(value.normalize(), "f")


def _fraction(microsecond: int) -> str:
    return f".{microsecond:06d}".rstrip("0") if microsecond else ""


def _format_datetime(value: dt.datetime, midnight_as_date: bool) -> str:
    if midnight_as_date and value.tzinfo is None and value.time() == dt.time(0):
        return value.date().isoformat()
    text = value.replace(tzinfo=None, microsecond=0).isoformat(sep=" ")
    text += _fraction(value.microsecond)
    offset = value.utcoffset()
    if offset is not None:
        text += _format_offset(offset)
    return text


def _format_offset(offset: dt.timedelta) -> str:
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _format_time(value: dt.time) -> str:
    return value.replace(tzinfo=None, microsecond=0).isoformat() + _fraction(value.microsecond)


def _format_timedelta(value: dt.timedelta) -> str:
    # MySQL TIME columns arrive as timedelta and may exceed 24 h or be negative.
    micros = value // dt.timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, micro = divmod(abs(micros), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}{_fraction(micro)}"


def _format_bytes(value: bytes) -> str:
    # Some tools store text in BLOB columns; real binary is shown the way PostgreSQL shows bytea.
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return text
    return "\\x" + value.hex()


def unique_names(raw: Iterable[str | None]) -> list[str]:
    """Make column names usable: blanks become ``column_<n>``, duplicates get ``_2``, ``_3`` ...

    Duplicates are detected case-insensitively because DuckDB identifiers are case-insensitive
    (``Amount`` and ``amount`` would collide there).

    Parameters
    ----------
    raw : iterable of str or None
        Names in column order; ``n`` in ``column_<n>`` is the 1-based column position.

    Returns
    -------
    list of str
        Unique, non-blank names of the same length.
    """
    names = [(name or "").strip() or f"column_{i}" for i, name in enumerate(raw, start=1)]
    taken = {name.casefold() for name in names}
    seen: set[str] = set()
    result: list[str] = []
    for name in names:
        candidate = name
        if candidate.casefold() in seen:
            n = 2
            while f"{name}_{n}".casefold() in taken:
                n += 1
            candidate = f"{name}_{n}"
            taken.add(candidate.casefold())
        seen.add(candidate.casefold())
        result.append(candidate)
    return result


class StringParquetSink:
    """Write rows of text cells to a Parquet file in batches, every column a nullable string.

    The file is written only when the first batch is flushed (or on :meth:`close`), and removed
    again if the writer is closed after an error, so a failed ingest leaves nothing half-written.

    Parameters
    ----------
    out_path : Path
        Destination Parquet file.
    columns : sequence of str
        Column names (already unique).
    """

    def __init__(self, out_path: Path, columns: Sequence[str]) -> None:
        self.out_path = Path(out_path)
        self.columns = list(columns)
        self.schema = pa.schema([pa.field(name, pa.string()) for name in self.columns])
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, rows: Sequence[Sequence[str | None]]) -> None:
        """Append a batch of rows, each exactly as long as ``columns``."""
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.out_path, self.schema, compression="zstd")
        if not rows:
            return
        # zip(*rows) transposes row tuples into columns in C, much faster than per-cell appends.
        arrays = [pa.array(col, type=pa.string()) for col in zip(*rows, strict=True)]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += len(rows)

    def close(self, *, failed: bool = False) -> None:
        """Finish the file; with ``failed=True`` delete whatever was written."""
        if self._writer is None and not failed:
            self._writer = pq.ParquetWriter(self.out_path, self.schema, compression="zstd")
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if failed:
            self.out_path.unlink(missing_ok=True)
