"""Reading .xlsx workbooks: one sheet streamed into a Parquet file of string columns.

openpyxl's read-only mode parses the sheet XML as a stream, so memory stays flat however long
the sheet is. Every value is written as text (see :mod:`crmlens.ingest.cellformat`) so the
cleaning stage types workbook columns with exactly the rules it uses for CSV files.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from crmlens.errors import InputError
from crmlens.ingest.cellformat import StringParquetSink, format_cell, unique_names

__all__ = ["BATCH_ROWS", "SheetInfo", "excel_to_parquet", "list_sheets"]

log = logging.getLogger(__name__)

#: Rows per Parquet write; the column range is settled from the header and the first batch.
BATCH_ROWS = 50_000

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class SheetInfo:
    """What :func:`excel_to_parquet` wrote.

    Attributes
    ----------
    sheet : str
        Name of the sheet read.
    rows : int
        Data rows written (the header excluded, internal blank rows included).
    columns : list of str
        Column names, unique and non-blank.
    header_row : int
        1-based sheet row of the header: data row ``i`` (0-based) is sheet row
        ``header_row + 1 + i``, which lets messages point at the row in Excel.
    """

    sheet: str
    rows: int
    columns: list[str] = field(default_factory=list)
    header_row: int = 1


def list_sheets(path: Path) -> list[str]:
    """Names of the worksheets of an .xlsx workbook, in workbook order (chart sheets left out).

    Parameters
    ----------
    path : Path
        The workbook.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        ``error.file_unreadable``, ``error.file_empty``, ``error.excel_xls``,
        ``error.excel_corrupt``.
    """
    path = Path(path)
    with _Workbook(path) as wb:
        return [ws.title for ws in wb.worksheets]


def excel_to_parquet(
    path: Path,
    out_path: Path,
    *,
    sheet: str | int | None = None,
    progress: Progress | None = None,
) -> SheetInfo:
    """Stream one sheet of an .xlsx workbook into a Parquet file with all columns as strings.

    The header is the first non-empty row; blank header cells become ``column_<n>`` and
    duplicates get ``_2``, ``_3`` .... Blank rows inside the data are kept as all-null rows so
    every sheet row is accounted for; blank rows at the end are dropped.

    Parameters
    ----------
    path : Path
        The workbook (.xlsx or .xlsm; the extension is not checked).
    out_path : Path
        Parquet file to write; removed again if reading fails half-way.
    sheet : str or int, optional
        Sheet name, or 0-based position (a string of digits that is not a sheet name counts
        as a position too). Default: the first worksheet.
    progress : callable, optional
        Called as ``progress(rows_written, estimated_total_or_None)`` after each batch.

    Returns
    -------
    SheetInfo

    Raises
    ------
    InputError
        ``error.file_unreadable``, ``error.file_empty``, ``error.excel_xls``,
        ``error.excel_corrupt``, ``error.excel_sheet_missing``, ``error.excel_sheet_empty``,
        ``error.excel_cells_outside``.
    """
    path, out_path = Path(path), Path(out_path)
    with _Workbook(path) as wb:
        ws = _select_sheet(path, wb, sheet)
        # The stored dimension may be stale (some exporters write "A1"), and openpyxl would
        # then cut rows short; read rows at their natural length instead.
        estimate = ws.max_row
        ws.reset_dimensions()
        info = _SheetReader(path, ws.title, _rows(path, ws)).write(out_path, estimate, progress)
    log.info("read %d rows x %d columns from %s [%s]", info.rows, len(info.columns), path, ws.title)
    return info


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def _corrupt(path: Path, exc: BaseException) -> InputError:
    reason = str(exc).strip() or type(exc).__name__
    return InputError("error.excel_corrupt", path=str(path), reason=reason)


class _Workbook:
    """Context manager around a read-only workbook and the file handle it streams from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self._wb: Any = None

    def __enter__(self) -> Any:
        self._fh = self._open_checked()
        try:
            with warnings.catch_warnings():
                # openpyxl warns about unsupported extensions (data validation, slicers ...)
                # that do not affect cell values.
                warnings.simplefilter("ignore")
                # A file object rather than the path: openpyxl rejects names not ending in
                # .xlsx, and callers may stage uploads under other names.
                self._wb = load_workbook(self._fh, read_only=True, data_only=True)
        except Exception as exc:  # zipfile, XML and openpyxl errors alike mean "not readable"
            self._fh.close()
            raise _corrupt(self.path, exc) from exc
        return self._wb

    def __exit__(self, *exc_info: object) -> None:
        if self._wb is not None:
            self._wb.close()
        if self._fh is not None:
            self._fh.close()

    def _open_checked(self) -> IO[bytes]:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed in __exit__
        except OSError as exc:
            raise InputError(
                "error.file_unreadable", path=str(self.path), reason=exc.strerror or str(exc)
            ) from exc
        head = fh.read(8)
        fh.seek(0)
        problem = None
        if not head:
            problem = InputError("error.file_empty", path=str(self.path))
        elif head == _OLE2_MAGIC:
            problem = InputError("error.excel_xls", path=str(self.path))
        elif not zipfile.is_zipfile(fh):
            problem = InputError(
                "error.excel_corrupt", path=str(self.path), reason="not a ZIP-based .xlsx file"
            )
        if problem is not None:
            fh.close()
            raise problem
        fh.seek(0)
        return fh


def _describe_sheets(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}' ({i})" for i, name in enumerate(names)) or "-"


def _select_sheet(path: Path, wb: Any, sheet: str | int | None) -> Any:
    sheets = wb.worksheets
    names = [ws.title for ws in sheets]
    index = _sheet_index(names, sheet)
    if index is None:
        raise InputError(
            "error.excel_sheet_missing",
            path=str(path),
            sheet=str(sheet if sheet is not None else 0),
            sheets=_describe_sheets(names),
        )
    return sheets[index]


def _sheet_index(names: list[str], sheet: str | int | None) -> int | None:
    if not names:
        return None
    if sheet is None:
        return 0
    if isinstance(sheet, bool):
        return None
    if isinstance(sheet, int):
        return sheet if 0 <= sheet < len(names) else None
    if sheet in names:
        return names.index(sheet)
    # Tolerate what a shell or a copy-paste adds: surrounding spaces, different case.
    folded = [
        i for i, name in enumerate(names) if name.strip().casefold() == sheet.strip().casefold()
    ]
    if len(folded) == 1:
        return folded[0]
    if sheet.strip().isdigit():
        return _sheet_index(names, int(sheet))
    return None


def _rows(path: Path, ws: Any) -> Iterator[Sequence[Any]]:
    """The sheet's rows; a parse error half-way through means a damaged file."""
    iterator = ws.iter_rows(values_only=True)
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise _corrupt(path, exc) from exc
        yield row


# --------------------------------------------------------------------------------------------
# Converting
# --------------------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or value == ""


def _first_filled(row: Sequence[Any]) -> int | None:
    return next((i for i, v in enumerate(row) if not _is_blank(v)), None)


def _last_filled(row: Sequence[Any]) -> int | None:
    return next((i for i in range(len(row) - 1, -1, -1) if not _is_blank(row[i])), None)


class _SheetReader:
    """Turns the raw rows of one sheet into batches of formatted text rows."""

    def __init__(self, path: Path, sheet: str, rows: Iterator[Sequence[Any]]) -> None:
        self.path = path
        self.sheet = sheet
        self.rows = rows
        self.row_number = 0  # 1-based sheet row of the last row read
        self.left = 0
        self.width = 0

    def write(self, out_path: Path, estimate: int | None, progress: Progress | None) -> SheetInfo:
        header, header_row = self._header()
        first = self._take(BATCH_ROWS)
        self._settle_columns(header, first)
        columns = unique_names(format_cell(v, midnight_as_date=True) for v in self._window(header))
        # The stored dimension is only an estimate (and may be stale): never report a total
        # smaller than what has been written already.
        total = estimate - header_row if estimate and estimate > header_row else None
        sink = StringParquetSink(out_path, columns)
        try:
            self._write_all(sink, first, total, progress)
            sink.close()
        except BaseException:
            sink.close(failed=True)
            raise
        if progress is not None:
            progress(sink.rows, sink.rows)
        return SheetInfo(self.sheet, sink.rows, columns, header_row)

    def _next(self) -> Sequence[Any] | None:
        row = next(self.rows, None)
        if row is not None:
            self.row_number += 1
        return row

    def _header(self) -> tuple[Sequence[Any], int]:
        while (row := self._next()) is not None:
            if _first_filled(row) is not None:
                return row, self.row_number
        raise InputError("error.excel_sheet_empty", path=str(self.path), sheet=self.sheet)

    def _take(self, limit: int) -> list[tuple[int, Sequence[Any]]]:
        taken = []
        while len(taken) < limit and (row := self._next()) is not None:
            taken.append((self.row_number, row))
        return taken

    def _settle_columns(
        self, header: Sequence[Any], first: list[tuple[int, Sequence[Any]]]
    ) -> None:
        # The table spans the header, widened by any values the first batch has beside it
        # (a column of notes without a header); values outside it later are an error.
        firsts = [_first_filled(header)] + [_first_filled(row) for _, row in first]
        lasts = [_last_filled(header)] + [_last_filled(row) for _, row in first]
        self.left = min(i for i in firsts if i is not None)
        self.width = max(i for i in lasts if i is not None) - self.left + 1

    def _window(self, row: Sequence[Any]) -> list[Any]:
        cells = list(row[self.left : self.left + self.width])
        cells.extend([None] * (self.width - len(cells)))
        return cells

    def _check_outside(self, number: int, row: Sequence[Any]) -> None:
        outside = [i for i, v in enumerate(row[: self.left]) if not _is_blank(v)]
        right = self.left + self.width
        outside += [right + i for i, v in enumerate(row[right:]) if not _is_blank(v)]
        if outside:
            raise InputError(
                "error.excel_cells_outside",
                path=str(self.path),
                sheet=self.sheet,
                cell=f"{get_column_letter(outside[0] + 1)}{number}",
                columns=self.width,
            )

    def _format(self, number: int, row: Sequence[Any]) -> list[str | None]:
        if len(row) > self.left + self.width or self.left:
            self._check_outside(number, row)
        return [format_cell(v, midnight_as_date=True) for v in self._window(row)]

    def _write_all(
        self,
        sink: StringParquetSink,
        first: list[tuple[int, Sequence[Any]]],
        total: int | None,
        progress: Progress | None,
    ) -> None:
        batch: list[list[str | None]] = []
        blanks = 0  # blank rows held back until a filled row follows (trailing ones are dropped)
        pending = iter(first)
        while True:
            item = next(pending, None)
            if item is None:
                row = self._next()
                if row is None:
                    break
                item = (self.row_number, row)
            cells = self._format(*item)
            if all(v is None for v in cells):
                blanks += 1
                continue
            batch.extend([None] * self.width for _ in range(blanks))
            blanks = 0
            batch.append(cells)
            if len(batch) >= BATCH_ROWS:
                sink.write(batch)
                batch = []
                if progress is not None:
                    progress(sink.rows, total if total and total >= sink.rows else None)
        sink.write(batch)
