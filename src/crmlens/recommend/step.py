"""The recommendation step: fit on the whole history, recommend for every identified customer,
optionally evaluate every method on a time split — the core the verbs, CLI and stage call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError
from crmlens.i18n import t
from crmlens.recommend.data import load_interactions
from crmlens.recommend.scoring import REASON_KEYS, SOURCES

log = logging.getLogger(__name__)


@dataclass
class RecommendResult:
    """Recommendations of every customer (a frame) and, when asked, the evaluation."""

    method: str
    k: int
    as_of: str | None
    params: dict[str, Any]
    recommendations: pd.DataFrame
    evaluation: dict[str, Any] | None = None
    n_customers: int = 0
    n_items: int = 0
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)


def latest_segments(con: duckdb.DuckDBPyConnection) -> tuple[int | None, dict[str, str]]:
    """Membership of the newest segmentation (run id, customer -> segment), or (None, {})."""
    has = con.execute("SELECT count(*) FROM information_schema.tables "
                      "WHERE table_name = 'segment_runs'").fetchone()[0]
    if not has:
        return None, {}
    row = con.execute("SELECT run_id FROM segment_runs "
                      "ORDER BY created_at DESC, run_id DESC LIMIT 1").fetchone()
    if row is None:
        return None, {}
    members = con.execute("SELECT customer_id, segment FROM segments WHERE run_id = ?",
                          [row[0]]).fetchall()
    return int(row[0]), dict(members)


def make_model(method: str, params: dict[str, Any] | None = None):
    """An unfitted recommender of ``method`` (InputError for an unknown one)."""
    from crmlens.recommend import METHODS

    if method not in METHODS:
        raise InputError("error.recommend_unknown_method", method=str(method),
                         choices=", ".join(METHODS))
    return METHODS[method](**(params or {}))


def _fit(model, method: str, interactions, segments):
    return model.fit(interactions, segments) if method in ("hybrid", "popular") else \
        model.fit(interactions)


def reasons_frame(top, interactions, lang: str = "en") -> pd.DataFrame:
    """The flat table of a :class:`TopK`: one row per recommendation with its reason."""
    n, k = top.items.shape
    valid = top.items >= 0
    r, c = np.nonzero(valid)
    items = top.items[r, c]
    why = top.reason_items[r, c]
    sources = np.asarray(SOURCES, dtype=object)[top.sources[r, c]]
    reason_ids = np.where(why >= 0, interactions.item_ids[np.maximum(why, 0)], None)
    reason_names = np.where(why >= 0, interactions.item_names[np.maximum(why, 0)], None)
    keys = [REASON_KEYS[s] for s in sources]
    texts = [t(key, lang=lang, item=(name or rid or "")) for key, name, rid
             in zip(keys, reason_names, reason_ids)]
    return pd.DataFrame({
        "customer_id": top.customer_ids[r].astype(str), "rank": (c + 1).astype(np.int32),
        "product_id": interactions.item_ids[items].astype(str),
        "product_name": interactions.item_names[items].astype(str),
        "score": top.scores[r, c].astype(float), "source": sources.astype(str),
        "reason_key": keys, "reason_item": reason_ids, "reason": texts})


def run_recommend(con: duckdb.DuckDBPyConnection, *, method: str = "hybrid", k: int = 10,
                  allow_repeats: bool = False, exclude: Sequence[str] | None = None,
                  include: Sequence[str] | None = None, customers: Sequence[str] | None = None,
                  evaluate: bool = False, params: dict[str, Any] | None = None
                  ) -> RecommendResult:
    """Fit ``method`` on all data and recommend ``k`` products to every identified customer.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    method : {"hybrid", "rules", "item_cf", "popular"}, default "hybrid"
    k : int, default 10
    allow_repeats : bool, default False
        Also recommend products the customer already bought.
    exclude, include : sequence of str, optional
        Product ids left out of / the only ones in the catalogue.
    customers : sequence of str, optional
        Recommend only for these customers (default: all identified ones).
    evaluate : bool, default False
        Also evaluate every method and the popularity baseline on a time split (the hybrid's
        weights are chosen on an earlier validation split and then used for the fit too).
    params : dict, optional
        Parameters of the recommender.

    Returns
    -------
    RecommendResult
    """
    from crmlens.recommend import METHODS
    from crmlens.recommend.evaluate import evaluate_methods

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError("error.recommend_bad_option", option="k", value=str(k))
    model = make_model(method, params)
    segment_run, segments = latest_segments(con)
    load = {"exclude": list(exclude) if exclude else None,
            "include": list(include) if include else None}
    evaluation = None
    if evaluate:
        makers = {name: (lambda name=name: make_model(name, params if name == method
                                                      else None)) for name in METHODS}
        evaluation = evaluate_methods(con, makers, k=k, exclude_seen=not allow_repeats,
                                      segments=segments, **load)
        if method == "hybrid" and evaluation.get("tuned"):
            model.set_params(**evaluation["tuned"]["params"])
    data = load_interactions(con, **load)
    if data.n_customers == 0 or data.n_items == 0:
        raise InputError("error.recommend_no_data")
    _fit(model, method, data, segments)
    rows = np.arange(data.n_customers)
    if customers is not None:
        wanted = pd.Index(data.customer_ids).get_indexer([str(c) for c in customers])
        rows = wanted[wanted >= 0]
    top = model.recommend(data.customers[rows], data.customer_ids[rows], k=k,
                          exclude_seen=not allow_repeats)
    frame = reasons_frame(top, data)
    as_of = con.execute("SELECT max(ts)::DATE FROM transactions WHERE line_type = 'product'"
                        ).fetchone()[0]
    return RecommendResult(
        method=method, k=k, as_of=as_of.isoformat() if as_of else None,
        params={"method_params": model.get_params(), "allow_repeats": allow_repeats,
                "exclude": load["exclude"], "include": load["include"],
                "segment_run": segment_run, "n_dropped_large": data.n_dropped_large},
        recommendations=frame, evaluation=evaluation, n_customers=len(rows),
        n_items=data.n_items)
