"""Per-customer BTYD summaries (frequency, recency, T, monetary value) from clean transactions.

The heavy part is one DuckDB query: product lines of identified customers are netted per
customer and period of the time unit, periods with a positive net spend are purchases, and
each customer's purchases collapse to one summary row. Python receives one row per customer.

Conventions (the same as ``lifetimes.utils.summary_data_from_transaction_data`` on the same
purchase periods; see ``docs/clv.md``):

* a *period* is a calendar day (``unit="days"``), an ISO week starting on Monday
  (``"weeks"``, 7 days) or a calendar month (``"months"``, counted with ``date_diff('month')``
  between month starts, so no 30-day or 4.345-weeks-per-month factor is ever applied);
* ``frequency`` = purchase periods - 1; ``recency`` = periods from the first to the last
  purchase period; ``T`` = periods from the first purchase period to the last observed period
  (the one holding the day before the end date); ``monetary_value`` = mean net spend of the
  repeat purchase periods (0 without repeats);
* end dates are exclusive, as everywhere in crmlens: ``as_of`` uses ``ts < as_of``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Union

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError

log = logging.getLogger(__name__)

Source = Union[str, Path, duckdb.DuckDBPyRelation]

# Length of a unit in days; None for calendar months (28 to 31 days, counted as months).
UNIT_DAYS: dict[str, int | None] = {"days": 1, "weeks": 7, "months": None}
_PERIOD_START = {
    "days": "CAST({x} AS DATE)",
    "weeks": "CAST(date_trunc('week', {x}) AS DATE)",   # ISO week: Monday
    "months": "CAST(date_trunc('month', {x}) AS DATE)",
}
_PERIODS_BETWEEN = {
    "days": "date_diff('day', {a}, {b})",
    "weeks": "date_diff('day', {a}, {b}) // 7",         # both are Mondays: exact
    "months": "date_diff('month', {a}, {b})",           # both are 1sts: whole months
}
_SOURCE_VIEW = "_crm_clv_source"
SUMMARY_COLUMNS = ("frequency", "recency", "T")
# Netting sums money exactly in millionths of the currency unit: in floating point a day of
# purchases fully returned (22.72 + 17.12 + 8.0 - 22.72 - 17.12 - 8.0) leaves 3.6e-15 and
# would count as a purchase, and a parallel double sum is not even the same on every run.
_MONEY = "DECIMAL(38, 6)"


@dataclass(frozen=True)
class Summary:
    """Per-customer BTYD summary with its time unit and observation window.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per customer with at least one purchase period, sorted by ``customer_id``:
        ``customer_id``, ``frequency`` (int64), ``recency``, ``T`` and ``monetary_value``
        (float64, in the data's currency). A calibration/holdout summary adds
        ``frequency_holdout`` (int64) and ``monetary_value_holdout``.
    unit : {"days", "weeks", "months"}
        Unit of ``recency``, ``T`` and ``duration_holdout``.
    unit_days : int or None
        Length of the unit in days: 1, 7, or None for calendar months.
    observation_end : datetime.date
        Exclusive end of the (calibration) observation: transactions with ``ts`` before it.
    holdout_end : datetime.date or None
        Exclusive end of the holdout window (None without a split).
    duration_holdout : int or None
        Length of the holdout window in units (None without a split).
    """

    frame: pd.DataFrame = field(repr=False)
    unit: str
    unit_days: int | None
    observation_end: date
    holdout_end: date | None = None
    duration_holdout: int | None = None

    def __len__(self) -> int:
        return len(self.frame)


def rfm_summary(con: duckdb.DuckDBPyConnection, *, source: Source = "transactions",
                as_of: str | date | None = None, unit: str = "days",
                calibration_end: str | date | None = None,
                holdout_end: str | date | None = None) -> Summary:
    """Frequency, recency, T and mean repeat spend of every identified customer.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding ``source`` (a workspace connection or any other).
    source : str, Path or DuckDBPyRelation, default "transactions"
        Clean transactions (columns of ``workspace/schema.py``; ``customer_id``, ``ts``,
        ``amount`` and ``line_type`` are read). A string ending in ``.parquet`` (or a glob) is
        read with ``read_parquet``; another string names a table or view.
    as_of : str or date, optional
        Exclusive end of the observation (``YYYY-MM-DD``): only ``ts < as_of`` is used and
        ``T`` runs to the period holding the day before. Default: the day after the last
        product line of an identified customer. Not allowed together with ``calibration_end``.
    unit : {"days", "weeks", "months"}, default "days"
        Time unit of the periods: calendar days, ISO weeks (Monday to Sunday, 7 days) or
        calendar months (counted as whole months between month starts).
    calibration_end : str or date, optional
        Split at this date: the summary covers ``ts < calibration_end`` and the holdout
        columns count purchases in ``[calibration_end, holdout_end)``; same as
        :func:`calibration_and_holdout`.
    holdout_end : str or date, optional
        Exclusive end of the holdout window; required with ``calibration_end``.

    Returns
    -------
    Summary
        The per-customer frame and its unit and window.

    Raises
    ------
    InputError
        Unknown unit, a bad date, a missing source or no purchases in the window.

    Notes
    -----
    Only merchandise (``line_type = 'product'``) counts. Lines are netted per customer and
    period (returns are negative amounts); a period whose net spend is zero or negative is not
    a purchase. A return is netted in the period it is recorded in, not in the period of the
    order it returns.

    Examples
    --------
    >>> s = rfm_summary(con, unit="weeks", as_of="2024-01-01")          # doctest: +SKIP
    >>> s.frame.head()                                                  # doctest: +SKIP
    """
    if calibration_end is not None or holdout_end is not None:
        if as_of is not None:
            raise InputError("error.clv_as_of_with_split")
        if calibration_end is None or holdout_end is None:
            raise InputError("error.clv_split_incomplete")
        return calibration_and_holdout(con, source=source, calibration_end=calibration_end,
                                       observation_end=holdout_end, unit=unit)
    _check_unit(unit)
    rel = _relation(con, source)
    end = _parse_date(as_of, "as_of") if as_of is not None else _default_end(con, rel)
    frame = con.execute(_summary_sql(rel, unit, end)).df()
    if frame.empty:
        raise InputError("error.clv_no_purchases", end=end.isoformat())
    return Summary(_typed(frame), unit, UNIT_DAYS[unit], end)


def calibration_and_holdout(con: duckdb.DuckDBPyConnection, *,
                            calibration_end: str | date, observation_end: str | date,
                            unit: str = "days",
                            source: Source = "transactions") -> Summary:
    """Calibration summary plus holdout purchases per customer, split at a date.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding ``source``.
    calibration_end : str or date
        Exclusive end of the calibration window and start of the holdout (``YYYY-MM-DD``). It
        must start a period of ``unit`` (a Monday for weeks, the 1st for months) so that no
        period is split between the windows.
    observation_end : str or date
        Exclusive end of the holdout window; after ``calibration_end``.
    unit : {"days", "weeks", "months"}, default "days"
        Time unit, as in :func:`rfm_summary`.
    source : str, Path or DuckDBPyRelation, default "transactions"
        Clean transactions, as in :func:`rfm_summary`.

    Returns
    -------
    Summary
        :func:`rfm_summary` of ``ts < calibration_end`` for customers with a calibration
        purchase, plus ``frequency_holdout`` (purchase periods in the holdout window) and
        ``monetary_value_holdout`` (their mean net spend, 0 without any); ``duration_holdout``
        is the holdout length in units.

    Raises
    ------
    InputError
        Unknown unit, bad or misaligned dates, or no calibration purchases.
    """
    _check_unit(unit)
    cal = _parse_date(calibration_end, "calibration_end")
    obs = _parse_date(observation_end, "observation_end")
    if obs <= cal:
        raise InputError("error.clv_holdout_order", calibration_end=cal.isoformat(),
                         observation_end=obs.isoformat())
    if (unit == "weeks" and cal.weekday() != 0) or (unit == "months" and cal.day != 1):
        raise InputError(f"error.clv_split_unaligned_{unit}", calibration_end=cal.isoformat())
    rel = _relation(con, source)
    holdout = _periods_sql(rel, unit, start=cal, end=obs)
    sql = f"""
WITH cal AS ({_summary_sql(rel, unit, cal)}),
hold AS (SELECT customer_id, count(*) AS n, CAST(sum(net) AS DOUBLE) / count(*) AS spend
         FROM ({holdout}) GROUP BY 1)
SELECT cal.*, coalesce(hold.n, 0) AS frequency_holdout,
       coalesce(hold.spend, 0) AS monetary_value_holdout
FROM cal LEFT JOIN hold USING (customer_id)
ORDER BY customer_id"""
    frame = con.execute(sql).df()
    if frame.empty:
        raise InputError("error.clv_no_purchases", end=cal.isoformat())
    frame = _typed(frame)
    frame["frequency_holdout"] = frame["frequency_holdout"].astype("int64")
    frame["monetary_value_holdout"] = frame["monetary_value_holdout"].astype("float64")
    duration = con.execute("SELECT " + _PERIODS_BETWEEN[unit].format(
        a=_last_period(unit, cal), b=_last_period(unit, obs))).fetchall()[0][0]
    return Summary(frame, unit, UNIT_DAYS[unit], cal, obs, int(duration))


def compress(summary: Summary | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(frequency, recency, T)`` rows and how many customers share each.

    Models fit on the distinct rows weighted by their counts, so the cost grows with the
    number of distinct rows, not customers.

    Parameters
    ----------
    summary : Summary or pandas.DataFrame
        A summary, or a frame with ``frequency``, ``recency`` and ``T`` columns.

    Returns
    -------
    rows : numpy.ndarray of shape (n_unique, 3), float64
        Distinct ``(frequency, recency, T)`` rows, sorted.
    weights : numpy.ndarray of shape (n_unique,), int64
        Customers per row; they sum to the number of customers.
    """
    frame = summary.frame if isinstance(summary, Summary) else summary
    missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError("error.clv_summary_missing_column", column=missing[0])
    rows = frame[list(SUMMARY_COLUMNS)]
    fast = _compress_whole_numbers(rows)
    if fast is not None:
        return fast
    with duckdb.connect() as con:
        con.register("summary_rows", rows)
        out = con.execute("""SELECT frequency, recency, "T", count(*) AS weight
                             FROM summary_rows GROUP BY ALL ORDER BY ALL""").fetchnumpy()
    unique = np.column_stack([np.asarray(out[c], dtype=np.float64)
                              for c in SUMMARY_COLUMNS]).reshape(-1, 3)
    return unique, np.asarray(out["weight"], dtype=np.int64)


def _compress_whole_numbers(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """``compress`` for whole non-negative numbers: one int64 key per row, one sort.

    Summaries in periods are whole numbers; packing ``(frequency, recency, T)`` into one key
    (in that order of significance, so keys sort like the rows) lets numpy sort integers instead
    of grouping rows, about 5x faster than the SQL. Returns None when the values do not fit.
    """
    try:
        columns = [rows[c].to_numpy(dtype=np.float64) for c in SUMMARY_COLUMNS]
    except (TypeError, ValueError):
        return None
    if not len(columns[0]):
        return None
    whole = []
    for values in columns:
        if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() >= 2**20:
            return None
        as_int = values.astype(np.int64)
        if not np.array_equal(as_int, values):
            return None
        whole.append(as_int)
    x, tx, T = whole
    span_tx, span_T = int(tx.max()) + 1, int(T.max()) + 1
    # Sort and mark the starts of runs: several times faster than np.unique(return_counts).
    keys = np.sort((x * span_tx + tx) * span_T + T)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    counts = np.diff(np.append(starts, len(keys)))
    keys = keys[starts]
    rest, T_u = np.divmod(keys, span_T)
    x_u, tx_u = np.divmod(rest, span_tx)
    return np.column_stack([x_u, tx_u, T_u]).astype(np.float64), counts.astype(np.int64)


def check_summary(frame: pd.DataFrame, *, monetary: bool | None = None) -> None:
    """Check the invariants a BTYD model relies on; raise on the first broken one.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``frequency``, ``recency``, ``T`` and optionally ``monetary_value`` per customer
        (a ``customer_id`` column, else the index, names the rows in messages).
    monetary : bool, optional
        Whether to check ``monetary_value`` (required then). Default: when the column exists.

    Raises
    ------
    InputError
        With the key of the broken invariant, the first offending customer, its values and
        the number of offending rows: a missing column, a missing or infinite value, a
        frequency that is not a non-negative integer, a negative recency, recency > T,
        recency not 0 when frequency is 0, or a monetary value not positive for a repeat buyer.
    """
    if monetary is None:
        monetary = "monetary_value" in frame.columns
    columns = list(SUMMARY_COLUMNS) + (["monetary_value"] if monetary else [])
    for column in columns:
        if column not in frame.columns:
            raise InputError("error.clv_summary_missing_column", column=column)
    ids = (frame["customer_id"].to_numpy() if "customer_id" in frame.columns
           else frame.index.to_numpy())
    values = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
              for c in columns}
    f, r, big_t = values["frequency"], values["recency"], values["T"]

    def fail(key: str, bad: np.ndarray, **shown: np.ndarray) -> None:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            params = {name: _show(v[i]) for name, v in shown.items()}
            raise InputError(key, customer=str(ids[i]), count=int(bad.sum()), **params)

    for column in columns:
        bad = ~np.isfinite(values[column])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError("error.clv_summary_not_finite", column=column,
                             customer=str(ids[i]), value=str(frame[column].iloc[i]),
                             count=int(bad.sum()))
    fail("error.clv_summary_frequency", (f < 0) | (f != np.floor(f)), frequency=f)
    fail("error.clv_summary_negative", (r < 0) | (big_t < 0), recency=r, T=big_t)
    fail("error.clv_summary_recency_after_T", r > big_t, recency=r, T=big_t)
    fail("error.clv_summary_recency_without_repeat", (f == 0) & (r != 0), recency=r)
    if monetary:
        m = values["monetary_value"]
        fail("error.clv_summary_monetary", (f > 0) & (m <= 0), frequency=f, monetary_value=m)


# --- SQL ----------------------------------------------------------------------------------------


def _periods_sql(rel: str, unit: str, *, start: date | None, end: date) -> str:
    """Purchase periods in ``[start, end)``: (customer_id, period, net), net spend > 0."""
    period = _PERIOD_START[unit].format(x="ts")
    lower = f" AND ts >= {_date(start)}" if start is not None else ""
    return f"""
    SELECT customer_id, period, net
    FROM (SELECT customer_id, {period} AS period, sum(CAST(amount AS {_MONEY})) AS net
          FROM {rel}
          WHERE customer_id IS NOT NULL AND line_type = 'product'{lower} AND ts < {_date(end)}
          GROUP BY customer_id, period)
    WHERE net > 0"""


def _summary_sql(rel: str, unit: str, end: date) -> str:
    between = _PERIODS_BETWEEN[unit]
    first = "min(period)"
    return f"""
SELECT customer_id,
       count(*) - 1 AS frequency,
       {between.format(a=first, b="max(period)")} AS recency,
       {between.format(a=first, b=_last_period(unit, end))} AS "T",
       -- repeat spend = all but the first period, exact in DECIMAL (no window needed)
       coalesce(CAST(sum(net) - arg_min(net, period) AS DOUBLE) / nullif(count(*) - 1, 0), 0)
           AS monetary_value
FROM ({_periods_sql(rel, unit, start=None, end=end)})
GROUP BY customer_id
ORDER BY customer_id"""


def _last_period(unit: str, end: date) -> str:
    """Start of the last observed period: the one holding the day before ``end``."""
    return _PERIOD_START[unit].format(x=_date(end - timedelta(days=1)))


def _date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame["frequency"] = frame["frequency"].astype("int64")
    for column in ("recency", "T", "monetary_value"):
        frame[column] = frame[column].astype("float64")
    return frame


# --- inputs -------------------------------------------------------------------------------------


def _check_unit(unit: str) -> None:
    if unit not in UNIT_DAYS:
        raise InputError("error.clv_bad_unit", unit=str(unit), units=", ".join(UNIT_DAYS))


def _parse_date(value: str | date | datetime, name: str) -> date:
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise InputError("error.clv_bad_date", name=name, value=str(value))
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError("error.clv_bad_date", name=name, value=str(value)) from None


def _relation(con: duckdb.DuckDBPyConnection, source: Source) -> str:
    """SQL text naming the transactions relation."""
    if isinstance(source, duckdb.DuckDBPyRelation):
        source.create_view(_SOURCE_VIEW, replace=True)
        return _SOURCE_VIEW
    text = str(source)
    if isinstance(source, Path) or text.lower().endswith(".parquet") or "*" in text:
        if "*" not in text and not Path(text).exists():
            raise InputError("error.file_missing", path=text)
        return "read_parquet('" + text.replace("'", "''") + "')"
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                         [text]).fetchall()[0][0]
    if not exists:
        raise InputError("error.clv_no_table", table=text)
    return '"' + text.replace('"', '""') + '"'


def _default_end(con: duckdb.DuckDBPyConnection, rel: str) -> date:
    """The day after the last product line of an identified customer."""
    last = con.execute(f"SELECT max(ts) FROM {rel} WHERE customer_id IS NOT NULL "
                       "AND line_type = 'product'").fetchall()[0][0]
    if last is None:
        raise InputError("error.clv_no_transactions")
    return last.date() + timedelta(days=1)


def _show(value: float) -> str:
    """A number as users wrote it: 3 rather than 3.0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
