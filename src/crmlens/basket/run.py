"""The basket step of the workspace: baskets -> frequent itemsets -> rules, over all baskets
and per segment of a saved segmentation.

Per segment, the baskets are those of the segment's customers (``load_baskets(customers=...)``)
and the same minimum support *fraction* applies, so a rule that is common inside a small
segment shows up even though it is rare overall. A count threshold (an int) applies as is.
Segments with fewer than :data:`MIN_SEGMENT_BASKETS` baskets are skipped and listed as such.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from crmlens.basket.rules import association_rules
from crmlens.basket.store import itemsets_frame
from crmlens.errors import InputError
from crmlens.progress import NO_PROGRESS, Progress

log = logging.getLogger(__name__)

BASKETS = ("order", "customer")
ITEMS = ("product", "category")
ALGORITHMS = ("eclat", "fpgrowth", "apriori")
KINDS = ("all", "closed", "maximal")
# Fewer baskets than this in a segment give itemsets that are chance, not habit.
MIN_SEGMENT_BASKETS = 30
RULE_OPTIONS = ("min_confidence", "min_lift", "min_leverage", "min_conviction", "min_zhang",
                "prune_redundant", "max_consequent_len")


@dataclass
class BasketResult:
    """Itemsets (and rules) over all baskets and per segment.

    ``itemsets`` and ``rules`` map a segment label to a flat frame; key None is all baskets.
    ``segments`` lists each segment's baskets, counts or skip reason.
    """

    basket: str
    item: str
    min_support: float | int
    min_count: int
    max_len: int | None
    algorithm: str
    kind: str
    n_baskets: int
    n_items: int
    n_dropped_large: int
    itemsets: dict[str | None, pd.DataFrame] = field(default_factory=dict)
    rules: dict[str | None, pd.DataFrame] | None = None
    segment_run: int | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None

    @property
    def n_itemsets(self) -> int:
        return len(self.itemsets.get(None, ()))

    @property
    def n_rules(self) -> int:
        return len((self.rules or {}).get(None, ()))


def check_options(*, basket: str, item: str, min_support: float | int, max_len: int | None,
                  algorithm: str, kind: str) -> None:
    """Fail on a bad option before the workspace is touched."""
    for name, value, allowed in (("basket", basket, BASKETS), ("item", item, ITEMS),
                                 ("algorithm", algorithm, ALGORITHMS), ("kind", kind, KINDS)):
        if value not in allowed:
            raise InputError("error.basket_bad_option", option=name, value=str(value),
                             expected=" | ".join(allowed))
    ok = (not isinstance(min_support, bool) and isinstance(min_support, (int, float))
          and (0 < min_support <= 1 if isinstance(min_support, float) else min_support >= 1))
    if not ok:
        raise InputError("error.basket_bad_option", option="min_support",
                         value=str(min_support), expected="a fraction in (0, 1] or a count >= 1")
    if max_len is not None and (isinstance(max_len, bool) or int(max_len) < 1):
        raise InputError("error.basket_bad_option", option="max_len", value=str(max_len),
                         expected=">= 1")


def _segments(con: duckdb.DuckDBPyConnection, segment_run: int | str
              ) -> tuple[int, dict[str, list[str]]]:
    from crmlens.segment.store import resolve_run

    run = resolve_run(con, segment_run)
    rows = con.execute("SELECT segment, customer_id FROM segments WHERE run_id = ? "
                       "ORDER BY segment, customer_id", [run.run_id]).fetchall()
    members: dict[str, list[str]] = {}
    for segment, customer in rows:
        members.setdefault(str(segment), []).append(str(customer))
    return run.run_id, members


def mine(con: duckdb.DuckDBPyConnection, *, basket: str = "order", item: str = "product",
         min_support: float | int = 0.01, max_len: int | None = None,
         algorithm: str = "eclat", kind: str = "all", rules: dict[str, Any] | None = None,
         segment_run: int | str | None = None, max_basket_size: int | None = None,
         progress: Progress = NO_PROGRESS) -> BasketResult:
    """Frequent itemsets (and rules when ``rules`` holds their options) from the store.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Workspace connection.
    basket : {"order", "customer"}, default "order"
    item : {"product", "category"}, default "product"
    min_support : float or int, default 0.01
        Fraction of baskets in (0, 1], or a count.
    max_len : int, optional
        Longest itemset.
    algorithm : {"eclat", "fpgrowth", "apriori"}, default "eclat"
    kind : {"all", "closed", "maximal"}, default "all"
        Rules need ``all``.
    rules : dict, optional
        Options of :func:`crmlens.basket.rules.association_rules`; None mines itemsets only.
    segment_run : int or str, optional
        A segmentation (run id or name): results per segment as well.
    max_basket_size : int, optional
        Passed to ``load_baskets``.
    progress : Progress, optional

    Returns
    -------
    BasketResult
    """
    from crmlens.basket.data import load_baskets
    from crmlens.basket.itemsets import frequent_itemsets

    check_options(basket=basket, item=item, min_support=min_support, max_len=max_len,
                  algorithm=algorithm, kind=kind)
    if rules is not None and kind != "all":
        raise InputError("error.basket_rules_need_all", kind=kind)

    def one(customers: list[str] | None) -> tuple[int, Any, Any, pd.DataFrame | None]:
        try:
            baskets = load_baskets(con, basket=basket, item=item, customers=customers,
                                   max_basket_size=max_basket_size)
        except InputError as exc:
            if exc.key != "error.basket.empty" or customers is None:
                raise
            return 0, None, None, None  # a segment without baskets
        if customers is not None and baskets.n_baskets < MIN_SEGMENT_BASKETS:
            return baskets.n_baskets, baskets, None, None
        found = frequent_itemsets(baskets, min_support=min_support, max_len=max_len,
                                  algorithm=algorithm, kind=kind)
        table = None if rules is None else association_rules(found, **rules)
        return baskets.n_baskets, baskets, found, table

    progress.stage("progress.basket_mine")
    _, baskets, found, table = one(None)
    result = BasketResult(
        basket=basket, item=item, min_support=min_support, min_count=int(found.min_count),
        max_len=max_len, algorithm=algorithm, kind=kind, n_baskets=int(baskets.n_baskets),
        n_items=int(baskets.n_items), n_dropped_large=int(baskets.n_dropped_large),
        itemsets={None: itemsets_frame(found)},
        rules=None if table is None else {None: table})
    if segment_run is None:
        return result
    result.segment_run, members = _segments(con, segment_run)
    for label, customers in members.items():
        progress.stage("progress.basket_segment", segment=label)
        n_seg, _, seg_found, seg_rules = one(customers)
        entry: dict[str, Any] = {"segment": label, "customers": len(customers),
                                 "baskets": int(n_seg)}
        if seg_found is None:
            entry["skipped"] = "too_few_baskets"
            result.segments.append(entry)
            continue
        result.itemsets[label] = itemsets_frame(seg_found)
        entry["n_itemsets"] = len(result.itemsets[label])
        if seg_rules is not None:
            result.rules[label] = seg_rules  # type: ignore[index]
            entry["n_rules"] = len(seg_rules)
        result.segments.append(entry)
    return result


def count_baskets(con: duckdb.DuckDBPyConnection) -> int:
    """Orders holding merchandise (what the ``basket`` stage checks before mining)."""
    row = con.execute("SELECT count(DISTINCT order_id) FROM transactions "
                      "WHERE line_type = 'product' AND NOT coalesce(is_return, false)").fetchall()[0]
    return int(row[0] or 0)
