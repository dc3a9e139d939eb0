"""Offline evaluation on a time split: fit before a date, score the purchases after it.

Relevant items of a customer are the products they bought in the test window — minus the ones
they had already bought in training when repeats are excluded (then the task is discovery, as
the recommendations themselves exclude them). Customers count when they have a training
history and at least one relevant item. Per method: precision@K (hits / K), recall@K (hits /
relevant, items new to the catalogue included, so 1 may be out of reach), hit rate (share of
customers with at least one hit, Success@K) and catalogue coverage (distinct items recommended
/ items in training). The baseline is overall popularity; the grade compares to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import product
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from crmlens.recommend.data import Interactions, load_interactions
from crmlens.recommend.scoring import binary

# Relative margin of precision@K and recall@K over the baseline that makes a grade.
GRADE_MARGIN = 0.10
TEST_DAYS = 91
# Grid searched for the hybrid on the validation split (the weights only change scoring).
# Only ratios matter (each component is max-scaled), so cf_weight stays 1.
HYBRID_GRID = {"rules_weight": (0.0, 0.25, 0.5), "cf_weight": (1.0,),
               "popular_weight": (0.02, 0.1)}


@dataclass(frozen=True)
class Split:
    """Training histories and the relevant test purchases, on the training coding."""

    train: Interactions
    relevant: sp.csr_matrix      # train customers x train items, binary
    n_relevant: np.ndarray       # per train customer, items new to the catalogue included
    test_start: date
    end: date | None


def time_split(con: duckdb.DuckDBPyConnection, test_start: date, *, end: date | None = None,
               start: date | None = None, exclude_seen: bool = True,
               **load_options: Any) -> Split:
    """Training data ``[start, test_start)`` and relevant items ``[test_start, end)``."""
    train = load_interactions(con, start=start, end=test_start, **load_options)
    test = load_interactions(con, start=test_start, end=end, **load_options)
    t_rows = pd.Index(train.customer_ids).get_indexer(test.customer_ids)
    t_items = pd.Index(train.item_ids).get_indexer(test.item_ids)
    bought = binary(test.customers).tocoo()
    rows, cols = t_rows[bought.row], t_items[bought.col]
    known = rows >= 0
    rows, cols = rows[known], cols[known]
    seen = np.zeros(len(rows), bool)
    if exclude_seen:
        in_catalogue = cols >= 0
        hist = binary(train.customers)
        seen[in_catalogue] = np.asarray(
            hist[rows[in_catalogue], cols[in_catalogue]]).ravel() > 0
    rows, cols = rows[~seen], cols[~seen]
    n_relevant = np.bincount(rows, minlength=train.n_customers)
    inside = cols >= 0
    relevant = sp.csr_matrix((np.ones(int(inside.sum()), np.float32),
                              (rows[inside], cols[inside])),
                             shape=(train.n_customers, train.n_items))
    relevant.sum_duplicates()
    return Split(train, relevant, n_relevant, test_start, end)


def ranking_metrics(items: np.ndarray, split: Split, rows: np.ndarray, k: int
                    ) -> dict[str, float]:
    """precision, recall, hit_rate at ``k`` over ``rows`` and coverage of ``items``."""
    top = items[:, :k]
    rel = split.relevant[rows]
    valid = top >= 0
    hit = np.zeros(top.shape, bool)
    r_idx = np.repeat(np.arange(len(rows)), k).reshape(top.shape)
    hit[valid] = np.asarray(rel[r_idx[valid], top[valid]]).ravel() > 0
    hits = hit.sum(axis=1)
    n_rel = split.n_relevant[rows]
    catalogue = max(split.train.n_items, 1)
    return {"precision": float(np.mean(hits / k)) if len(rows) else 0.0,
            "recall": float(np.mean(hits / n_rel)) if len(rows) else 0.0,
            "hit_rate": float(np.mean(hits > 0)) if len(rows) else 0.0,
            "coverage": float(len(np.unique(top[valid])) / catalogue),
            "n_customers": int(len(rows))}


def eval_rows(split: Split) -> np.ndarray:
    """Customers with a training history and something relevant to find."""
    has_history = np.diff(split.train.customers.indptr) > 0
    return np.flatnonzero(has_history & (split.n_relevant > 0))


def grade(metrics: Mapping[str, float], baseline: Mapping[str, float]) -> str:
    """``better`` / ``similar`` / ``worse`` than the baseline on precision and recall."""
    p, bp = metrics["precision"], baseline["precision"]
    r, br = metrics["recall"], baseline["recall"]
    if p >= bp * (1 + GRADE_MARGIN) and r >= br * (1 + GRADE_MARGIN) and p > 0:
        return "better"
    if p <= bp * (1 - GRADE_MARGIN) or r <= br * (1 - GRADE_MARGIN):
        return "worse"
    return "similar"


def score_model(model, split: Split, *, k: int, exclude_seen: bool = True,
                allowed: np.ndarray | None = None, rows: np.ndarray | None = None
                ) -> dict[str, float]:
    """Metrics of a fitted model on ``split``."""
    rows = eval_rows(split) if rows is None else rows
    top = model.recommend(split.train.customers[rows], split.train.customer_ids[rows], k=k,
                          exclude_seen=exclude_seen, allowed=allowed)
    return ranking_metrics(top.items, split, rows, k)


def tune_hybrid(model, split: Split, *, k: int, exclude_seen: bool = True,
                grid: Mapping[str, tuple] = HYBRID_GRID) -> tuple[dict[str, float], list[dict]]:
    """Best blend weights of a hybrid fitted on ``split.train`` (by recall@k, then precision).

    Only the weights change, so the components are fitted once. Returns the chosen weights and
    every tried row.
    """
    rows = eval_rows(split)
    tried = []
    names = list(grid)
    for values in product(*(grid[n] for n in names)):
        params = dict(zip(names, values))
        if not any(params.values()):
            continue
        model.set_params(**params)
        tried.append({**params, **score_model(model, split, k=k, exclude_seen=exclude_seen,
                                              rows=rows)})
    best = max(tried, key=lambda r: (r["recall"], r["precision"]))
    chosen = {n: best[n] for n in names}
    model.set_params(**chosen)
    return chosen, tried


def default_dates(con: duckdb.DuckDBPyConnection, *, test_days: int = TEST_DAYS
                  ) -> tuple[date, date, date] | None:
    """(validation start, test start, end): the last two periods of ``test_days``.

    None when the history is shorter than four such periods (two for training at least).
    """
    first, last = con.execute("SELECT min(ts)::DATE, max(ts)::DATE FROM transactions "
                              "WHERE line_type = 'product' AND customer_id IS NOT NULL"
                              ).fetchone()
    if first is None:
        return None
    end = last + timedelta(days=1)
    test_start = end - timedelta(days=test_days)
    val_start = test_start - timedelta(days=test_days)
    if (val_start - first).days < 2 * test_days:
        return None
    return val_start, test_start, end


def evaluate_methods(con: duckdb.DuckDBPyConnection, make: Mapping[str, Callable[[], Any]], *,
                     k: int = 10, exclude_seen: bool = True, test_start: date | None = None,
                     validation_start: date | None = None, end: date | None = None,
                     segments: Mapping[str, str] | None = None, tune: bool = True,
                     **load_options: Any) -> dict[str, Any]:
    """Evaluate recommenders and the popularity baseline on a time split.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    make : mapping of str to callable
        Method name -> factory of an unfitted recommender (``hybrid`` is tuned first).
    k : int, default 10
    exclude_seen : bool, default True
    test_start, validation_start, end : date, optional
        Default: the last two quarters (:func:`default_dates`).
    segments : mapping, optional
        customer_id -> segment, for popularity within segments.
    tune : bool, default True
        Choose the hybrid's weights on the validation split (fitted before
        ``validation_start``, scored on ``[validation_start, test_start)``).

    Returns
    -------
    dict
        ``methods`` (one row per method with metrics, baseline metrics, grade), ``baseline``,
        ``tuned`` (chosen weights and the grid tried) and the dates.
    """
    from crmlens.recommend.popular import PopularRecommender

    if test_start is None:
        dates = default_dates(con)
        if dates is None:
            from crmlens.errors import InputError

            raise InputError("error.recommend_history_too_short", days=4 * TEST_DAYS)
        validation_start, test_start, end = dates
    tuned: dict[str, Any] = {}
    if tune and "hybrid" in make and validation_start is not None:
        val = time_split(con, validation_start, end=test_start, exclude_seen=exclude_seen,
                         **load_options)
        model = make["hybrid"]().fit(val.train, segments)
        chosen, tried = tune_hybrid(model, val, k=k, exclude_seen=exclude_seen)
        tuned = {"params": chosen, "grid": tried}
    split = time_split(con, test_start, end=end, exclude_seen=exclude_seen, **load_options)
    rows = eval_rows(split)
    baseline = score_model(PopularRecommender().fit(split.train), split, k=k,
                           exclude_seen=exclude_seen, rows=rows)
    methods = []
    for name, factory in make.items():
        model = factory()
        if name == "hybrid" and tuned:
            model.set_params(**tuned["params"])
        model = model.fit(split.train, segments) if name in ("hybrid", "popular") else \
            model.fit(split.train)
        metrics = score_model(model, split, k=k, exclude_seen=exclude_seen, rows=rows)
        methods.append({"method": name, "k": k, **metrics,
                        "baseline_precision": baseline["precision"],
                        "baseline_recall": baseline["recall"],
                        "baseline_hit_rate": baseline["hit_rate"],
                        "grade": grade(metrics, baseline)})
    return {"methods": methods, "baseline": {"method": "baseline", "k": k, **baseline},
            "tuned": tuned, "validation_start": validation_start and str(validation_start),
            "test_start": str(test_start), "end": end and str(end),
            "exclude_seen": exclude_seen}
