"""Feature values worked out by hand on the tiny table of conftest.py."""

from __future__ import annotations

import statistics
from datetime import date, datetime

import pytest

from crmlens.errors import InputError
from crmlens.features import compute_features, feature_sql

from .conftest import AS_OF, add_side_tables


def _rows(con, result):
    df = con.table(result.table).df().set_index("customer_id")
    return df


def test_hand_computed_values(con):
    res = compute_features(con, as_of=AS_OF)
    df = _rows(con, res)
    # C has only a return, the anonymous row has no customer: neither gets a row.
    assert sorted(df.index) == ["A", "B"] and res.n_customers == 2
    a = df.loc["A"]
    assert a.recency_days == 11  # 2024-06-20 -> 2024-07-01
    assert a.frequency == 4  # O1..O4; the return C2 and O5 (after as_of) are not orders
    assert a.monetary == pytest.approx(20 + 10 + 30 - 10 + 40 + 20)  # postage left out
    assert a.gross_spend == pytest.approx(120) and a.returned_spend == pytest.approx(10)
    assert a.non_product_spend == pytest.approx(5)
    assert a.avg_order_value == pytest.approx(110 / 4)
    assert a.return_rate == pytest.approx(10 / 120)
    assert a.tenure_days == 182  # 2024-01-01 -> 2024-07-01
    times = [datetime(2024, 1, 1, 10), datetime(2024, 1, 11, 10), datetime(2024, 5, 1, 14),
             datetime(2024, 6, 20, 10)]
    gaps = [(b - x).total_seconds() / 86400 for x, b in zip(times, times[1:])]
    assert gaps[0] == 10
    assert a.interpurchase_mean_days == pytest.approx(171 / 3)
    assert a.interpurchase_std_days == pytest.approx(statistics.stdev(gaps))
    assert a.n_products == 3 and a.n_categories == 3
    # last 90 days: [2024-04-02, 2024-07-01) = O3 + O4; previous: [2024-01-03, 2024-04-02)
    assert a.spend_last_90d == pytest.approx(60)
    assert a.spend_prev_90d == pytest.approx(30 - 10)
    assert a.spend_trend == pytest.approx((60 - 20) / 80)
    assert a.preferred_weekday == 4  # Thursday: O2 and O4
    assert a.preferred_hour == 10
    assert a.share_channel_web == pytest.approx(90 / 120)
    assert a.share_channel_app == pytest.approx(30 / 120)
    assert a.share_channel_store == 0
    assert a.share_category_toys == pytest.approx(50 / 120)
    assert a.share_category_books == pytest.approx(30 / 120)
    assert a.share_category_garden == pytest.approx(40 / 120)
    assert "share_category_other" not in df.columns  # every purchase line has a category


def test_single_order_customer(con):
    b = _rows(con, compute_features(con, as_of=AS_OF)).loc["B"]
    assert b.frequency == 1 and b.recency_days == b.tenure_days == 122
    assert b.interpurchase_mean_days != b.interpurchase_mean_days  # NaN: no gap
    assert b.spend_last_90d == 0 and b.spend_prev_90d == 15 and b.spend_trend == -1
    assert b.share_channel_store == 1 and b.preferred_weekday == 5 and b.preferred_hour == 9
    assert b.return_rate == 0


def test_shares_sum_to_one(con):
    df = _rows(con, compute_features(con, as_of=AS_OF))
    for family in ("share_channel_", "share_category_"):
        cols = [c for c in df.columns if c.startswith(family)]
        assert df[cols].sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


def test_other_category_and_unknown_channel(con):
    con.execute("INSERT INTO transactions VALUES (1, 99, 'O9', 'B', TIMESTAMP '2024-03-05', "
                "'P9', NULL, NULL, 1, 5, 5, NULL, NULL, false, 'product', NULL, [])")
    res = compute_features(con, as_of=AS_OF)
    b = _rows(con, res).loc["B"]
    assert b.share_category_other == pytest.approx(5 / 20)
    assert b.share_channel_unknown == pytest.approx(5 / 20)
    assert res.label("share_category_other") == "Share of spend: other"
    assert res.label("share_channel_store", "zh") == "渠道消费占比：store"


def test_top_eight_categories_plus_other(con):
    rows = [f"(1, {100 + i}, 'X{i}', 'B', TIMESTAMP '2024-02-0{1 + i % 9}', 'Q{i}', NULL, "
            f"'cat {i}', 1, {i + 1}, {i + 1}, 'web', NULL, false, 'product', NULL, [])"
            for i in range(10)]
    con.execute("INSERT INTO transactions VALUES " + ", ".join(rows))
    res = compute_features(con, as_of=AS_OF)
    cats = [s["name"] for s in res.shares if s["family"] == "category"]
    assert len(cats) == 9 and cats[-1] == "share_category_other"
    # By spend: Toys 65, Garden 40, Books 30, then cat 9 (10) ... cat 5 (6); cat 0-4: other.
    assert cats[:-1] == ["share_category_toys", "share_category_garden", "share_category_books",
                         *[f"share_category_cat_{i}" for i in (9, 8, 7, 6, 5)]]
    b = con.table(res.table).df().set_index("customer_id").loc["B"]
    assert b.share_category_other == pytest.approx((1 + 2 + 3 + 4 + 5) / (15 + 55))


def test_point_in_time(con):
    before = _rows(con, compute_features(con, as_of=AS_OF))
    # Anything on or after the as-of date never changes the features.
    con.execute("INSERT INTO transactions VALUES (1, 200, 'O20', 'A', TIMESTAMP '2024-07-01', "
                "'P7', NULL, 'Toys', 1, 500, 500, 'phone', NULL, false, 'product', NULL, []), "
                "(1, 201, 'C21', 'B', TIMESTAMP '2024-09-01', 'P1', NULL, 'Toys', -1, -15, -15, "
                "'store', NULL, true, 'product', 'O6', [])")
    after = _rows(con, compute_features(con, as_of=AS_OF))
    assert after.equals(before)


def test_default_as_of_is_day_after_last_transaction(con):
    res = compute_features(con)
    assert res.as_of == date(2024, 7, 6)  # last transaction: 2024-07-05 (O5)
    assert _rows(con, res).loc["A"].frequency == 5


def test_attributes_and_satisfaction(con):
    add_side_tables(con)
    df = _rows(con, compute_features(con, as_of=AS_OF))
    a, b = df.loc["A"], df.loc["B"]
    assert a.age == 33  # born 1990-07-02: turns 34 the day after the as-of date
    assert (a.gender, a.income, a.region) == ("F", 5000, "East")
    assert a.signup_tenure_days == 213
    # review 4 and Rating 2 count; email_click has a value but is not a review; the
    # review of August is after the as-of date.
    assert a.satisfaction == pytest.approx(3) and a.n_reviews == 2
    assert b.n_reviews == 0 and b.satisfaction != b.satisfaction
    assert b.age != b.age


def test_rfm_only_agrees(con):
    full = _rows(con, compute_features(con, as_of=AS_OF))
    rfm = _rows(con, compute_features(con, as_of=AS_OF, rfm_only=True, into="_rfm"))
    cols = ["recency_days", "frequency", "monetary"]
    assert list(rfm.columns) == ["as_of", *cols]
    assert rfm[cols].sort_index().equals(full[cols].sort_index())


def test_sql_is_what_runs(con):
    sql = feature_sql(con, as_of=AS_OF)
    con.execute(sql)
    df = con.table("_crm_features").df().set_index("customer_id").sort_index()
    ref = _rows(con, compute_features(con, as_of=AS_OF, into="_ref")).sort_index()
    assert df.equals(ref)


def test_from_parquet_and_relation(con, tmp_path):
    path = tmp_path / "tx.parquet"
    con.execute(f"COPY transactions TO '{path}' (FORMAT parquet)")
    ref = _rows(con, compute_features(con, as_of=AS_OF)).sort_index()
    import duckdb

    other = duckdb.connect()
    got = other.table(compute_features(other, as_of=AS_OF, source=path).table).df()
    assert got.set_index("customer_id").sort_index().equals(ref)
    rel = other.sql(f"SELECT * FROM read_parquet('{path}')")
    got = other.table(compute_features(other, as_of=AS_OF, source=rel, into="_r").table).df()
    assert got.set_index("customer_id").sort_index().equals(ref)


@pytest.mark.parametrize("as_of, key", [
    ("2023-01-01", "error.features_as_of_before_data"),
    ("2024-01-01", "error.features_as_of_before_data"),
    ("01/02/2024", "error.features_bad_date"),
    ("2024-01-02", None),
])
def test_bad_as_of(con, as_of, key):
    if key is None:  # the day after the first purchase works
        assert compute_features(con, as_of=as_of).n_customers == 1
        return
    with pytest.raises(InputError) as info:
        compute_features(con, as_of=as_of)
    assert info.value.key == key


def test_no_transactions_and_no_customers(con):
    con.execute("DELETE FROM transactions WHERE customer_id IS NOT NULL")
    with pytest.raises(InputError) as info:
        compute_features(con, as_of=AS_OF)
    assert info.value.key == "error.features_no_customers"
    con.execute("DELETE FROM transactions")
    with pytest.raises(InputError) as info:
        compute_features(con)
    assert info.value.key == "error.features_no_transactions"


def test_hostile_category_names_are_quoted(con):
    con.execute("INSERT INTO transactions VALUES (1, 300, 'O30', 'B', TIMESTAMP '2024-03-02', "
                "'P5', NULL, 'x''); DROP TABLE transactions; --', 1, 9, 9, 'web', NULL, false, "
                "'product', NULL, [])")
    res = compute_features(con, as_of=AS_OF)
    assert con.execute("SELECT count(*) FROM transactions").fetchall()[0][0] == 12
    names = [s["name"] for s in res.shares]
    assert "share_category_x_drop_table_transactions" in names


def test_product_under_two_categories_counts_once(con):
    con.execute("INSERT INTO transactions VALUES (1, 400, 'O40', 'B', TIMESTAMP '2024-03-03', "
                "'P1', NULL, 'Gifts', 1, 4, 4, 'store', NULL, false, 'product', NULL, [])")
    b = _rows(con, compute_features(con, as_of=AS_OF)).loc["B"]
    assert b.n_products == 1 and b.n_categories == 2
    assert b.frequency == 2
