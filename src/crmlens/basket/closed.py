"""Closed and maximal itemsets, filtered from the complete set of frequent itemsets.

An itemset is closed when no superset has the same count, maximal when no superset is frequent
at all. Both are decided by the immediate supersets alone: if any superset has the same count
(or is frequent), so does one with a single extra item, because counts never grow as items are
added. So each itemset of length ``k + 1`` marks its ``k + 1`` subsets, one dictionary lookup
each.
"""

from __future__ import annotations

import numpy as np


def closed_or_maximal(items: list[tuple[int, ...]], counts: np.ndarray, kind: str) -> np.ndarray:
    """Indices of the closed (``kind="closed"``) or maximal (``"maximal"``) itemsets."""
    index = {s: i for i, s in enumerate(items)}
    counts_list = counts.tolist()
    covered = np.zeros(len(items), dtype=bool)
    for i, s in enumerate(items):
        if len(s) < 2:
            continue
        for drop in range(len(s)):
            j = index[s[:drop] + s[drop + 1:]]
            if kind == "maximal" or counts_list[j] == counts_list[i]:
                covered[j] = True
    return np.flatnonzero(~covered)
