"""The leakage warning: leaks fire, strong honest features and identifiers do not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from crmlens.predict.leakage import leakage_scan, single_feature_auc


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def churn():
    """A behaviour family (recency, frequency, trend) driven by one latent engagement."""
    rng = np.random.default_rng(3)
    n = 2000
    engagement = rng.normal(size=n)
    recency = np.exp(3.5 - 0.9 * engagement + rng.normal(0, 0.3, size=n))
    frequency = np.round(np.exp(1.5 + 0.8 * engagement + rng.normal(0, 0.3, size=n)))
    trend = 0.7 * engagement + rng.normal(0, 0.4, size=n)
    y = rng.binomial(1, 1 / (1 + np.exp(-(-1.0 - 1.6 * engagement))))
    # recorded after the outcome: a noisy copy of y
    after = y + rng.normal(0, 0.3, size=n)
    X = pd.DataFrame({
        "recency": recency, "frequency": frequency, "trend": trend,
        "noise": rng.normal(size=n),
        "customer_id": rng.permutation(n).astype(str),
        "cancel_reason_score": after,
        "region": rng.choice(["a", "b", "c"], size=n),
    })
    return X, y


def test_noise_feature_has_auc_near_half(churn):
    X, y = churn
    assert single_feature_auc(X["noise"], y, numeric=True) < 0.56
    assert single_feature_auc(X["region"], y, numeric=False) < 0.56


def test_identifier_does_not_look_predictive(churn):
    X, y = churn
    # one value per row: cross-fitting means no row's own outcome is in its score
    assert single_feature_auc(X["customer_id"], y, numeric=False) < 0.56
    # as a number it is a noisy uniform column
    ids = pd.Series(np.arange(len(y)), dtype=float)
    assert single_feature_auc(ids, y, numeric=True) < 0.56


def test_single_feature_auc_of_strong_features(churn):
    X, y = churn
    assert single_feature_auc(X["cancel_reason_score"], y, numeric=True) > 0.95
    assert 0.70 < single_feature_auc(X["recency"], y, numeric=True) < 0.90


def test_single_feature_auc_is_direction_free_and_non_monotone():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=1500)
    y = (np.abs(x) > 0.5).astype(int)  # a U-shape: a linear score would give ~0.5
    assert single_feature_auc(pd.Series(x), y, numeric=True) > 0.95
    assert single_feature_auc(pd.Series(-x), y, numeric=True) > 0.95
    assert single_feature_auc(pd.Series(x), 1 - y, numeric=True) > 0.95


def test_single_feature_auc_missing_values_form_their_own_bin():
    rng = np.random.default_rng(1)
    y = rng.binomial(1, 0.3, size=1000)
    x = pd.Series(rng.normal(size=1000))
    x[y == 1] = np.nan  # missingness alone reveals the outcome
    assert single_feature_auc(x, y, numeric=True) > 0.98


def test_single_feature_auc_one_class():
    assert single_feature_auc(pd.Series([1.0, 2.0, 3.0]), [0, 0, 0], numeric=True) == 0.5


def test_scan_flags_only_the_leak(churn):
    X, y = churn
    numeric = ["recency", "frequency", "trend", "noise", "cancel_reason_score"]
    flagged = leakage_scan(X, y, numeric=numeric, categorical=["region", "customer_id"])
    assert [w["feature"] for w in flagged] == ["cancel_reason_score"]
    leak = flagged[0]
    assert leak["rule"] == "high_auc"
    assert leak["auc"] > 0.95
    assert np.isnan(leak["others_auc"])
    assert leak["message_key"] == "predict.leakage.high_auc"


def _behaviour_family(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Honest features: recency and frequency track one latent engagement, trend another."""
    rng = np.random.default_rng(seed)
    e1, e2 = rng.normal(size=n), rng.normal(size=n)
    X = pd.DataFrame({
        "recency": np.exp(3.5 - 0.9 * e1 + rng.normal(0, 0.3, size=n)),
        "frequency": np.round(np.exp(1.5 + 0.8 * e1 + rng.normal(0, 0.4, size=n))),
        "trend": 0.7 * e2 + rng.normal(0, 0.3, size=n),
        "noise": rng.normal(size=n)})
    y = rng.binomial(1, 1 / (1 + np.exp(-(-1.0 - 1.8 * e1 - 1.2 * e2))))
    return X, y


def test_strong_honest_feature_does_not_fire():
    X, y = _behaviour_family(10_000, 3)
    # recency is strong alone (above min_auc)...
    assert 0.75 < single_feature_auc(X["recency"], y, numeric=True) < 0.85
    # ...but the other features together know more, so nothing fires
    assert leakage_scan(X, y, numeric=list(X.columns), categorical=[], min_auc=0.7) == []


def test_strong_honest_feature_does_not_fire_on_a_few_thousand_rows():
    X, y = _behaviour_family(3_000, 3)
    assert 0.75 < single_feature_auc(X["recency"], y, numeric=True) < 0.85
    assert leakage_scan(X, y, numeric=list(X.columns), categorical=[], min_auc=0.7) == []


def test_scan_beats_others_rule():
    """A feature between min_auc and threshold that knows more than all others together."""
    rng = np.random.default_rng(5)
    n = 1500
    y = rng.binomial(1, 0.3, size=n)
    X = pd.DataFrame({
        "duration": y * 1.0 + rng.normal(0, 0.9, size=n),  # AUC about 0.8 alone
        "weak": y * 0.2 + rng.normal(size=n),
        "noise": rng.normal(size=n),
    })
    flagged = leakage_scan(X, y, numeric=list(X.columns), categorical=[])
    assert [w["feature"] for w in flagged] == ["duration"]
    w = flagged[0]
    assert w["rule"] == "beats_others"
    assert 0.75 <= w["auc"] < 0.90
    assert w["others_auc"] < w["auc"]
    assert w["message_key"] == "predict.leakage.beats_others"
    # a margin larger than the gap silences it
    assert leakage_scan(X, y, numeric=list(X.columns), categorical=[],
                        margin=w["auc"] - w["others_auc"] + 0.01) == []


def test_scan_strongest_first():
    rng = np.random.default_rng(8)
    n = 1200
    y = rng.binomial(1, 0.4, size=n)
    X = pd.DataFrame({"copy": y + rng.normal(0, 0.2, size=n),
                      "rougher": y + rng.normal(0, 0.35, size=n),
                      "noise": rng.normal(size=n)},
                     index=np.arange(n) + 10_000)  # a non-default index is fine
    flagged = leakage_scan(X, y, numeric=["rougher", "copy", "noise"], categorical=[])
    assert [w["feature"] for w in flagged] == ["copy", "rougher"]
    assert flagged[0]["auc"] >= flagged[1]["auc"]
