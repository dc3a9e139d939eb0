"""Association rules from frequent itemsets, with exact threshold comparisons.

A rule ``X -> Y`` is made from a frequent itemset ``X ∪ Y`` (X, Y non-empty and disjoint);
every count it needs is in the itemsets (all subsets of a frequent itemset are frequent), so
no basket is read again. With ``n`` baskets, ``a`` containing X, ``b`` containing Y and ``c``
containing both:

- support ``c / n``, confidence ``c / a``, lift ``c n / (a b)``,
- leverage ``c / n - a b / n²``,
- conviction ``a (n - b) / (n (a - c))`` (``inf`` when confidence is 1),
- Zhang's metric ``(c n - a b) / max(c (n - a), a (b - c))`` (NaN when both are 0, i.e.
  X is in every basket).

Thresholds are compared on these integers against the threshold as a :class:`Fraction` made
from its decimal text (``0.3`` is exactly 3/10), so a rule whose confidence is exactly the
threshold is kept -- float division would drop ``3 / 10 >= 0.3`` style ties at random.

Redundancy: a rule ``X -> Y`` is *redundant* when the output also holds a rule ``X' -> Y``
with ``X'`` a proper non-empty subset of ``X`` and a confidence at least as high (compared
exactly). The simpler rule says the same with fewer conditions; with the same consequent its
support, lift and conviction are then at least as high too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from crmlens.errors import InputError

RULE_COLUMNS = ("antecedent", "consequent", "antecedent_names", "consequent_names",
                "antecedent_count", "consequent_count", "count", "support", "confidence",
                "lift", "leverage", "conviction", "zhang")
METRICS = ("support", "confidence", "lift", "leverage", "conviction", "zhang")


def exact_threshold(value: Real | str | None, name: str) -> Fraction | None:
    """A threshold as an exact fraction of its decimal text (``0.1`` -> 1/10).

    Parameters
    ----------
    value : real, str or None
        The threshold; None means no filter.
    name : str
        Option name, for the error message.

    Returns
    -------
    Fraction or None
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError("error.basket_bad_threshold", option=name, value=str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError("error.basket_bad_threshold", option=name, value=str(value))
        # repr gives the shortest decimal that reads back as this float: 0.3 -> "0.3".
        return Fraction(repr(value))
    try:
        return Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise InputError("error.basket_bad_threshold", option=name, value=str(value)) from None


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in RULE_COLUMNS[:4]})
    for c in RULE_COLUMNS[4:7]:
        frame[c] = pd.Series(dtype="int64")
    for c in METRICS:
        frame[c] = pd.Series(dtype="float64")
    return frame


def _ge(lhs: np.ndarray, threshold: Fraction, rhs_factor: np.ndarray) -> np.ndarray:
    """``lhs >= threshold * rhs_factor`` exactly (object arrays of Python ints)."""
    return lhs * threshold.denominator >= rhs_factor * threshold.numerator


def association_rules(
    itemsets: Any,
    *,
    min_confidence: Real | str = 0.0,
    min_lift: Real | str | None = None,
    min_support: Real | str | None = None,
    min_leverage: Real | str | None = None,
    min_conviction: Real | str | None = None,
    min_zhang: Real | str | None = None,
    prune_redundant: bool = False,
    max_consequent_len: int | None = None,
) -> pd.DataFrame:
    """Association rules of frequent itemsets, filtered on exact counts.

    Parameters
    ----------
    itemsets : crmlens.basket.itemsets.Itemsets
        Frequent itemsets of kind ``"all"`` (closed or maximal ones lack the subset counts
        rules need).
    min_confidence : float or str, default 0.0
        Keep rules with ``confidence >= min_confidence``.
    min_lift, min_support, min_leverage, min_conviction, min_zhang : float or str, optional
        Further filters, each ``metric >= value``; a rule whose metric is undefined (NaN
        Zhang) fails a Zhang filter.
    prune_redundant : bool, default False
        Drop redundant rules (see the module docstring).
    max_consequent_len : int, optional
        Longest consequent (1 gives single-item recommendations).

    Returns
    -------
    pandas.DataFrame
        One row per rule, columns ``antecedent``, ``consequent`` (sorted lists of item ids),
        ``antecedent_names``, ``consequent_names``, ``antecedent_count``,
        ``consequent_count``, ``count``, ``support``, ``confidence``, ``lift``, ``leverage``,
        ``conviction`` (``inf`` when confidence is 1) and ``zhang``; sorted by lift,
        confidence and count (descending), then antecedent and consequent.
    """
    kind = getattr(itemsets, "kind", "all")
    if kind != "all":
        raise InputError("error.basket_rules_need_all", kind=str(kind))
    if max_consequent_len is not None and (isinstance(max_consequent_len, bool)
                                           or int(max_consequent_len) < 1):
        raise InputError("error.basket_bad_option", option="max_consequent_len",
                         value=str(max_consequent_len), expected=">= 1")
    thresholds = {name: exact_threshold(value, name) for name, value in (
        ("min_confidence", min_confidence), ("min_lift", min_lift),
        ("min_support", min_support), ("min_leverage", min_leverage),
        ("min_conviction", min_conviction), ("min_zhang", min_zhang))}
    n = int(itemsets.n_baskets)
    counts = {tuple(int(i) for i in items): int(c)
              for items, c in zip(itemsets.items, itemsets.counts, strict=True)}
    ants: list[tuple[int, ...]] = []
    cons: list[tuple[int, ...]] = []
    a_list: list[int] = []
    b_list: list[int] = []
    c_list: list[int] = []
    for items, c in counts.items():
        k = len(items)
        if k < 2:
            continue
        for size in range(1, k):
            for ant in itertools.combinations(items, size):
                con = tuple(i for i in items if i not in ant)
                if max_consequent_len is not None and len(con) > max_consequent_len:
                    continue
                ants.append(ant)
                cons.append(con)
                a_list.append(counts[ant])
                b_list.append(counts[con])
                c_list.append(c)
    if not ants or n == 0:
        return _empty()
    # Python ints in object arrays: products of counts and threshold denominators never
    # overflow.
    a = np.array(a_list, dtype=object)
    b = np.array(b_list, dtype=object)
    c = np.array(c_list, dtype=object)
    keep = np.ones(len(a), dtype=bool)
    t = thresholds
    if t["min_confidence"] is not None:
        keep &= _ge(c, t["min_confidence"], a)
    if t["min_support"] is not None:
        keep &= _ge(c, t["min_support"], np.full(len(a), n, dtype=object))
    if t["min_lift"] is not None:
        keep &= _ge(c * n, t["min_lift"], a * b)
    if t["min_leverage"] is not None:
        keep &= _ge(c * n - a * b, t["min_leverage"], np.full(len(a), n * n, dtype=object))
    if t["min_conviction"] is not None:
        certain = a == c  # conviction is infinite: passes any threshold
        keep &= certain | _ge(a * (n - b), t["min_conviction"], n * (a - c))
    if t["min_zhang"] is not None:
        den = np.maximum(c * (n - a), a * (b - c))
        defined = den > 0
        keep &= defined & _ge(c * n - a * b, t["min_zhang"], den)
    idx = np.flatnonzero(keep)
    if prune_redundant and len(idx):
        idx = _prune(idx, ants, cons, a, c)
    if not len(idx):
        return _empty()
    return _frame(itemsets, n, idx, ants, cons, a, b, c)


def _prune(idx: np.ndarray, ants: Sequence[tuple[int, ...]], cons: Sequence[tuple[int, ...]],
           a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The kept rules that no kept simpler rule (same consequent) beats on confidence."""
    kept = {(ants[i], cons[i]): i for i in idx}
    out = []
    for i in idx:
        ant, con = ants[i], cons[i]
        redundant = False
        for size in range(1, len(ant)):
            for sub in itertools.combinations(ant, size):
                j = kept.get((sub, con))
                # c_j / a_j >= c_i / a_i, exactly.
                if j is not None and c[j] * a[i] >= c[i] * a[j]:
                    redundant = True
                    break
            if redundant:
                break
        if not redundant:
            out.append(i)
    return np.array(out, dtype=np.int64)


def _frame(itemsets: Any, n: int, idx: np.ndarray, ants: Sequence[tuple[int, ...]],
           cons: Sequence[tuple[int, ...]], a: np.ndarray, b: np.ndarray,
           c: np.ndarray) -> pd.DataFrame:
    ids = np.asarray(itemsets.item_ids, dtype=object)
    names = np.asarray(itemsets.item_names, dtype=object)

    def side(codes: tuple[int, ...]) -> tuple[list[str], list[str]]:
        pairs = sorted((str(ids[k]), "" if names[k] is None else str(names[k]))
                       for k in codes)
        return [p[0] for p in pairs], [p[1] for p in pairs]

    ant_sides = [side(ants[i]) for i in idx]
    con_sides = [side(cons[i]) for i in idx]
    af = np.array([a[i] for i in idx], dtype=np.float64)
    bf = np.array([b[i] for i in idx], dtype=np.float64)
    cf = np.array([c[i] for i in idx], dtype=np.float64)
    nf = float(n)
    confidence = cf / af
    with np.errstate(divide="ignore", invalid="ignore"):
        conviction = np.where(af == cf, np.inf, af * (nf - bf) / (nf * (af - cf)))
        zden = np.maximum(cf * (nf - af), af * (bf - cf))
        zhang = np.where(zden > 0, (cf * nf - af * bf) / np.where(zden > 0, zden, 1.0), np.nan)
    frame = pd.DataFrame({
        "antecedent": [s[0] for s in ant_sides],
        "consequent": [s[0] for s in con_sides],
        "antecedent_names": [s[1] for s in ant_sides],
        "consequent_names": [s[1] for s in con_sides],
        "antecedent_count": af.astype(np.int64),
        "consequent_count": bf.astype(np.int64),
        "count": cf.astype(np.int64),
        "support": cf / nf,
        "confidence": confidence,
        "lift": cf * nf / (af * bf),
        "leverage": cf / nf - (af / nf) * (bf / nf),
        "conviction": conviction,
        "zhang": zhang,
    })
    frame["_ant"] = frame["antecedent"].map(tuple)
    frame["_con"] = frame["consequent"].map(tuple)
    frame = frame.sort_values(["lift", "confidence", "count", "_ant", "_con"],
                              ascending=[False, False, False, True, True], kind="mergesort")
    return frame.drop(columns=["_ant", "_con"]).reset_index(drop=True)
