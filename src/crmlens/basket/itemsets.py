"""Frequent itemsets: the result type and the entry point shared by the three miners."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from crmlens.basket.data import Baskets
from crmlens.basket.ranked import decode_chunks, rank_frequent_items
from crmlens.errors import InputError

ALGORITHMS = ("eclat", "fpgrowth", "apriori")
KINDS = ("all", "closed", "maximal")


@dataclass(frozen=True)
class Itemsets:
    """Frequent itemsets with their counts, sorted by length then item codes.

    Attributes
    ----------
    items : list of tuple of int
        Sorted item codes of each itemset.
    counts : numpy.ndarray
        int64 number of baskets containing each itemset.
    n_baskets : int
        Number of baskets mined.
    min_count : int
        Absolute threshold used: itemsets with ``count >= min_count`` are kept.
    item_ids, item_names : numpy.ndarray
        Labels of the item codes (from :class:`~crmlens.basket.data.Baskets`).
    algorithm : str
        ``"eclat"``, ``"fpgrowth"`` or ``"apriori"``.
    kind : str
        ``"all"``, ``"closed"`` or ``"maximal"``.
    max_len : int or None
        Longest itemset length searched (None = no limit).
    """

    items: list[tuple[int, ...]]
    counts: np.ndarray
    n_baskets: int
    min_count: int
    item_ids: np.ndarray
    item_names: np.ndarray
    algorithm: str
    kind: str
    max_len: int | None = None
    _index: dict[tuple[int, ...], int] = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.items)

    def support(self) -> np.ndarray:
        """Fraction of baskets containing each itemset."""
        return self.counts / self.n_baskets

    def count_of(self, itemset: tuple[int, ...]) -> int:
        """Number of baskets containing ``itemset`` (item codes, any order).

        Raises
        ------
        KeyError
            If the itemset is not in the result (not frequent, or not closed/maximal).
        """
        if self._index is None:
            object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.items)})
        return int(self.counts[self._index[tuple(sorted(int(i) for i in itemset))]])

    def to_frame(self, lang: str | None = None) -> pd.DataFrame:
        """One row per itemset: item ids, names, length, count and support.

        Parameters
        ----------
        lang : str, optional
            Unused for now (the column names are stable identifiers); kept so every result
            type renders the same way.
        """
        return pd.DataFrame({
            "itemset": [[self.item_ids[i] for i in s] for s in self.items],
            "names": [[self.item_names[i] for i in s] for s in self.items],
            "length": np.array([len(s) for s in self.items], dtype=np.int64),
            "count": self.counts,
            "support": self.support(),
        })


def min_count_for(min_support: float | int, n_baskets: int) -> int:
    """The absolute threshold for ``min_support`` (fraction in (0, 1] or count >= 1).

    A fraction is taken at its decimal value, ``ceil(fraction * n_baskets)`` computed exactly
    (``0.005`` of 20,000 baskets is 100, not 101 as the binary float would say).
    """
    if isinstance(min_support, bool) or not isinstance(min_support, numbers.Real):
        raise InputError("error.basket.bad_min_support", value=min_support)
    if isinstance(min_support, numbers.Integral):
        if min_support < 1:
            raise InputError("error.basket.bad_min_support", value=min_support)
        return int(min_support)
    value = float(min_support)
    if not (0.0 < value <= 1.0):
        raise InputError("error.basket.bad_min_support", value=min_support)
    return max(1, math.ceil(Fraction(repr(value)) * n_baskets))


def frequent_itemsets(
    baskets: Baskets,
    *,
    min_support: float | int = 0.01,
    max_len: int | None = None,
    algorithm: str = "eclat",
    kind: str = "all",
) -> Itemsets:
    """Mine the frequent itemsets of ``baskets``.

    Parameters
    ----------
    baskets : Baskets
        Sparse baskets, e.g. from :func:`~crmlens.basket.data.load_baskets`.
    min_support : float or int, default 0.01
        A float in (0, 1] is a fraction of baskets (threshold ``ceil(f * n_baskets)``, exact);
        an int >= 1 is a number of baskets.
    max_len : int, optional
        Longest itemset to report (and search).
    algorithm : {"eclat", "fpgrowth", "apriori"}, default "eclat"
        All three give identical itemsets and counts; Eclat is the fastest.
    kind : {"all", "closed", "maximal"}, default "all"
        All frequent itemsets, only closed ones (no superset with the same count) or only
        maximal ones (no frequent superset). With ``max_len``: the closed (maximal) itemsets
        of at most that length, judged against all supersets (as pyfim's ``zmax``).

    Returns
    -------
    Itemsets

    Raises
    ------
    InputError
        For an out-of-range support or length, an unknown algorithm or kind, or no baskets.
    """
    if algorithm not in ALGORITHMS:
        raise InputError("error.basket.bad_algorithm", value=algorithm,
                         allowed=", ".join(ALGORITHMS))
    if kind not in KINDS:
        raise InputError("error.basket.bad_itemset_kind", value=kind, allowed=", ".join(KINDS))
    if max_len is not None and (isinstance(max_len, bool)
                                or not isinstance(max_len, numbers.Integral) or max_len < 1):
        raise InputError("error.basket.bad_max_len", value=max_len)
    if baskets.n_baskets == 0:
        raise InputError("error.basket.empty")
    min_count = min_count_for(min_support, baskets.n_baskets)
    limit = baskets.n_items + 1 if max_len is None else int(max_len)
    # Closed/maximal are judged against all supersets, so look one item further.
    search = limit + 1 if kind != "all" else limit
    data = rank_frequent_items(baskets, min_count)
    if algorithm == "eclat":
        from crmlens.basket.eclat import eclat_ranked as mine
    elif algorithm == "fpgrowth":
        from crmlens.basket.fpgrowth import fpgrowth_ranked as mine
    else:
        from crmlens.basket.apriori import apriori_ranked as mine
    chunks = mine(data, min_count, search)
    items, counts = decode_chunks(data.item_of_rank, data.counts, chunks)
    if kind != "all":
        from crmlens.basket.closed import closed_or_maximal

        keep = closed_or_maximal(items, counts, kind)
        keep = keep[[len(items[i]) <= limit for i in keep.tolist()]] if len(keep) else keep
        items = [items[i] for i in keep]
        counts = counts[keep]
    return Itemsets(items=items, counts=counts, n_baskets=baskets.n_baskets,
                    min_count=min_count, item_ids=baskets.item_ids,
                    item_names=baskets.item_names, algorithm=algorithm, kind=kind,
                    max_len=None if max_len is None else int(max_len))

