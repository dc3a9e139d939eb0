"""Churn labels from transactions: rolling cutoff dates and what each customer did after them.

A customer churned at a cutoff when they made no purchase order in the window that starts at
the cutoff (default 90 days). Only customers with a purchase order before the cutoff are
labelled: the same population the point-in-time features of that cutoff describe
(:func:`crmlens.features.compute_features`). A purchase order is one with a product line that
is not a return and has a positive quantity, as in the features.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import duckdb

from crmlens.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_LABELS = "_crm_labels"
TARGETS = ("churn", "buy_next", "days_to_next")

# A purchase line, exactly as the features count one.
PURCHASE = "(NOT is_return AND line_type = 'product' AND quantity > 0)"


def _date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _check_window(window_days: int, step_days: int = 1) -> None:
    if int(window_days) < 1 or int(step_days) < 1:
        raise InputError("error.predict_bad_window", window=window_days, step=step_days)


def rolling_cutoffs(first: date, last: date, *, window_days: int = 90, step_days: int = 30,
                    n_cutoffs: int | None = None, min_history_days: int = 90) -> list[date]:
    """Cutoff dates whose label windows are fully observed, oldest first.

    The latest is ``last + 1 day - window_days`` (its window ends the day after the last
    transaction); the others follow every ``step_days`` back, as long as at least
    ``min_history_days`` of history lie before each.

    Parameters
    ----------
    first, last : datetime.date
        Dates of the first and the last transaction.
    window_days : int, default 90
        Length of the label window after a cutoff.
    step_days : int, default 30
        Days between consecutive cutoffs.
    n_cutoffs : int, optional
        Keep at most this many (the latest ones). None keeps all.
    min_history_days : int, default 90
        Days of data a cutoff needs before it (``cutoff - first``).

    Returns
    -------
    list of datetime.date

    Raises
    ------
    crmlens.errors.InputError
        The data span is too short for even one cutoff (``error.predict_short_history``).

    Examples
    --------
    >>> from datetime import date
    >>> rolling_cutoffs(date(2024, 1, 1), date(2024, 12, 31), step_days=60)
    [datetime.date(2024, 4, 6), datetime.date(2024, 6, 5), datetime.date(2024, 8, 4), \
datetime.date(2024, 10, 3)]
    """
    _check_window(window_days, step_days)
    if n_cutoffs is not None and int(n_cutoffs) < 1:
        raise InputError("error.predict_bad_n_cutoffs", n=n_cutoffs)
    out: list[date] = []
    cutoff = last + timedelta(days=1) - timedelta(days=int(window_days))
    while (cutoff - first).days >= min_history_days:
        out.append(cutoff)
        if n_cutoffs is not None and len(out) >= n_cutoffs:
            break
        cutoff -= timedelta(days=int(step_days))
    if not out:
        span = (last - first).days + 1
        raise InputError("error.predict_short_history", first=first.isoformat(),
                         last=last.isoformat(), days=span,
                         needed=int(window_days) + int(min_history_days))
    return out[::-1]


def data_span(con: duckdb.DuckDBPyConnection, source: str = "transactions") -> tuple[date, date]:
    """Dates of the first and the last transaction with a customer id in ``source``.

    Raises
    ------
    crmlens.errors.InputError
        No such transactions (``error.predict_no_customers``).
    """
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                         [source]).fetchall()[0][0]
    if not exists:
        raise InputError("error.predict_no_customers")
    first, last = con.execute(f"SELECT min(ts), max(ts) FROM {source} "
                              "WHERE customer_id IS NOT NULL").fetchall()[0]
    if first is None:
        raise InputError("error.predict_no_customers")
    return first.date(), last.date()


def labels_sql(cutoff: date, window_days: int, into: str = DEFAULT_LABELS,
               source: str = "transactions") -> str:
    """The statement creating the label table of one cutoff (see :func:`churn_labels`)."""
    c = _date(cutoff)
    end = _date(cutoff + timedelta(days=int(window_days)))
    # One pass: the first purchase before the cutoff decides who is labelled, the first one at
    # or after it gives the label (inside [cutoff, end)) and days_to_next.
    return f"""CREATE OR REPLACE TEMP TABLE {into} AS
SELECT customer_id,
       NOT coalesce(bool_or(ts >= {c} AND ts < {end}), false) AS label,
       CAST(date_diff('day', {c}, CAST(min(ts) FILTER (WHERE ts >= {c}) AS DATE)) AS INTEGER)
           AS days_to_next
FROM {source}
WHERE customer_id IS NOT NULL AND {PURCHASE}
GROUP BY customer_id
HAVING bool_or(ts < {c})"""


def churn_labels(con: duckdb.DuckDBPyConnection, *, cutoff: date, window_days: int = 90,
                 into: str = DEFAULT_LABELS) -> int:
    """Churn labels of one cutoff into a temporary table.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding the ``transactions`` table (a workspace connection).
    cutoff : datetime.date
        Customers with a purchase order before this date are labelled.
    window_days : int, default 90
        The label window is ``[cutoff, cutoff + window_days)``.
    into : str, default "_crm_labels"
        Temporary table to (re)create, with columns ``customer_id``, ``label`` (BOOLEAN, true
        = no purchase order in the window: churned) and ``days_to_next`` (INTEGER: days from
        the cutoff to the first purchase at or after it; NULL when the data hold none).

    Returns
    -------
    int
        Number of labelled customers.

    Examples
    --------
    >>> n = churn_labels(con, cutoff=date(2011, 9, 1))          # doctest: +SKIP
    >>> con.table("_crm_labels").df().head()                   # doctest: +SKIP
    """
    _check_window(window_days)
    con.execute(labels_sql(cutoff, window_days, into))
    n = int(con.execute(f"SELECT count(*) FROM {into}").fetchall()[0][0])
    log.info("labels at %s (window %d days): %d customers", cutoff, window_days, n)
    return n
