"""A brute-force frequent-itemset count over small baskets, shaped like ``Itemsets``.

The rule, store and report tests build their itemsets with it, so they do not depend on the
mining algorithms (tested against mlxtend and pyfim on their own).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Sequence

import numpy as np


@dataclass(frozen=True)
class BruteItemsets:
    items: list[tuple[int, ...]]
    counts: np.ndarray
    n_baskets: int
    min_count: int
    item_ids: np.ndarray
    item_names: np.ndarray
    algorithm: str = "brute"
    kind: str = "all"
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    def support(self) -> np.ndarray:
        return self.counts / self.n_baskets

    def count_of(self, itemset: tuple[int, ...]) -> int:
        return int(self.counts[self.items.index(tuple(itemset))])


def brute_itemsets(baskets: Sequence[Sequence[str]], *, min_support: float | int,
                   max_len: int | None = None,
                   names: dict[str, str] | None = None) -> BruteItemsets:
    """Every itemset contained in at least ``min_support`` of ``baskets`` (lists of item ids)."""
    ids = sorted({i for b in baskets for i in b})
    code = {item: k for k, item in enumerate(ids)}
    n = len(baskets)
    min_count = (min_support if isinstance(min_support, int)
                 else max(1, math.ceil(min_support * n - 1e-12)))
    counter: Counter = Counter()
    for basket in baskets:
        codes = sorted({code[i] for i in basket})
        top = len(codes) if max_len is None else min(max_len, len(codes))
        for size in range(1, top + 1):
            counter.update(itertools.combinations(codes, size))
    kept = sorted((s, c) for s, c in counter.items() if c >= min_count)
    return BruteItemsets(
        items=[s for s, _ in kept], counts=np.array([c for _, c in kept], dtype=np.int64),
        n_baskets=n, min_count=min_count, item_ids=np.array(ids, dtype=object),
        item_names=np.array([(names or {}).get(i, f"name {i}") for i in ids], dtype=object))


def random_baskets(seed: int, n_baskets: int = 200, n_items: int = 12,
                   p: float = 0.25) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    # Correlated items: each basket draws from a few "themes" so rules have lift != 1.
    out = []
    for _ in range(n_baskets):
        theme = rng.integers(0, 3)
        probs = np.full(n_items, p / 2)
        probs[theme * 4:(theme + 1) * 4] = p * 2
        chosen = [f"P{k:02d}" for k in range(n_items) if rng.random() < probs[k]]
        out.append(chosen or [f"P{rng.integers(0, n_items):02d}"])
    return out
