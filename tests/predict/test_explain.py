"""Global importance and per-customer factors, and their wording."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from crmlens.predict.explain import (
    customer_factors,
    describe_factor,
    permutation_importance_table,
    typical_values,
)
from crmlens.predict.models import make_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpool_limits(limits=1):
        yield


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 300, size=n)
    X = pd.DataFrame({
        "recency": recency,
        "noise": rng.normal(size=n),
        "region": rng.choice(np.array(["a", "b"], dtype=object), size=n),
    })
    y = rng.binomial(1, 1 / (1 + np.exp(-(-2.0 + 0.02 * recency))))
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _data(1500, 0)
    model = make_model("logreg", numeric=["recency", "noise"], categorical=["region"],
                       class_weight=None).fit(X, y)
    return model, X, y


def test_permutation_importance_ranks_the_informative_feature_first(fitted):
    model, _, _ = fitted
    X_test, y_test = _data(800, 1)
    table = permutation_importance_table(model, X_test, y_test, n_repeats=3)
    assert list(table.columns) == ["feature", "importance", "std"]
    assert sorted(table["feature"]) == ["noise", "recency", "region"]
    assert table["feature"].iloc[0] == "recency"
    imp = table.set_index("feature")["importance"]
    assert imp["recency"] > 0.2
    assert abs(imp["noise"]) < 0.01 and abs(imp["region"]) < 0.01
    assert table["importance"].is_monotonic_decreasing


def test_permutation_importance_single_class_is_zero(fitted):
    model, X, _ = fitted
    table = permutation_importance_table(model, X, np.zeros(len(X), dtype=int))
    assert (table["importance"] == 0).all() and len(table) == 3


def test_typical_values():
    X = pd.DataFrame({"n": [1.0, 5.0, np.nan, 3.0], "c": ["x", "y", "y", None],
                      "e": [None, None, None, None]})
    ref = typical_values(X)
    assert ref["n"] == 3.0 and ref["c"] == "y" and ref["e"] is None


def test_factor_of_a_high_value_raises_the_risk(fitted):
    model, X, _ = fitted
    rows = pd.DataFrame({"recency": [290.0, 10.0], "noise": [0.0, 0.0],
                         "region": ["a", "a"]})
    ref = pd.Series({"recency": 150.0, "noise": 0.0, "region": "a"}, dtype=object)
    factors = customer_factors(model, rows, top=3, reference=ref)
    # noise and region equal their reference: no factor; one factor per row
    assert factors["feature"].tolist() == ["recency", "recency"]
    assert factors["row"].tolist() == [0, 1]
    assert factors["rank"].tolist() == [1, 1]
    high, low = factors.iloc[0], factors.iloc[1]
    assert high["effect"] > 0.2 and low["effect"] < -0.1
    assert high["value"] == "290" and high["reference"] == "150"
    # the effect is the risk minus the risk at the reference value
    p = model.predict_proba(pd.DataFrame({"recency": [290.0, 150.0], "noise": [0.0, 0.0],
                                          "region": ["a", "a"]}))[:, 1]
    assert high["effect"] == pytest.approx(p[0] - p[1])


def test_factor_ranks_and_reference_rows(fitted):
    model, X, _ = fitted
    sample = X.iloc[:41].reset_index(drop=True)
    ref = typical_values(sample)
    factors = customer_factors(model, sample, top=2)
    assert list(factors.columns) == ["row", "rank", "feature", "value", "reference", "effect"]
    assert (factors.groupby("row")["rank"].apply(
        lambda r: r.tolist() == list(range(1, len(r) + 1)))).all()
    assert factors.groupby("row").size().max() <= 2
    # largest absolute effect first within a row
    for _, group in factors.groupby("row"):
        assert group["effect"].abs().is_monotonic_decreasing
    # the row whose recency is the median (odd n: an actual value) has no recency factor
    at_median = int(np.flatnonzero(sample["recency"] == ref["recency"])[0])
    assert "recency" not in factors.loc[factors["row"] == at_median, "feature"].tolist()
    # rows far from the typical recency have recency as their strongest factor
    firsts = factors[factors["rank"] == 1].set_index("row")["feature"]
    far = np.flatnonzero(np.abs(sample["recency"] - ref["recency"]) > 30)
    assert len(far) > 20
    assert (firsts.loc[far] == "recency").all()
    assert (factors["effect"] != 0).all()


def test_factor_signs_follow_the_value(fitted):
    model, X, _ = fitted
    sample = X.iloc[:101].reset_index(drop=True)
    ref = typical_values(sample)["recency"]
    factors = customer_factors(model, sample, top=1)
    rec = factors[factors["feature"] == "recency"]
    values = sample["recency"].to_numpy()[rec["row"].to_numpy()]
    np.testing.assert_array_equal(np.sign(rec["effect"]), np.sign(values - ref))


def test_factors_of_no_rows(fitted):
    model, X, _ = fitted
    out = customer_factors(model, X.iloc[:0])
    assert len(out) == 0
    assert list(out.columns) == ["row", "rank", "feature", "value", "reference", "effect"]


def test_factors_of_an_integer_column_with_a_fractional_median():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"orders": rng.integers(0, 20, size=200)})
    y = (X["orders"] < 5).astype(int).to_numpy()
    model = make_model("logreg", numeric=["orders"], categorical=[], class_weight=None).fit(X, y)
    rows = pd.DataFrame({"orders": [1, 2, 11, 19]})  # median 6.5
    factors = customer_factors(model, rows)
    assert len(factors) == 4
    assert factors.loc[0, "effect"] > 0


def test_describe_factor_english():
    text = describe_factor("Days since last purchase", 210, 45, 0.18, lang="en")
    assert text == ("Days since last purchase is 210 (typical: 45): "
                    "raises the risk by 18.0 points")
    text = describe_factor("Orders", 1, 4.5, -0.0734, lang="en")
    assert text == "Orders is 1 (typical: 4.50): lowers the risk by 7.3 points"
    assert "not recorded" in describe_factor("Region", None, "north", 0.05, lang="en")
    assert describe_factor("Spend", "12500", 900, 0.02, lang="en").startswith(
        "Spend is 12,500 (typical: 900)")


def test_describe_factor_chinese():
    up = describe_factor("最近购买天数", 210, 45, 0.18, lang="zh")
    assert "升高" in up and "18.0" in up and "210" in up and "45" in up
    down = describe_factor("订单数", 1, 4, -0.05, lang="zh")
    assert "降低" in down and "5.0" in down
    assert "无记录" in describe_factor("地区", None, "north", 0.05, lang="zh")
