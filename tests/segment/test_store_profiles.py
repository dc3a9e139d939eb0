"""Saved segmentations, profiles (personas) and migration between runs."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from crmlens.errors import InputError
from crmlens.segment import migration as mig
from crmlens.segment import profiles, store as seg_store
from crmlens.workspace import store


@pytest.fixture()
def con():
    c = duckdb.connect()
    store.ensure_schema(c)
    yield c
    c.close()


def _features(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"c{i:03d}" for i in range(n)],
        "recency_days": rng.integers(1, 365, n).astype(float),
        "frequency": rng.integers(1, 30, n).astype(float),
        "monetary": rng.gamma(2.0, 150.0, n),
        "tenure_days": rng.integers(30, 800, n).astype(float),
        "constant": np.ones(n),
        "region": rng.choice(["North", "South"], n),
    })


def test_save_and_read_back(con):
    labels = pd.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["x", "y", "x"]})
    rid = seg_store.save_segmentation(con, name="demo", method="test", as_of=None,
                                      params={"k": 2}, labels=labels, order=["y", "x"])
    run = seg_store.get_run(con, rid)
    assert (run.name, run.method, run.n_segments, run.n_customers) == ("demo", "test", 2, 3)
    assert run.params == {"k": 2} and run.notes["order"] == ["y", "x"]
    assert seg_store.read_labels(con, rid).values.tolist() == [["a", "x"], ["b", "y"], ["c", "x"]]
    rid2 = seg_store.save_segmentation(con, name="demo", method="test", as_of=None, params={},
                                       labels=labels)
    assert rid2 > rid and seg_store.latest_run(con, "demo") == rid2
    assert seg_store.resolve_run(con, "demo").run_id == rid2
    assert seg_store.resolve_run(con, str(rid)).run_id == rid
    assert [r.run_id for r in seg_store.list_runs(con)] == [rid2, rid]


def test_run_ids_follow_the_runs_table(con):
    con.execute("INSERT INTO runs (run_id, step, status, started_at) VALUES (7, 'x', 'ok', now())")
    labels = pd.DataFrame({"customer_id": ["a"], "segment": ["x"]})
    assert seg_store.save_segmentation(con, name="n", method="m", as_of=None, params={},
                                       labels=labels) == 8


def test_refuses_empty_and_unknown(con):
    with pytest.raises(InputError) as e:
        seg_store.save_segmentation(con, name="vip", method="rule", as_of=None, params={},
                                    labels=pd.DataFrame({"customer_id": [], "segment": []}))
    assert "vip" in str(e.value)
    with pytest.raises(InputError) as e:
        seg_store.resolve_run(con, "nope")
    assert "nope" in str(e.value)
    assert con.execute("SELECT count(*) FROM segment_runs").fetchone()[0] == 0


def test_profiles_figures_and_names():
    f = _features()
    labels = pd.DataFrame({"customer_id": f["customer_id"],
                           "segment": np.where(f["monetary"] > f["monetary"].median(), "big",
                                               "small")})
    prof = {p["segment"]: p for p in profiles.profile_segments(f, labels)}
    big, small = prof["big"], prof["small"]
    assert big["n_customers"] + small["n_customers"] == 200
    assert big["share_customers"] == pytest.approx(0.5)
    assert big["share_revenue"] + small["share_revenue"] == pytest.approx(1.0)
    assert big["share_revenue"] > 0.7
    # Lift is the standardized difference of means.
    mean_all, std_all = f["monetary"].mean(), f["monetary"].std(ddof=0)
    seg_mean = f.loc[f["monetary"] > f["monetary"].median(), "monetary"].mean()
    assert big["features"]["monetary"]["lift"] == pytest.approx((seg_mean - mean_all) / std_all)
    assert big["distinguishing"][0]["feature"] == "monetary"
    assert "constant" not in big["features"] and "region" not in big["features"]
    assert big["name"]["en"].startswith("High-value") and big["name"]["zh"].startswith("高价值")
    assert small["name"]["en"].startswith("Low-value") and small["name"]["zh"].startswith("低价值")
    assert big["action"]["en"] and big["action"]["zh"]


def test_profile_names_given_by_the_method_win():
    f = _features(20)
    labels = pd.DataFrame({"customer_id": f["customer_id"], "segment": "champions"})
    p = profiles.profile_segments(f, labels, names={"champions": {
        "en": ("Champions", "Reward them"), "zh": ("冠军客户", "奖励")}})[0]
    assert p["name"] == {"en": "Champions", "zh": "冠军客户"}
    assert p["action"]["zh"] == "奖励"


@pytest.mark.parametrize(("levels", "en", "action"), [
    ({"monetary": 0.9, "frequency": 0.9, "recency_days": 0.1, "tenure_days": 0.8},
     "High-value frequent active customers", "reward"),
    ({"monetary": 0.9, "frequency": 0.5, "recency_days": 0.9, "tenure_days": 0.8},
     "High-value lapsed customers", "win_back"),
    ({"monetary": 0.2, "frequency": 0.1, "recency_days": 0.1, "tenure_days": 0.1},
     "Low-value occasional new customers", "onboard"),
    ({"monetary": 0.1, "frequency": 0.1, "recency_days": 0.9, "tenure_days": 0.6},
     "Low-value occasional lapsed customers", "let_go"),
])
def test_describe_name(levels, en, action):
    from crmlens.i18n import t
    name, act = profiles.describe_name(levels, lang="en")
    assert name == en
    assert act == t(f"segment.profile.action.{action}", lang="en")


def test_top_products_per_segment(con):
    con.execute("""INSERT INTO transactions VALUES
        (1, 1, 'o1', 'a', '2024-01-01', 'p1', 'Mug', 'Home', 1, 5, 5, NULL, NULL, false, 'product', NULL, []),
        (1, 2, 'o1', 'a', '2024-01-01', 'p2', 'Tea', 'Food', 1, 9, 9, NULL, NULL, false, 'product', NULL, []),
        (1, 3, 'o2', 'b', '2024-01-02', 'p1', 'Mug', 'Home', 3, 5, 15, NULL, NULL, false, 'product', NULL, []),
        (1, 4, 'o2', 'b', '2024-01-02', 'POST', 'Postage', NULL, 1, 40, 40, NULL, NULL, false, 'shipping', NULL, []),
        (1, 5, 'o3', 'b', '2024-03-02', 'p2', 'Tea', 'Food', 10, 9, 90, NULL, NULL, false, 'product', NULL, [])""")
    f = pd.DataFrame({"customer_id": ["a", "b"], "monetary": [14.0, 55.0],
                      "frequency": [1.0, 2.0]})
    labels = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["s1", "s2"]})
    from datetime import date
    prof = {p["segment"]: p for p in profiles.profile_segments(
        f, labels, con=con, as_of=date(2024, 2, 1))}
    assert [x["item"] for x in prof["s1"]["top_products"]] == ["Tea", "Mug"]
    # Postage is not a product; the March order is after the as-of date.
    assert prof["s2"]["top_products"] == [{"item": "Mug", "spend": 15.0, "customers": 1}]
    assert [x["item"] for x in prof["s2"]["top_categories"]] == ["Home"]


def test_migration_counts_every_customer(con):
    a = pd.DataFrame({"customer_id": list("abcdef"), "segment": list("xxxyyy")})
    b = pd.DataFrame({"customer_id": list("abcdeg"), "segment": list("xyyyzz")})
    r1 = seg_store.save_segmentation(con, name="q", method="m", as_of=None, params={}, labels=a,
                                     order=["y", "x"])
    r2 = seg_store.save_segmentation(con, name="q", method="m", as_of=None, params={}, labels=b)
    m = mig.migration(con, r1, "q")
    assert m.rows == ["y", "x", mig.ABSENT]
    assert m.columns == ["x", "y", "z", mig.ABSENT]
    assert m.counts == [[0, 1, 1, 1], [1, 2, 0, 0], [0, 0, 1, 0]]
    assert sum(map(sum, m.counts)) == 7  # a..g
    assert m.stayed == 2  # a stays x, d stays y
    assert m.shares[1] == pytest.approx([1 / 3, 2 / 3, 0, 0])
    fig = mig.sankey(m, lang="zh")
    assert sum(fig.data[0].link.value) == 7
    assert "（未在该次细分中）" in fig.data[0].node.label
    assert m.to_dict()["from"]["run_id"] == r1


def test_top_value_and_returns_qualify_the_name():
    from crmlens.i18n import t
    name, _ = profiles.describe_name({"monetary": 0.99, "frequency": 0.9, "recency_days": 0.1,
                                      "tenure_days": 0.9}, lang="zh")
    assert name == "顶级价值高频活跃客户"
    name, action = profiles.describe_name({"monetary": 0.2, "recency_days": 0.8,
                                           "return_rate_lift": 4.0}, lang="en")
    assert name == "Low-value lapsed customers with many returns"
    assert action == t("segment.profile.action.fix_returns", lang="en")


def test_distinctive_products_leave_out_what_everybody_buys(con):
    rows = []
    for i in range(10):
        seg_item = "Kite" if i < 5 else "Tent"
        for j, item in enumerate(("Bread", seg_item)):
            rows.append(f"(1, {2 * i + j}, 'o{i}', 'c{i}', '2024-01-0{1 + i % 9}', '{item}', "
                        f"'{item}', NULL, 1, 5, {50 if item == 'Bread' else 5}, NULL, NULL, "
                        "false, 'product', NULL, [])")
    con.execute("INSERT INTO transactions VALUES " + ", ".join(rows))
    labels = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                           "segment": ["a"] * 5 + ["b"] * 5})
    f = pd.DataFrame({"customer_id": labels["customer_id"], "monetary": range(10)})
    prof = {p["segment"]: p for p in profiles.profile_segments(f, labels, con=con)}
    assert prof["a"]["top_products"][0]["item"] == "Bread"          # the best-seller by spend
    assert prof["a"]["distinctive_products"][0] == {
        "item": "Kite", "spend": 25.0, "customers": 5, "lift": 2.0}
    assert prof["b"]["distinctive_products"][0]["item"] == "Tent"
    assert [x["lift"] for x in prof["a"]["distinctive_products"]] == [2.0, 1.0]
    assert not con.execute("SELECT count(*) FROM duckdb_tables() "
                           "WHERE table_name = '_crmlens_profile_pairs'").fetchall()[0][0]
