"""The signed log of skewed features with a few negative values (net spend after returns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmlens.segment.preprocess import CustomerPreprocessor


def _frame(negative_share: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    spend = rng.lognormal(5, 1.5, 2000)
    n_neg = int(negative_share * len(spend))
    spend[:n_neg] = -rng.uniform(1, 50, n_neg)
    return pd.DataFrame({"customer_id": [str(i) for i in range(2000)], "monetary": spend,
                         "frequency": rng.integers(1, 40, 2000).astype(float)})


def test_few_negatives_get_the_signed_log():
    pre = CustomerPreprocessor().fit(_frame(0.02))
    plan = pre.describe().set_index("feature").to_dict(orient="index")
    assert plan["monetary"]["transform"] == "signed_log1p"
    z = pre.transform(_frame(0.02))
    col = list(pre.get_feature_names_out()).index("monetary")
    raw = _frame(0.02)["monetary"].to_numpy()
    expected = np.sign(raw) * np.log1p(np.abs(raw))
    # Scaled values are an affine map of the signed log: perfectly correlated with it.
    assert np.corrcoef(z[:, col], expected)[0, 1] > 0.9999


def test_many_negatives_stay_linear():
    pre = CustomerPreprocessor().fit(_frame(0.2))
    plan = pre.describe().set_index("feature").to_dict(orient="index")
    assert plan["monetary"]["transform"] == "none"
