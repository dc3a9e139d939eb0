"""Natural breaks (Fisher–Jenks): the exact optimal split of one variable into classes.

The classes minimise the total within-class sum of squared deviations, as in Fisher (1958) and
Jenks (1977). Two facts keep the computation small without giving up exactness:

* **Distinct values with weights.** An optimal partition never splits equal values between two
  classes (moving such a value to the class whose mean is nearer strictly lowers the cost), so
  the dynamic programme runs over the m distinct values, each weighted by its count. A million
  customers with a few hundred distinct order counts cost what a few hundred values cost.
* **Monotone split points.** The within-class cost satisfies the quadrangle (Monge) inequality,
  so the best start of the last class never moves left as the prefix grows. Each class level is
  then solved by divide and conquer, one vectorised numpy round per recursion depth:
  O(k · m · log m) work and O(k · log m) numpy calls instead of the textbook O(k · m²)
  double loop (which is what jenkspy runs, over all n values).

Breaks follow jenkspy's convention: ``n_classes + 1`` values, the minimum first and the maximum
last, each inner break being the largest value of its class (a value equal to a break belongs
to the lower class). Ties between equally good partitions resolve as in jenkspy (the last class
starts as early as possible), and on integer data the arithmetic is the same as jenkspy's, so
the breaks agree exactly.

For very many distinct values (m in the hundreds of thousands) :class:`NaturalBreaks` can fit on
a random sample (``sample_size``); the result is then the exact optimum of the sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from crmlens.errors import InputError

__all__ = ["NaturalBreaks", "jenks_breaks"]

log = logging.getLogger(__name__)

# Sums of integers stay exact in float64 up to 2**53; within that the costs are computed with
# the same operations as jenkspy's, so equal-cost partitions are told apart the same way.
_EXACT_LIMIT = 2.0**53


def jenks_breaks(values: Sequence[float] | np.ndarray, n_classes: int) -> list[float]:
    """Fisher–Jenks natural breaks of ``values`` into ``n_classes`` classes.

    Parameters
    ----------
    values : array-like of shape (n,)
        Finite numbers; duplicates are fine (they are weighted, not repeated).
    n_classes : int
        Number of classes, from 1 to the number of distinct values.

    Returns
    -------
    list of float
        ``n_classes + 1`` break values: the minimum, the largest value of each class but the
        last, and the maximum (the convention of ``jenkspy.jenks_breaks``).

    Raises
    ------
    InputError
        If ``values`` is empty, not one-dimensional or not finite, or ``n_classes`` is out of
        range.

    Examples
    --------
    >>> jenks_breaks([1.3, 7.1, 7.3, 2.3, 3.9, 4.1, 7.8, 1.2, 4.3, 7.3, 5.0, 4.3], 3)
    [1.2, 2.3, 5.0, 7.8]
    """
    distinct, counts = np.unique(_finite_1d(values), return_counts=True)
    n_classes = _check_n_classes(n_classes, len(distinct))
    starts = _optimal_class_starts(distinct, counts.astype(np.float64), n_classes)
    inner = [float(distinct[s - 1]) for s in starts[1:]]
    return [float(distinct[0]), *inner, float(distinct[-1])]


class NaturalBreaks(ClusterMixin, BaseEstimator):
    """One-variable tiers by Fisher–Jenks natural breaks, as a scikit-learn estimator.

    Parameters
    ----------
    n_classes : int, default=5
        Number of classes (tiers); at most the number of distinct values seen in ``fit``.
    sample_size : int or None, default=None
        If set and the data has more distinct values than this, the breaks are computed on a
        random sample of ``sample_size`` values (the minimum and maximum always included).
        The exact computation is O(k · m · log m) in the number m of distinct values (the
        textbook algorithm is O(k · m²)); sampling bounds it for very large m. ``None`` always
        uses all data.
    random_state : int, RandomState instance or None, default=None
        Seed of the sample (only used when sampling).

    Attributes
    ----------
    breaks_ : list of float
        ``n_classes + 1`` break values (minimum, inner breaks, maximum).
    labels_ : ndarray of shape (n,)
        Class of each training value, 0 (lowest) to ``n_classes - 1``.
    sampled_ : bool
        Whether the breaks were computed on a sample.

    Examples
    --------
    >>> NaturalBreaks(n_classes=2).fit([1, 2, 3, 10, 11, 12]).breaks_
    [1.0, 3.0, 12.0]
    """

    def __init__(self, *, n_classes: int = 5, sample_size: int | None = None,
                 random_state: int | np.random.RandomState | None = None) -> None:
        self.n_classes = n_classes
        self.sample_size = sample_size
        self.random_state = random_state

    def fit(self, X, y=None) -> NaturalBreaks:
        """Learn the breaks.

        Parameters
        ----------
        X : array-like of shape (n,) or (n, 1)
            The values to split.
        y : ignored
            Present for API consistency.

        Returns
        -------
        self : NaturalBreaks
            The fitted estimator.
        """
        x = _finite_1d(X)
        values = x
        self.sampled_ = False
        if self.sample_size is not None:
            if not isinstance(self.sample_size, (int, np.integer)) or isinstance(
                    self.sample_size, bool) or self.sample_size < 2:
                raise InputError("error.jenks_sample_size", value=self.sample_size)
            if len(x) > self.sample_size and len(np.unique(x)) > self.sample_size:
                rng = check_random_state(self.random_state)
                picked = x[rng.choice(len(x), size=self.sample_size, replace=False)]
                values = np.concatenate([picked, [x.min(), x.max()]])
                self.sampled_ = True
                log.info("natural breaks on a sample of %d of %d values", len(values), len(x))
        self.breaks_ = jenks_breaks(values, self.n_classes)
        self.labels_ = self.predict(x)
        return self

    def predict(self, X) -> np.ndarray:
        """Class of each value: 0 for values up to the first inner break, and so on.

        Parameters
        ----------
        X : array-like of shape (n,) or (n, 1)
            Values to classify; values outside the fitted range go to the first or last class.

        Returns
        -------
        ndarray of shape (n,)
            Class numbers 0 .. ``n_classes - 1``.
        """
        check_is_fitted(self, "breaks_")
        x = _finite_1d(X, allow_empty=True)
        return np.searchsorted(np.asarray(self.breaks_[1:-1]), x, side="left").astype(np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        return tags


def _finite_1d(values, *, allow_empty: bool = False) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError("error.jenks_not_1d", shape=str(arr.shape))
    if arr.size == 0 and not allow_empty:
        raise InputError("error.jenks_empty")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError("error.jenks_not_finite", count=str(exc)) from None
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise InputError("error.jenks_not_finite", count=bad)
    return arr


def _check_n_classes(n_classes, n_distinct: int) -> int:
    if isinstance(n_classes, float) and n_classes.is_integer():
        n_classes = int(n_classes)
    if (not isinstance(n_classes, (int, np.integer)) or isinstance(n_classes, bool)
            or not 1 <= n_classes <= n_distinct):
        raise InputError("error.jenks_classes", n_classes=n_classes, distinct=n_distinct)
    return int(n_classes)


def _optimal_class_starts(values: np.ndarray, weights: np.ndarray, k: int) -> list[int]:
    """Index (into the sorted distinct ``values``) where each of the k optimal classes starts."""
    m = len(values)
    if k == 1:
        return [0]
    integral = bool(np.all(values == np.round(values)))
    if not (integral and float(np.dot(weights, values * values)) < _EXACT_LIMIT):
        # Shift to the weighted median: same optimum, far less cancellation in sum² / n.
        median = values[np.searchsorted(np.cumsum(weights), weights.sum() / 2)]
        values = values - median
    cum_w = np.concatenate([[0.0], np.cumsum(weights)])
    cum_s = np.concatenate([[0.0], np.cumsum(weights * values)])
    cum_q = np.concatenate([[0.0], np.cumsum(weights * values * values)])

    def within(i: np.ndarray, l: np.ndarray) -> np.ndarray:
        # Sum of squared deviations of values[i..l] (inclusive), as jenkspy writes it.
        s = cum_s[l + 1] - cum_s[i]
        return (cum_q[l + 1] - cum_q[i]) - (s * s) / (cum_w[l + 1] - cum_w[i])

    ends = np.arange(m)
    cost = within(np.zeros(m, dtype=np.int64), ends)
    starts = np.zeros((k, m), dtype=np.int64)
    for level in range(1, k):
        cost, starts[level] = _next_level(cost, level, m, within)
    # Walk back from the full range: each class ends just before the next one starts.
    result, end = [], m - 1
    for level in range(k - 1, 0, -1):
        start = int(starts[level, end])
        result.append(start)
        end = start - 1
    return [0, *reversed(result)]


def _next_level(prev: np.ndarray, level: int, m: int, within) -> tuple[np.ndarray, np.ndarray]:
    """Best cost of ``level + 1`` classes over each prefix, by vectorised divide and conquer.

    ``cost[l] = min over i of prev[i - 1] + within(i, l)``; the smallest minimising ``i`` is
    non-decreasing in ``l``, so the middle end of each open range is solved by scanning only
    the candidate starts its neighbours leave open, all ranges of one depth in one pass.
    """
    cost = np.full(m, np.inf)
    best = np.zeros(m, dtype=np.int64)
    # Open ranges of ends [lo, hi] with their candidate starts [opt_lo, opt_hi].
    lo = np.array([level]); hi = np.array([m - 1])
    opt_lo = np.array([level]); opt_hi = np.array([m - 1])
    while lo.size:
        mid = (lo + hi) // 2
        first = opt_lo
        count = np.minimum(mid, opt_hi) - first + 1
        offsets = np.concatenate([[0], np.cumsum(count)[:-1]])
        owner = np.repeat(np.arange(lo.size), count)
        cand = first[owner] + (np.arange(owner.size) - offsets[owner])
        ends = mid[owner]
        total = within(cand, ends) + prev[cand - 1]
        low = np.minimum.reduceat(total, offsets)
        # Smallest start among the minima: jenkspy's tie rule (the last class as long as it can be).
        position = np.where(total == low[owner], np.arange(owner.size), owner.size)
        arg = cand[np.minimum.reduceat(position, offsets)]
        cost[mid] = low
        best[mid] = arg
        left = lo <= mid - 1
        right = mid + 1 <= hi
        lo, hi, opt_lo, opt_hi = (
            np.concatenate([lo[left], mid[right] + 1]),
            np.concatenate([mid[left] - 1, hi[right]]),
            np.concatenate([opt_lo[left], arg[right]]),
            np.concatenate([arg[left], opt_hi[right]]),
        )
    return cost, best
