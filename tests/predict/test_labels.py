"""Churn labels and rolling cutoffs, worked out by hand on a tiny transactions table."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest

from crmlens.errors import InputError
from crmlens.predict.labels import churn_labels, data_span, rolling_cutoffs
from crmlens.workspace.schema import DDL

CUTOFF = date(2024, 4, 1)
WINDOW = 30  # label window [2024-04-01, 2024-05-01)

# order_id, customer_id, ts, quantity, amount, is_return, line_type
ROWS = [
    # A: buys again on the cutoff day itself, at midnight -> active, 0 days to next
    ("A1", "A", "2024-01-10 12:00", 2, 20.0, False, "product"),
    ("A2", "A", "2024-04-01 00:00", 1, 10.0, False, "product"),
    # B: buys again on the last second of the window -> active, 29 days
    ("B1", "B", "2024-02-01 09:00", 1, 15.0, False, "product"),
    ("B2", "B", "2024-04-30 23:59:59", 1, 15.0, False, "product"),
    # C: last purchase the second before the cutoff, next one the day the window ends -> churned
    ("C1", "C", "2024-03-31 23:59:59", 1, 15.0, False, "product"),
    ("C2", "C", "2024-05-01 00:00", 1, 15.0, False, "product"),
    # D: only a return, a shipping line and a zero-quantity line in the window -> churned
    ("D1", "D", "2024-01-05 10:00", 3, 30.0, False, "product"),
    ("D2", "D", "2024-04-03 10:00", -1, -10.0, True, "product"),
    ("D3", "D", "2024-04-04 10:00", 1, 5.0, False, "shipping"),
    ("D4", "D", "2024-04-05 10:00", 0, 0.0, False, "product"),
    # E: first purchase after the cutoff -> not labelled
    ("E1", "E", "2024-04-05 10:00", 1, 15.0, False, "product"),
    # F: only a return before the cutoff -> not labelled
    ("F1", "F", "2024-02-05 10:00", -1, -15.0, True, "product"),
    ("F2", "F", "2024-04-06 10:00", 1, 15.0, False, "product"),
    # G: bought before, never again -> churned, no next order
    ("G1", "G", "2024-03-01 10:00", 1, 15.0, False, "product"),
    # H: only a shipping line before the cutoff -> not labelled
    ("H1", "H", "2024-03-02 10:00", 1, 5.0, False, "shipping"),
    # anonymous purchases are nobody's
    ("X1", None, "2024-03-03 10:00", 1, 15.0, False, "product"),
    ("X2", None, "2024-06-30 10:00", 1, 15.0, False, "product"),
]


def _insert(con: duckdb.DuckDBPyConnection, rows) -> None:
    con.executemany(
        "INSERT INTO transactions (source_id, source_row, order_id, customer_id, ts, product_id, "
        "quantity, amount, is_return, line_type, flags) "
        "VALUES (1, ?, ?, ?, ?, 'P1', ?, ?, ?, ?, [])",
        [[i, r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], r[5], r[6]]
         for i, r in enumerate(rows)])


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute(DDL["transactions"])
    _insert(c, ROWS)
    yield c
    c.close()


def _labels(con, *, into: str = "_crm_labels", **kwargs) -> dict[str, tuple[bool, int | None]]:
    churn_labels(con, into=into, **kwargs)
    return {r[0]: (r[1], r[2]) for r in con.execute(
        f"SELECT customer_id, label, days_to_next FROM {into}").fetchall()}


def test_labels_by_hand(con):
    n = churn_labels(con, cutoff=CUTOFF, window_days=WINDOW)
    assert n == 5
    assert _labels(con, cutoff=CUTOFF, window_days=WINDOW) == {
        "A": (False, 0),
        "B": (False, 29),
        "C": (True, 30),
        "D": (True, None),
        "G": (True, None),
    }


def test_window_end_is_exclusive_and_moves_with_the_window(con):
    # One more day of window: C's order on 2024-05-01 now falls inside it.
    got = _labels(con, cutoff=CUTOFF, window_days=WINDOW + 1)
    assert got["C"] == (False, 30)
    assert got["B"] == (False, 29)
    # A one-day window only sees the cutoff day.
    got = _labels(con, cutoff=CUTOFF, window_days=1)
    assert {k for k, (churned, _) in got.items() if not churned} == {"A"}


def test_later_cutoff_labels_more_customers(con):
    got = _labels(con, cutoff=date(2024, 4, 10), window_days=WINDOW, into="_later")
    # E and F bought before 2024-04-10 now; A, B, C have a purchase before it too.
    assert set(got) == {"A", "B", "C", "D", "E", "F", "G"}
    assert got["E"] == (True, None)  # nothing after 2024-04-05
    assert got["A"] == (True, None)  # its 2024-04-01 order is history now
    assert got["B"] == (False, 20)
    assert got["C"] == (False, 21)  # 2024-05-01 lies inside [2024-04-10, 2024-05-10)


def test_returns_do_not_count_as_purchases(con):
    # A return inside the window never makes a customer active; a return before the cutoff
    # never makes them labelled (F above); removing D's return changes nothing.
    before = _labels(con, cutoff=CUTOFF, window_days=WINDOW)
    con.execute("DELETE FROM transactions WHERE order_id = 'D2'")
    assert _labels(con, cutoff=CUTOFF, window_days=WINDOW) == before


def test_bad_window(con):
    with pytest.raises(InputError) as err:
        churn_labels(con, cutoff=CUTOFF, window_days=0)
    assert err.value.key == "error.predict_bad_window"


def test_data_span(con):
    # Anonymous rows do not count.
    assert data_span(con) == (date(2024, 1, 5), date(2024, 5, 1))


def test_data_span_without_customers():
    c = duckdb.connect()
    with pytest.raises(InputError) as err:
        data_span(c)
    assert err.value.key == "error.predict_no_customers"
    c.execute(DDL["transactions"])
    _insert(c, [r for r in ROWS if r[1] is None])
    with pytest.raises(InputError) as err:
        data_span(c)
    assert err.value.key == "error.predict_no_customers"


# -- rolling cutoffs -------------------------------------------------------------------------

def test_rolling_cutoffs_spacing_and_count():
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    got = rolling_cutoffs(first, last, window_days=90, step_days=30)
    # The latest window ends the day after the last transaction.
    assert got[-1] + timedelta(days=90) == last + timedelta(days=1)
    assert got[-1] == date(2024, 10, 3)
    assert all((b - a).days == 30 for a, b in zip(got, got[1:]))
    # Every cutoff has >= 90 days of history; one more step back would not.
    assert all((c - first).days >= 90 for c in got)
    assert (got[0] - timedelta(days=30) - first).days < 90
    assert len(got) == 7
    assert got == sorted(got)


def test_rolling_cutoffs_keeps_the_latest():
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    every = rolling_cutoffs(first, last, window_days=90, step_days=30)
    assert rolling_cutoffs(first, last, window_days=90, step_days=30, n_cutoffs=3) == every[-3:]
    assert rolling_cutoffs(first, last, window_days=90, step_days=30, n_cutoffs=100) == every
    weekly = rolling_cutoffs(first, last, window_days=30, step_days=7, n_cutoffs=4,
                             min_history_days=10)
    assert [(b - a).days for a, b in zip(weekly, weekly[1:])] == [7, 7, 7]
    assert weekly[-1] == date(2024, 12, 2)


def test_rolling_cutoffs_exact_fit():
    # 180 days of data: exactly one cutoff with 90 days before it and a 90-day window after.
    first = date(2024, 1, 1)
    last = first + timedelta(days=179)
    assert rolling_cutoffs(first, last, window_days=90) == [first + timedelta(days=90)]


def test_short_history():
    first = date(2024, 1, 1)
    with pytest.raises(InputError) as err:
        rolling_cutoffs(first, first + timedelta(days=178), window_days=90)
    assert err.value.key == "error.predict_short_history"
    assert err.value.params["days"] == 179
    assert err.value.params["needed"] == 180
    assert "179" in err.value.message("en")


@pytest.mark.parametrize("kwargs", [{"window_days": 0}, {"step_days": 0}])
def test_rolling_cutoffs_bad_window(kwargs):
    with pytest.raises(InputError) as err:
        rolling_cutoffs(date(2024, 1, 1), date(2024, 12, 31), **kwargs)
    assert err.value.key == "error.predict_bad_window"


def test_rolling_cutoffs_bad_count():
    with pytest.raises(InputError) as err:
        rolling_cutoffs(date(2024, 1, 1), date(2024, 12, 31), n_cutoffs=0)
    assert err.value.key == "error.predict_bad_n_cutoffs"
