"""Training and scoring frames: point-in-time features, out-of-time splits, labelled mode.

The point-in-time proof: two databases share every transaction, event and customer fact dated
before a cutoff and differ arbitrarily at and after it (rows deleted, changed, added at the
cutoff's midnight, new customers, new channels and categories, new reviews). Every feature of
every customer at that cutoff must be identical, while the labels differ.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from crmlens.datasets.generator import generate_dataset
from crmlens.errors import InputError
from crmlens.predict.dataset import (
    build_labelled_frame,
    build_scoring_frame,
    build_training_frame,
    group_splits,
    out_of_time_splits,
)
from crmlens.workspace import Workspace
from crmlens.workspace.schema import DDL

C0 = date(2023, 12, 1)
CUTOFF = date(2024, 3, 1)
WINDOW = 60  # C0 + 60 days <= CUTOFF: rows of C0 may train for CUTOFF
TABLES = ("transactions", "customers", "events")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A generated shop (messy: returns, postage, anonymous orders), read into Arrow tables."""
    base = tmp_path_factory.mktemp("pit")
    ds = generate_dataset(base / "data", n_customers=400, seed=3, start="2023-01-01",
                          end="2024-06-30", messy=True)
    ws = Workspace(base / "ws")
    ws.ingest("transactions", ds.transactions)
    ws.ingest("customers", ds.customers)
    ws.ingest("events", ds.events)
    with ws.reader() as con:
        return {name: con.sql(f"SELECT * FROM {name} ORDER BY source_id, source_row")
                .to_arrow_table() for name in TABLES}


def _database(source: dict) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads = 1")  # one summation order: exact equality of doubles
    for name in TABLES:
        con.execute(DDL[name])
        con.register("_src", source[name])
        con.execute(f"INSERT INTO {name} SELECT * FROM _src")
        con.unregister("_src")
    return con


def _d(day: date) -> str:
    return f"TIMESTAMP '{day.isoformat()} 00:00:00'"


def _perturb_after(con: duckdb.DuckDBPyConnection, cutoff: date) -> None:
    """Change everything at and after ``cutoff`` and nothing before it."""
    c = _d(cutoff)
    # drop a third of the later rows, rewrite another third
    con.execute(f"DELETE FROM transactions WHERE ts >= {c} AND hash(order_id) % 3 = 0")
    con.execute(f"UPDATE transactions SET amount = amount * 7 + 1, quantity = quantity + 2, "
                f"channel = 'kiosk', category = 'Novelty', is_return = NOT is_return "
                f"WHERE ts >= {c} AND hash(order_id) % 3 = 1")
    # orders of existing customers exactly at the cutoff's midnight: purchases, a big return,
    # postage, in a new channel and category
    con.execute(f"""INSERT INTO transactions (source_id, source_row, order_id, customer_id, ts,
        product_id, category, quantity, amount, channel, is_return, line_type, flags)
        SELECT 9, row_number() OVER (), 'AT' || customer_id || kind, customer_id, {c}, 'NEW',
               'Novelty', q, a, 'kiosk', kind = 'r', CASE kind WHEN 's' THEN 'shipping'
               ELSE 'product' END, []
        FROM (SELECT DISTINCT customer_id FROM transactions
              WHERE customer_id IS NOT NULL AND ts < {c} AND hash(customer_id) % 2 = 0)
        CROSS JOIN (VALUES ('p', 5.0, 9999.0), ('r', -50.0, -5000.0), ('s', 1.0, 12.0))
            AS k(kind, q, a)""")
    # brand-new customers after the cutoff, and data past the old end
    con.execute(f"""INSERT INTO transactions (source_id, source_row, order_id, customer_id, ts,
        product_id, category, quantity, amount, channel, is_return, line_type, flags)
        SELECT 9, 100000 + i, 'NEW' || i, 'NEWCUST' || i, {c} + INTERVAL (i) HOUR, 'NEW',
               'Novelty', 1, 10.0, 'kiosk', false, 'product', []
        FROM range(200) t(i)""")
    con.execute("""INSERT INTO transactions (source_id, source_row, order_id, customer_id, ts,
        product_id, quantity, amount, is_return, line_type, flags)
        VALUES (9, 200000, 'LATE', 'NEWCUST1', TIMESTAMP '2024-07-20 10:00', 'NEW', 1, 1.0,
                false, 'product', [])""")
    # reviews at and after the cutoff, later events deleted
    con.execute(f"DELETE FROM events WHERE ts >= {c} AND hash(source_row) % 2 = 0")
    con.execute(f"""INSERT INTO events (source_id, source_row, customer_id, ts, event_type, value,
        flags)
        SELECT 9, row_number() OVER (), customer_id, {c} + INTERVAL (j) DAY, 'review', 1.0, []
        FROM (SELECT DISTINCT customer_id FROM events) CROSS JOIN range(2) t(j)""")
    # signups after the cutoff move further after it
    con.execute(f"UPDATE customers SET signup_date = signup_date + INTERVAL 30 DAY "
                f"WHERE signup_date >= {c}")


def _truncate_at(con: duckdb.DuckDBPyConnection, cutoff: date) -> None:
    con.execute(f"DELETE FROM transactions WHERE ts >= {_d(cutoff)}")
    con.execute(f"DELETE FROM events WHERE ts >= {_d(cutoff)}")


@pytest.fixture(scope="module")
def frames(source):
    """Training frames of the same cutoffs on the original and on the perturbed data."""
    same = _database(source)
    other = _database(source)
    _perturb_after(other, CUTOFF)
    try:
        a = build_training_frame(same, cutoffs=[C0, CUTOFF], window_days=WINDOW)
        b = build_training_frame(other, cutoffs=[C0, CUTOFF], window_days=WINDOW)
    finally:
        same.close()
        other.close()
    return a, b


def test_perturbation_touches_the_cutoff_day(source):
    con = _database(source)
    before = con.execute("SELECT count(*), sum(amount) FROM transactions").fetchall()
    _perturb_after(con, CUTOFF)
    at_midnight = con.execute(f"SELECT count(*) FROM transactions WHERE ts = {_d(CUTOFF)}"
                              ).fetchall()[0][0]
    assert at_midnight > 100
    assert con.execute("SELECT count(*), sum(amount) FROM transactions").fetchall() != before
    con.close()


def test_features_cover_many_kinds(frames):
    a, _ = frames
    cols = set(a.X.columns)
    assert {"recency_days", "frequency", "monetary", "return_rate", "returned_spend",
            "non_product_spend", "spend_last_90d", "interpurchase_mean_days", "age",
            "signup_tenure_days", "satisfaction", "n_reviews"} <= cols
    assert any(c.startswith("share_channel_") for c in cols)
    assert any(c.startswith("share_category_") for c in cols)
    assert {"gender", "region", "preferred_weekday"} <= set(a.categorical)
    assert (a.X["return_rate"].fillna(0) > 0).any()
    assert a.X["satisfaction"].notna().any()


def test_no_feature_uses_data_at_or_after_the_cutoff(frames):
    a, b = frames
    assert list(a.X.columns) == list(b.X.columns)
    assert a.numeric == b.numeric and a.categorical == b.categorical
    np.testing.assert_array_equal(a.customer_id, b.customer_id)
    np.testing.assert_array_equal(a.cutoff, b.cutoff)
    pd.testing.assert_frame_equal(a.X, b.X, check_exact=True)
    # the new customers of the perturbed data are not in the population of the cutoff
    assert not any(str(c).startswith("NEWCUST") for c in b.customer_id)


def test_labels_see_what_happened_after_the_cutoff(frames):
    a, b = frames
    at = a.cutoff == np.datetime64(CUTOFF, "D")
    before = ~at
    # the labels of C0 ended before the cutoff: unchanged
    np.testing.assert_array_equal(a.y[before], b.y[before])
    np.testing.assert_array_equal(a.days_to_next[before], b.days_to_next[before])
    # at the cutoff they follow the changed future
    assert (a.y[at] != b.y[at]).sum() > 20
    # customers given a purchase at the cutoff's midnight are active, 0 days to next
    ids = b.customer_id[at]
    bought = np.array([hash_even(c) for c in ids])
    assert bought.any()
    assert (b.y[at][bought] == 0).all()
    assert (b.days_to_next[at][bought] == 0).all()


def hash_even(customer_id: str) -> bool:
    """The customers `_perturb_after` gave a purchase at the cutoff (DuckDB's hash)."""
    return duckdb.execute("SELECT hash(?) % 2 = 0", [customer_id]).fetchall()[0][0]


def test_scoring_frame_as_of_the_cutoff(source, frames):
    a, _ = frames
    got = []
    for change in (None, _perturb_after, _truncate_at):
        con = _database(source)
        if change is not None:
            change(con, CUTOFF)
        X, ids, as_of = build_scoring_frame(con, columns=list(a.X.columns), as_of=CUTOFF)
        con.close()
        assert as_of == CUTOFF
        got.append((X, ids))
    for X, ids in got[1:]:
        np.testing.assert_array_equal(ids, got[0][1])
        pd.testing.assert_frame_equal(X, got[0][0], check_exact=True)
    # and they are the training rows of that cutoff
    at = a.cutoff == np.datetime64(CUTOFF, "D")
    np.testing.assert_array_equal(got[0][1], a.customer_id[at])
    pd.testing.assert_frame_equal(got[0][0], a.X[at].reset_index(drop=True), check_exact=True)


def test_a_change_before_the_cutoff_shows(source, frames):
    """The proof is not vacuous: moving one purchase to the day before the cutoff shows."""
    a, _ = frames
    con = _database(source)
    who = con.execute(f"""SELECT customer_id, order_id FROM transactions
        WHERE customer_id IS NOT NULL AND ts < {_d(CUTOFF)} AND line_type = 'product'
          AND NOT is_return AND quantity > 0 ORDER BY ts DESC LIMIT 1""").fetchall()[0]
    con.execute("UPDATE transactions SET amount = amount + 1000 WHERE order_id = ?", [who[1]])
    X, ids, _ = build_scoring_frame(con, columns=list(a.X.columns), as_of=CUTOFF)
    con.close()
    at = a.cutoff == np.datetime64(CUTOFF, "D")
    row = int(np.flatnonzero(ids == who[0])[0])
    assert X["monetary"].iloc[row] == pytest.approx(
        a.X[at].reset_index(drop=True)["monetary"].iloc[row] + 1000 * _lines(source, who[1]))


def _lines(source: dict, order_id: str) -> int:
    con = _database(source)
    n = con.execute("SELECT count(*) FROM transactions WHERE order_id = ?", [order_id]
                    ).fetchall()[0][0]
    con.close()
    return n


# -- splits ----------------------------------------------------------------------------------

def test_out_of_time_splits_by_hand():
    cutoffs = [date(2024, 1, 1) + timedelta(days=30 * i) for i in range(6)]
    index = np.repeat(np.arange(6), 4)
    splits = out_of_time_splits(index, cutoffs, window_days=90, n_test_cutoffs=2)
    assert len(splits) == 2
    for (train, test, label), k in zip(splits, (4, 5)):
        test_day = cutoffs[k]
        assert (index[test] == k).all() and len(test) == 4
        # every training row's label window closed by the test cutoff ...
        assert all(cutoffs[i] + timedelta(days=90) <= test_day for i in index[train])
        # ... and every row that may train does
        allowed = [i for i, c in enumerate(cutoffs) if c + timedelta(days=90) <= test_day]
        assert sorted(set(index[train])) == allowed
        assert test_day.isoformat() in label
    assert [sorted(set(index[s[0]])) for s in splits] == [[0, 1], [0, 1, 2]]


def test_out_of_time_splits_need_an_early_cutoff():
    cutoffs = [date(2024, 1, 1), date(2024, 2, 1)]
    assert out_of_time_splits(np.array([0, 1]), cutoffs, window_days=90) == []


def test_training_frame_splits_are_out_of_time(frames):
    a, _ = frames
    assert a.splits
    for train, test, _ in a.splits:
        test_days = set(a.cutoff[test].tolist())
        assert len(test_days) == 1
        test_day = test_days.pop()
        train_cut = a.cutoff[train].astype("datetime64[D]")
        assert (train_cut + np.timedelta64(WINDOW, "D") <= np.datetime64(test_day, "D")).all()
        assert not set(train) & set(test)


def test_group_splits_keep_customers_together():
    rng = np.random.default_rng(0)
    groups = rng.choice([f"c{i}" for i in range(30)], size=200)
    splits = group_splits(groups, n_folds=5)
    assert len(splits) == 5
    tested = np.concatenate([test for _, test, _ in splits])
    assert sorted(tested) == list(range(200))  # each row tested once
    for train, test, label in splits:
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == 200
        assert "5" in label
    assert group_splits(np.array(["a", "a", "a"])) == []
    assert len(group_splits(np.array(["a", "b", "a"]), n_folds=5)) == 2


def test_bad_target_and_cutoff(source):
    con = _database(source)
    with pytest.raises(InputError) as err:
        build_training_frame(con, target="revenue")
    assert err.value.key == "error.predict_bad_target"
    with pytest.raises(InputError) as err:  # its window is not observed yet
        build_training_frame(con, cutoffs=[date(2024, 6, 1)], window_days=WINDOW)
    assert err.value.key == "error.predict_bad_cutoff"
    con.close()


# -- labelled mode ---------------------------------------------------------------------------

def _customers_csv(path, n: int = 160) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    age = rng.integers(18, 80, size=n)
    df = pd.DataFrame({
        "CustomerID": [f"K{1000 + i}" for i in range(n)],
        "name": [f"Person {i}" for i in range(n)],            # an identifier: dropped
        "age": age,
        "region": rng.choice(["North", "South", "East"], size=n),
        "score_text": [f"{v:.1f}" for v in rng.normal(size=n)],  # numbers as text
        "constant": "same",
        "duration": rng.integers(0, 1000, size=n),
        "Subscribed": np.where(age > 50, "Yes", "No"),
    })
    df.loc[[3, 7], "Subscribed"] = ""
    df.to_csv(path, index=False)
    return df


def test_labelled_frame_from_a_file(tmp_path):
    df = _customers_csv(tmp_path / "c.csv")
    frame = build_labelled_frame(None, target="subscribed", source=tmp_path / "c.csv",
                                 exclude=["Duration"])
    assert frame.mode == "labelled" and frame.target == "Subscribed"
    assert frame.positive == "Yes"
    assert frame.n_rows_dropped == 2
    kept = df.drop(index=[3, 7]).reset_index(drop=True)
    np.testing.assert_array_equal(frame.customer_id, kept["CustomerID"].to_numpy())
    np.testing.assert_array_equal(frame.y, (kept["Subscribed"] == "Yes").astype(int))
    assert frame.dropped == {"Subscribed": "target", "CustomerID": "id", "name": "identifier",
                             "constant": "constant", "duration": "excluded"}
    assert list(frame.X.columns) == ["age", "region", "score_text"]
    assert frame.numeric == ["age", "score_text"] and frame.categorical == ["region"]
    np.testing.assert_allclose(frame.X["score_text"], kept["score_text"].astype(float))
    assert frame.window_days is None and frame.days_to_next is None and frame.cutoffs == []
    # stratified folds: every row tested once, both classes in every test fold
    tested = np.concatenate([test for _, test, _ in frame.splits])
    assert sorted(tested) == list(range(len(frame.y)))
    assert all(len(set(frame.y[test])) == 2 for _, test, _ in frame.splits)


def test_labelled_frame_without_an_id_column(tmp_path):
    df = _customers_csv(tmp_path / "c.csv").drop(columns=["CustomerID"])
    df.to_csv(tmp_path / "noid.csv", index=False)
    frame = build_labelled_frame(None, target="Subscribed", source=tmp_path / "noid.csv")
    assert "CustomerID" not in frame.dropped
    assert frame.customer_id[0] == "1" and frame.customer_id[3] == "5"  # rows 4 and 8 empty
    assert "duration" in frame.X.columns


def test_labelled_frame_explicit_positive(tmp_path):
    _customers_csv(tmp_path / "c.csv")
    frame = build_labelled_frame(None, target="Subscribed", source=tmp_path / "c.csv",
                                 positive="no")
    assert frame.positive == "No"
    assert frame.y.mean() < 0.8


@pytest.mark.parametrize("kwargs, key", [
    ({"target": "churned"}, "error.predict_unknown_column"),
    ({"target": "Subscribed", "positive": "maybe"}, "error.predict_positive_unknown"),
    ({"target": "Subscribed", "exclude": ["nope"]}, "error.predict_unknown_column"),
    ({"target": "region"}, "error.predict_positive_needed"),
    ({"target": "constant"}, "error.predict_one_class"),
    ({"target": "Subscribed", "id_column": "nope"}, "error.predict_unknown_column"),
    ({"target": "Subscribed", "n_folds": 1}, "error.predict_bad_folds"),
])
def test_labelled_frame_errors(tmp_path, kwargs, key):
    _customers_csv(tmp_path / "c.csv")
    with pytest.raises(InputError) as err:
        build_labelled_frame(None, source=tmp_path / "c.csv", **kwargs)
    assert err.value.key == key
    assert err.value.message("en") and err.value.message("zh")


def test_labelled_frame_needs_customers():
    with pytest.raises(InputError) as err:
        build_labelled_frame(None, target="y")
    assert err.value.key == "error.predict_no_customer_table"
