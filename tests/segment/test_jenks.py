"""Natural breaks: exact agreement with jenkspy (test-only oracle), edge cases, estimator."""

from __future__ import annotations

from fractions import Fraction

import jenkspy
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crmlens.errors import InputError
from crmlens.segment.jenks import NaturalBreaks, jenks_breaks


def _oracle(values, k):
    return [float(v) for v in jenkspy.jenks_breaks(np.asarray(values), k)]


GENERATORS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "uniform_wide": lambda rng, n: rng.uniform(-5, 1e4, size=n),
    "small_ints": lambda rng, n: rng.integers(0, 6, size=n),
    "ints": lambda rng, n: rng.integers(0, 50, size=n),
    "wide_ints": lambda rng, n: rng.integers(-10**6, 10**6, size=n),
    "order_counts": lambda rng, n: np.ceil(rng.exponential(2, size=n)),
}
# Decimal grids: several partitions can cost exactly the same (in decimal arithmetic).
DECIMAL_GRIDS = {
    "money_2dp": lambda rng, n: np.round(rng.lognormal(3, 1, size=n), 2),
    "tenths": lambda rng, n: np.round(rng.normal(size=n), 1),
}


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_matches_jenkspy_on_random_inputs(kind):
    rng = np.random.default_rng(len(kind) * 7919)
    for _ in range(120):
        n = int(rng.integers(1, 150))
        x = GENERATORS[kind](rng, n)
        distinct = len(np.unique(x))
        k = int(rng.integers(1, distinct + 1))
        assert jenks_breaks(x, k) == _oracle(x, k), (kind, list(x), k)


@pytest.mark.parametrize("kind", ["normal", "ints", "order_counts"])
def test_matches_jenkspy_on_larger_inputs(kind):
    rng = np.random.default_rng(11)
    for n, k in [(800, 5), (1500, 7), (1200, 12)]:
        x = GENERATORS[kind](rng, n)
        assert jenks_breaks(x, k) == _oracle(x, k)


@pytest.mark.parametrize("values", [
    [5.0], [3, 3, 3], [1, 2], [2, 1], [1, 1, 2], [0, 0, 0, 10, 10, 10],
    [-3.5, 0.0, 0.0, 2.25, 7.0], [1.3, 7.1, 7.3, 2.3, 3.9, 4.1, 7.8, 1.2, 4.3, 7.3, 5.0, 4.3],
])
def test_every_class_count_matches_jenkspy(values):
    for k in range(1, len(np.unique(values)) + 1):
        assert jenks_breaks(values, k) == _oracle(values, k)


def test_documented_example_and_convention():
    breaks = jenks_breaks([1.3, 7.1, 7.3, 2.3, 3.9, 4.1, 7.8, 1.2, 4.3, 7.3, 5.0, 4.3], 3)
    assert breaks == [1.2, 2.3, 5.0, 7.8]
    assert jenks_breaks([4, 4, 4], 1) == [4.0, 4.0]


def _exact_cost(values, breaks, as_exact):
    # Within-class sum of squares in exact rational arithmetic: of the decimal values
    # (as_exact=str) or of the binary floats themselves (as_exact=float).
    x = np.sort(values)
    labels = np.searchsorted(np.asarray(breaks[1:-1]), x, side="left")
    total = Fraction(0)
    for c in np.unique(labels):
        group = [Fraction(as_exact(v)) for v in x[labels == c]]
        mean = sum(group) / len(group)
        total += sum((v - mean) ** 2 for v in group)
    return total


@pytest.mark.parametrize("kind", sorted(DECIMAL_GRIDS))
def test_decimal_grid_is_jenkspy_or_an_exact_tie(kind):
    # On a decimal grid with many classes some partitions cost exactly the same; which one
    # wins is decided by float rounding in either library. Ours must then cost the same.
    rng = np.random.default_rng(5)
    same = 0
    for _ in range(150):
        x = DECIMAL_GRIDS[kind](rng, int(rng.integers(2, 100)))
        k = int(rng.integers(1, len(np.unique(x)) + 1))
        ours, theirs = jenks_breaks(x, k), _oracle(x, k)
        if ours == theirs:
            same += 1
        else:
            assert _exact_cost(x, ours, str) == _exact_cost(x, theirs, str)
    assert same > 75


def test_offset_floats_at_least_as_good_as_jenkspy():
    # 1e5 + N(0, 1): jenkspy's sum-of-squares formula loses digits; ours works on centred
    # values. Where the two differ, ours has the lower exact cost.
    rng = np.random.default_rng(3)
    for _ in range(60):
        x = 1e5 + rng.normal(size=int(rng.integers(5, 120)))
        k = int(rng.integers(2, 8))
        ours, theirs = jenks_breaks(x, k), _oracle(x, k)
        assert ours == theirs or _exact_cost(x, ours, float) < _exact_cost(x, theirs, float)


def test_duplicates_are_weighted_not_repeated():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 30, size=40)
    # 200,000 values with at most 30 distinct: the work is that of 30 weighted values.
    repeated = np.repeat(base, 5_000)
    assert jenks_breaks(repeated, 4) == jenks_breaks(base, 4)
    assert jenks_breaks(base.repeat(20), 4) == _oracle(base.repeat(20), 4)


@pytest.mark.parametrize("values, k", [
    ([], 1), ([1, 2, 3], 0), ([1, 2, 3], 4), ([1, 1, 1], 2), ([1, np.nan], 1),
    ([1, np.inf, 2], 1), ([[1, 2], [3, 4]], 1), ([1, 2, 3], 1.5), ([1, 2, 3], True),
])
def test_bad_input_is_an_input_error(values, k):
    with pytest.raises(InputError) as err:
        jenks_breaks(values, k)
    assert err.value.key.startswith("error.jenks_")
    assert "{" not in err.value.message("en") and "{" not in err.value.message("zh")


def test_natural_breaks_estimator():
    x = np.array([1, 2, 3, 10, 11, 12, 30, 31])
    model = NaturalBreaks(n_classes=3).fit(x)
    assert model.breaks_ == jenks_breaks(x, 3) == [1.0, 3.0, 12.0, 31.0]
    assert model.labels_.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    # A value equal to a break is in the lower class; out-of-range values go to the ends.
    assert model.predict([3, 3.5, -100, 1000]).tolist() == [0, 1, 0, 2]
    assert model.fit_predict(x.reshape(-1, 1)).tolist() == model.labels_.tolist()
    assert not model.sampled_


def test_natural_breaks_estimator_contract():
    model = NaturalBreaks(n_classes=4, sample_size=100, random_state=3)
    assert model.get_params() == {"n_classes": 4, "sample_size": 100, "random_state": 3}
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "breaks_")
    with pytest.raises(NotFittedError):
        model.predict([1.0])
    with pytest.raises(TypeError):
        NaturalBreaks(4)  # keyword-only
    assert model.fit([1, 2, 3, 4, 5]) is model


def test_natural_breaks_sampling():
    rng = np.random.default_rng(0)
    x = rng.lognormal(3, 1, size=20_000)
    model = NaturalBreaks(n_classes=5, sample_size=2_000, random_state=1).fit(x)
    assert model.sampled_
    assert model.breaks_[0] == x.min() and model.breaks_[-1] == x.max()
    assert model.breaks_ == NaturalBreaks(n_classes=5, sample_size=2_000,
                                          random_state=1).fit(x).breaks_
    exact = NaturalBreaks(n_classes=5).fit(x)
    # Goodness of variance fit on all data: the sample's breaks nearly as good as the exact.
    assert _gvf(x, model.labels_) > _gvf(x, exact.labels_) - 0.02
    assert _gvf(x, exact.labels_) >= _gvf(x, model.labels_)
    with pytest.raises(InputError):
        NaturalBreaks(sample_size=1).fit(x)


def _gvf(x, labels):
    within = sum(((x[labels == c] - x[labels == c].mean()) ** 2).sum() for c in np.unique(labels))
    return 1 - within / ((x - x.mean()) ** 2).sum()
