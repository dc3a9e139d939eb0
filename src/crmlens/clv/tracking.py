"""Repeat purchases per period over calibration and holdout, counted in DuckDB.

The actual side of the cumulative "tracking" curve of :mod:`crmlens.clv.validation`. Purchase
periods follow :mod:`crmlens.clv.summary` exactly (product lines of identified customers netted
per customer and period, a period netting > 0 is a purchase), so the curve at the calibration
end equals the summed ``frequency`` and at the observation end adds ``frequency_holdout``.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from crmlens.clv.summary import (
    _PERIODS_BETWEEN,
    Source,
    _check_unit,
    _date,
    _last_period,
    _parse_date,
    _periods_sql,
    _relation,
)
from crmlens.errors import InputError

_STEP = {"days": "INTERVAL 1 DAY", "weeks": "INTERVAL 7 DAY", "months": "INTERVAL 1 MONTH"}


def repeat_purchases_by_period(con: duckdb.DuckDBPyConnection, *, calibration_end: str | date,
                               observation_end: str | date, unit: str = "days",
                               source: Source = "transactions") -> pd.DataFrame:
    """Repeat purchases per period of the customers whose first purchase is in calibration.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding ``source``.
    calibration_end, observation_end : str or date
        Exclusive ends of the calibration and of the holdout window, as in
        :func:`crmlens.clv.summary.calibration_and_holdout`.
    unit : {"days", "weeks", "months"}, default "days"
        Time unit of the periods.
    source : str, Path or DuckDBPyRelation, default "transactions"
        Clean transactions.

    Returns
    -------
    pandas.DataFrame
        One row per period from the first calibration purchase period of any customer to the
        last holdout period, gaps included: ``period`` (int, 0 for the first),
        ``period_start`` (date), ``repeats`` (int64, purchase periods that are not the
        customer's first, of customers first seen before ``calibration_end``).

    Raises
    ------
    InputError
        Unknown unit, bad dates, or no calibration purchase.
    """
    _check_unit(unit)
    cal = _parse_date(calibration_end, "calibration_end")
    obs = _parse_date(observation_end, "observation_end")
    if obs <= cal:
        raise InputError("error.clv_holdout_order", calibration_end=cal.isoformat(),
                         observation_end=obs.isoformat())
    rel = _relation(con, source)
    between = _PERIODS_BETWEEN[unit]
    last = _last_period(unit, obs)
    sql = f"""
WITH p AS ({_periods_sql(rel, unit, start=None, end=obs)}),
firsts AS (SELECT customer_id, min(period) AS birth FROM p GROUP BY 1
           HAVING min(period) < {_date(cal)}),
repeats AS (SELECT p.period, count(*) AS repeats
            FROM p JOIN firsts USING (customer_id)
            WHERE p.period > firsts.birth GROUP BY 1),
origin AS (SELECT min(birth) AS o FROM firsts),
grid AS (SELECT CAST(g AS DATE) AS period
         FROM origin, range(CAST(origin.o AS TIMESTAMP),
                            CAST({last} AS TIMESTAMP) + {_STEP[unit]}, {_STEP[unit]}) AS t(g))
SELECT {between.format(a="origin.o", b="grid.period")} AS period,
       grid.period AS period_start, coalesce(repeats.repeats, 0) AS repeats
FROM grid CROSS JOIN origin LEFT JOIN repeats ON repeats.period = grid.period
ORDER BY grid.period"""
    frame = con.execute(sql).df()
    if frame.empty:
        raise InputError("error.clv_no_purchases", end=cal.isoformat())
    frame["period"] = frame["period"].astype("int64")
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    frame["repeats"] = frame["repeats"].astype("int64")
    return frame
