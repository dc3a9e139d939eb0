"""Per-customer BTYD summaries: hand-worked cases, lifetimes as an oracle, invariants, compression."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

import crmlens.clv.summary as summary_module
from crmlens.clv.summary import (Summary, calibration_and_holdout, check_summary, compress,
                                 rfm_summary)
from crmlens.datasets.generator import generate_dataset
from crmlens.errors import InputError
from crmlens.i18n import t
from crmlens.workspace.schema import DDL

# customer_id, ts, amount, line_type — worked by hand in the tests below
HAND = [
    ("X", "2024-03-04 09:00", 50.0, "product"),   # Monday
    ("X", "2024-03-04 17:00", 30.0, "product"),   # same day: one period of 80
    ("X", "2024-03-04 18:00", 5.0, "shipping"),   # not merchandise
    ("X", "2024-03-06 10:00", 20.0, "product"),
    ("X", "2024-03-06 11:00", -20.0, "product"),  # returned the same day: net 0, no purchase
    ("X", "2024-03-10 12:00", 40.0, "product"),   # Sunday
    ("X", "2024-03-11 12:00", -10.0, "product"),  # a day of returns only: no purchase
    ("X", "2024-03-20 12:00", 100.0, "product"),
    ("X", "2024-03-20 15:00", -30.0, "product"),  # netted: 70
    ("Y", "2024-03-05 08:00", 10.0, "product"),
    ("Z", "2024-03-07 08:00", -15.0, "product"),  # returns only: never a customer here
    (None, "2024-03-30 08:00", 999.0, "product"), # anonymous: ignored
]


def _table(rows) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(DDL["transactions"])
    con.executemany(
        "INSERT INTO transactions VALUES (1, ?, ?, ?, ?, NULL, NULL, NULL, ?, NULL, ?, NULL, "
        "NULL, ?, ?, NULL, [])",
        [[i, f"O{i}", c, datetime.fromisoformat(ts), 1.0 if a > 0 else -1.0, a, a < 0, lt]
         for i, (c, ts, a, lt) in enumerate(rows)])
    return con


@pytest.fixture
def hand():
    con = _table(HAND)
    yield con
    con.close()


def _rows(summary: Summary) -> dict:
    f = summary.frame.set_index("customer_id")
    return {c: tuple(f.loc[c].tolist()) for c in f.index}


# --- hand-worked ---------------------------------------------------------------------------------


def test_days_nets_returns_and_aggregates_same_day(hand):
    s = rfm_summary(hand, as_of="2024-04-01")
    # X buys on 03-04 (80), 03-10 (40), 03-20 (70); 03-06 nets to 0 and 03-11 to -10.
    assert _rows(s) == {"X": (2, 16.0, 27.0, 55.0), "Y": (0, 0.0, 26.0, 0.0)}
    assert (s.unit, s.unit_days, s.observation_end) == ("days", 1, date(2024, 4, 1))
    assert s.frame["frequency"].dtype == np.int64
    assert list(s.frame.columns) == ["customer_id", "frequency", "recency", "T",
                                     "monetary_value"]


def test_default_end_is_day_after_last_identified_purchase(hand):
    s = rfm_summary(hand)  # the anonymous 03-30 line does not move the end
    assert s.observation_end == date(2024, 3, 21)
    assert _rows(s)["X"] == (2, 16.0, 16.0, 55.0)


def test_weeks_are_iso_weeks(hand):
    s = rfm_summary(hand, as_of="2024-04-01", unit="weeks")
    # week of 03-04: 50+30+20-20+40 = 120; week of 03-11: -10 (no purchase); 03-18: 70.
    assert _rows(s) == {"X": (1, 2.0, 3.0, 70.0), "Y": (0, 0.0, 3.0, 0.0)}
    assert s.unit_days == 7


def test_months_are_calendar_months(hand):
    s = rfm_summary(hand, as_of="2024-06-15", unit="months")
    assert _rows(s) == {"X": (0, 0.0, 3.0, 0.0), "Y": (0, 0.0, 3.0, 0.0)}
    assert s.unit_days is None
    # Observation ending on 03-31 (as_of 04-01): March is the last observed month, T = 0.
    assert _rows(rfm_summary(hand, as_of="2024-04-01", unit="months"))["X"] == (0, 0, 0, 0)


def test_as_of_excludes_its_own_day(hand):
    s = rfm_summary(hand, as_of="2024-03-20")
    assert _rows(s)["X"] == (1, 6.0, 15.0, 40.0)


def test_calibration_and_holdout_by_hand(hand):
    s = calibration_and_holdout(hand, calibration_end="2024-03-11",
                                observation_end="2024-04-01")
    f = s.frame.set_index("customer_id")
    assert tuple(f.loc["X"]) == (1, 6.0, 6.0, 40.0, 1, 70.0)
    assert tuple(f.loc["Y"]) == (0, 0.0, 5.0, 0.0, 0, 0.0)
    assert (s.observation_end, s.holdout_end, s.duration_holdout) == \
        (date(2024, 3, 11), date(2024, 4, 1), 21)
    same = rfm_summary(hand, calibration_end="2024-03-11", holdout_end="2024-04-01")
    pd.testing.assert_frame_equal(same.frame, s.frame)


def test_netting_is_exact():
    lines = [22.72, 17.12, 8.0, -22.72, -17.12, -8.0]  # sums to 3.6e-15 in floating point
    con = _table([("X", "2024-03-04 10:00", 5.0, "product")]
                 + [("X", "2024-03-05 10:00", a, "product") for a in lines])
    assert _rows(rfm_summary(con, as_of="2024-03-06")) == {"X": (0, 0.0, 1.0, 0.0)}


def test_source_as_relation_and_parquet(hand, tmp_path):
    expected = rfm_summary(hand, as_of="2024-04-01").frame
    rel = hand.sql("SELECT * FROM transactions")
    pd.testing.assert_frame_equal(rfm_summary(hand, source=rel, as_of="2024-04-01").frame,
                                  expected)
    path = tmp_path / "tx.parquet"
    hand.execute(f"COPY transactions TO '{path}' (FORMAT parquet)")
    pd.testing.assert_frame_equal(
        rfm_summary(duckdb.connect(), source=str(path), as_of="2024-04-01").frame, expected)


@pytest.mark.parametrize("kwargs, key", [
    ({"unit": "fortnights"}, "error.clv_bad_unit"),
    ({"as_of": "2024-13-01"}, "error.clv_bad_date"),
    ({"as_of": datetime(2024, 4, 1, 12)}, "error.clv_bad_date"),
    ({"source": "nope"}, "error.clv_no_table"),
    ({"as_of": "2024-03-01"}, "error.clv_no_purchases"),
    ({"as_of": "2024-04-01", "calibration_end": "2024-03-11", "holdout_end": "2024-04-01"},
     "error.clv_as_of_with_split"),
    ({"calibration_end": "2024-03-11"}, "error.clv_split_incomplete"),
    ({"calibration_end": "2024-03-11", "holdout_end": "2024-03-11"}, "error.clv_holdout_order"),
    ({"calibration_end": "2024-03-12", "holdout_end": "2024-04-01", "unit": "weeks"},
     "error.clv_split_unaligned_weeks"),
    ({"calibration_end": "2024-03-11", "holdout_end": "2024-06-01", "unit": "months"},
     "error.clv_split_unaligned_months"),
])
def test_bad_arguments(hand, kwargs, key):
    with pytest.raises(InputError) as err:
        rfm_summary(hand, **kwargs)
    assert err.value.key == key
    assert "{" not in err.value.message("en") and "{" not in err.value.message("zh")


# --- lifetimes as the oracle on generator data ---------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Generator purchases as clean transactions, plus planted returns, postage and anonymous."""
    raw = generate_dataset(tmp_path_factory.mktemp("gen"), n_customers=1500, seed=7)
    con = duckdb.connect()
    con.execute(DDL["transactions"])
    con.execute(f"""INSERT INTO transactions
        WITH lines AS (SELECT *, row_number() OVER () AS rn,
                              hash(order_id, product_id) % 100 AS h
                       FROM read_parquet('{raw.transactions}'))
        SELECT 1, rn, order_id, CASE WHEN hash(order_id) % 100 < 3 THEN NULL ELSE customer_id
               END, order_date, product_id, product_name, category, quantity, unit_price,
               round(quantity * unit_price, 2), channel, region, false, 'product', NULL, []
        FROM lines
        UNION ALL  -- 10 % of lines returned 0 to 9 days later (often netting a day to 0)
        SELECT 1, rn + 10000000, 'C' || order_id, customer_id,
               order_date + to_days(CAST(h % 10 AS INTEGER)), product_id, product_name,
               category, -quantity, unit_price, -round(quantity * unit_price, 2), channel,
               region, true, 'product', order_id, []
        FROM lines WHERE h < 10
        UNION ALL  -- postage: real money, not merchandise
        SELECT 1, rn + 20000000, order_id, customer_id, order_date, 'POST', 'POSTAGE', NULL,
               1, 4.95, 4.95, channel, region, false, 'shipping', NULL, []
        FROM lines WHERE h >= 95""")
    yield con
    con.close()


def _purchases(con, freq: str, end: date) -> pd.DataFrame:
    """The purchase table built independently in pandas: net product spend per period > 0."""
    df = con.execute("SELECT customer_id, ts, amount FROM transactions "
                     "WHERE customer_id IS NOT NULL AND line_type = 'product'").df()
    df = df[df["ts"] < pd.Timestamp(end)]
    df["period"] = df["ts"].dt.to_period(freq).dt.start_time
    net = df.groupby(["customer_id", "period"], as_index=False)["amount"].sum()
    return net[net["amount"].round(6) > 0]  # exact netting (float sums leave 1e-15 residues)


def _lifetimes(name: str, *args, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes' own pandas deprecations
        from lifetimes import utils

        return getattr(utils, name)(*args, **kwargs)


@pytest.mark.parametrize("unit, freq, end", [("days", "D", date(2024, 10, 1)),
                                             ("weeks", "W", date(2024, 7, 1)),
                                             ("weeks", "W", date(2024, 12, 19))])
def test_matches_lifetimes_summary(generated, unit, freq, end):
    ours = rfm_summary(generated, as_of=end, unit=unit).frame.set_index("customer_id")
    check_summary(ours)
    theirs = _lifetimes("summary_data_from_transaction_data", _purchases(generated, freq, end),
                        "customer_id", "period", monetary_value_col="amount",
                        observation_period_end=pd.Timestamp(end - timedelta(days=1)),
                        freq=freq).sort_index()
    assert len(ours) > 1000 and list(ours.index) == list(theirs.index)
    assert (ours["frequency"] > 0).mean() > 0.3  # repeat buyers are well represented
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column].to_numpy(float), theirs[column].to_numpy())
    np.testing.assert_allclose(ours["monetary_value"], theirs["monetary_value"], rtol=1e-12)


@pytest.mark.parametrize("unit, freq, cal, obs", [
    ("days", "D", date(2024, 6, 1), date(2024, 12, 1)),
    ("weeks", "W", date(2024, 4, 1), date(2024, 12, 30)),
])
def test_matches_lifetimes_calibration_and_holdout(generated, unit, freq, cal, obs):
    s = calibration_and_holdout(generated, calibration_end=cal, observation_end=obs, unit=unit)
    ours = s.frame.set_index("customer_id")
    theirs = _lifetimes("calibration_and_holdout_data", _purchases(generated, freq, obs),
                        "customer_id", "period",
                        calibration_period_end=pd.Timestamp(cal - timedelta(days=1)),
                        observation_period_end=pd.Timestamp(obs - timedelta(days=1)),
                        freq=freq, monetary_value_col="amount").sort_index()
    assert list(ours.index) == list(theirs.index)
    pairs = {"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal",
             "frequency_holdout": "frequency_holdout"}
    for mine, their in pairs.items():
        np.testing.assert_array_equal(ours[mine].to_numpy(float), theirs[their].to_numpy())
    for mine, their in {"monetary_value": "monetary_value_cal",
                        "monetary_value_holdout": "monetary_value_holdout"}.items():
        np.testing.assert_allclose(ours[mine], theirs[their], rtol=1e-12)
    assert s.duration_holdout == theirs["duration_holdout"].iloc[0]
    assert ours["frequency_holdout"].sum() > 100


# --- invariants ----------------------------------------------------------------------------------


def _frame(**overrides) -> pd.DataFrame:
    base = {"customer_id": ["a", "b", "c"], "frequency": [2, 0, 1],
            "recency": [10.0, 0.0, 3.0], "T": [20.0, 5.0, 3.0],
            "monetary_value": [12.5, 0.0, 8.0]}
    base.update(overrides)
    return pd.DataFrame(base)


def test_valid_summary_passes():
    check_summary(_frame())
    check_summary(_frame().drop(columns="monetary_value"))
    check_summary(_frame(recency=[10.5, 0.0, 2.25], T=[20.75, 5.5, 3.0]))  # continuous time


@pytest.mark.parametrize("overrides, key, en", [
    ({"recency": [10.0, 0.0, 4.0]}, "error.clv_summary_recency_after_T",
     "Recency must not exceed T (the last purchase cannot come after the end of observation), "
     "but customer c has recency 4 > T 3 (1 rows in all)."),
    ({"recency": [10.0, 1.5, 3.0]}, "error.clv_summary_recency_without_repeat",
     "Recency must be 0 when frequency is 0 (no repeat purchase), but customer b has "
     "frequency 0 and recency 1.5 (1 rows in all)."),
    ({"frequency": [2.5, 0, -1]}, "error.clv_summary_frequency",
     "Frequency must be a non-negative whole number of repeat purchases, but customer a has "
     "2.5 (2 rows in all)."),
    ({"monetary_value": [12.5, 0.0, -8.0]}, "error.clv_summary_monetary",
     "The mean spend of repeat purchases must be positive, but customer c has frequency 1 "
     "and monetary_value -8 (1 rows in all)."),
    ({"T": [20.0, -5.0, 3.0]}, "error.clv_summary_negative",
     "Recency and T cannot be negative, but customer b has recency 0 and T -5 (1 rows in all)."),
    ({"T": [20.0, np.nan, 3.0]}, "error.clv_summary_not_finite",
     "Column T of the customer summary has a missing or infinite value (nan) for customer b "
     "(1 rows in all)."),
])
def test_invariant_violations_have_exact_messages(overrides, key, en):
    with pytest.raises(InputError) as err:
        check_summary(_frame(**overrides))
    assert err.value.key == key
    assert err.value.message("en") == en
    zh = err.value.message("zh")
    assert zh == t(key, lang="zh", **err.value.params) and "{" not in zh


def test_zero_monetary_of_one_time_buyer_is_fine_but_checked_on_request():
    check_summary(_frame(monetary_value=[12.5, 0.0, 8.0]), monetary=True)
    with pytest.raises(InputError) as err:
        check_summary(_frame().drop(columns="monetary_value"), monetary=True)
    assert err.value.key == "error.clv_summary_missing_column"
    assert err.value.params == {"column": "monetary_value"}


def test_index_names_rows_without_customer_id():
    frame = _frame(recency=[10.0, 0.0, 4.0]).set_index("customer_id")
    with pytest.raises(InputError) as err:
        check_summary(frame)
    assert err.value.params["customer"] == "c"


# --- compression ---------------------------------------------------------------------------------


def test_compress_weights_count_customers(generated):
    s = rfm_summary(generated, as_of="2024-10-01", unit="weeks")
    rows, weights = compress(s)
    assert rows.shape == (len(weights), 3) and rows.dtype == np.float64
    assert weights.dtype == np.int64 and weights.sum() == len(s)
    assert len(weights) < len(s)  # weekly summaries repeat
    expected = s.frame.groupby(["frequency", "recency", "T"]).size()
    got = pd.Series(weights, index=pd.MultiIndex.from_arrays(rows.T.tolist()))
    assert got.to_dict() == {(float(f), r, tt): n for (f, r, tt), n in expected.items()}


def test_compress_hand_frame():
    frame = pd.DataFrame({"frequency": [0, 1, 0, 1], "recency": [0.0, 2.0, 0.0, 2.0],
                          "T": [5.0, 5.0, 5.0, 7.0]})
    rows, weights = compress(frame)
    np.testing.assert_array_equal(rows, [[0, 0, 5], [1, 2, 5], [1, 2, 7]])
    np.testing.assert_array_equal(weights, [2, 1, 1])
    with pytest.raises(InputError):
        compress(frame.drop(columns="T"))


@pytest.mark.parametrize("fractional", [False, True])
def test_compress_whole_number_path_equals_sql(fractional, monkeypatch):
    # Whole numbers take the packed-key sort; anything else the SQL GROUP BY: same answer.
    rng = np.random.default_rng(5)
    frequency = rng.integers(0, 40, 20_000)
    T = rng.integers(0, 3_000, 20_000).astype(float)
    recency = np.where(frequency > 0, np.floor(T * rng.random(20_000)), 0.0)
    if fractional:
        recency = np.where(frequency > 0, recency + 0.25, 0.0).clip(max=T)
    frame = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T})
    rows, weights = compress(frame)
    monkeypatch.setattr(summary_module, "_compress_whole_numbers", lambda rows: None)
    sql_rows, sql_weights = compress(frame)
    np.testing.assert_array_equal(rows, sql_rows)
    np.testing.assert_array_equal(weights, sql_weights)
    assert weights.sum() == 20_000 and len(weights) < 20_000
