"""Profiles (personas, 客户画像) of the segments of any segmentation.

For every segment: size and shares, mean and median of each numeric feature, lift against all
customers (the standardized difference of means), the features that most distinguish it, its
top products and categories, a generated descriptive name and a recommended action.

Names come from where a segment's medians fall in the distribution of all customers (robust
to the few very large customers every shop has), not from raw means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.i18n import LANGUAGES, t

# Columns of the feature table that are keys, not features.
KEY_COLUMNS = ("customer_id", "as_of")
# Figures shown for every segment where the features have them (value, loyalty, satisfaction).
HEADLINE = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days",
            "return_rate", "satisfaction")
N_DISTINGUISHING = 4
# A segment whose median spend is above this percentile of all customers is "top-value"
# (the few very large accounts every shop has); one whose mean return rate lies this many
# standard deviations above everyone's is named for its returns.
TOP_VALUE = 0.95
RETURNS_LIFT = 1.5
N_TOP_ITEMS = 5


@dataclass(frozen=True)
class Level:
    """Where a segment's median of one feature sits among all customers (percentile 0..1)."""

    feature: str
    percentile: float


def numeric_features(features: pd.DataFrame) -> list[str]:
    """The numeric, non-constant feature columns of a feature table."""
    cols = []
    for c in features.columns:
        if c in KEY_COLUMNS or not pd.api.types.is_numeric_dtype(features[c]):
            continue
        if pd.api.types.is_bool_dtype(features[c]):
            continue
        if features[c].nunique(dropna=True) > 1:
            cols.append(c)
    return cols


def _percentile_of(all_sorted: np.ndarray, value: float) -> float:
    if len(all_sorted) == 0 or value is None or math.isnan(value):
        return 0.5
    lo = np.searchsorted(all_sorted, value, side="left")
    hi = np.searchsorted(all_sorted, value, side="right")
    return float((lo + hi) / 2 / len(all_sorted))


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def describe_name(levels: Mapping[str, float], *, lang: str) -> tuple[str, str]:
    """A descriptive name and a recommended action from a segment's percentile levels.

    ``levels`` maps ``monetary``, ``frequency``, ``recency_days``, ``tenure_days`` (any may be
    missing) to the percentile of the segment's median among all customers, and optionally
    ``return_rate_lift`` to the lift of the segment's mean return rate.
    """
    value = levels.get("monetary")
    returns_lift = levels.get("return_rate_lift")
    freq = levels.get("frequency")
    recency = levels.get("recency_days")
    tenure = levels.get("tenure_days")
    parts = []
    if value is not None:
        parts.append("top_value" if value >= TOP_VALUE else "high_value" if value >= 0.67
                     else "low_value" if value <= 0.33 else "mid_value")
    if freq is not None:
        parts.append("frequent" if freq >= 0.67 else "occasional" if freq <= 0.4 else None)
    new = tenure is not None and tenure <= 0.25 and (recency is None or recency <= 0.5)
    if recency is not None:
        parts.append("new" if new else "active" if recency <= 0.33
                     else "lapsed" if recency >= 0.67 else None)
    words = [t(f"segment.profile.word.{p}", lang=lang) for p in parts if p]
    sep = "" if lang == "zh" else " "
    name = sep.join(words) if words else t("segment.profile.word.typical", lang=lang)
    name = t("segment.profile.name", lang=lang, words=name)
    if returns_lift is not None and returns_lift >= RETURNS_LIFT:
        name = t("segment.profile.name_returns", lang=lang, name=name)
    if lang != "zh":
        name = name[:1].upper() + name[1:]
    # The action follows value and activity, the two things a campaign can act on.
    high = value is not None and value >= 0.67
    if returns_lift is not None and returns_lift >= RETURNS_LIFT and not (high or new):
        return name, t("segment.profile.action.fix_returns", lang=lang)
    low = value is not None and value <= 0.33
    lapsed = recency is not None and recency >= 0.67
    if new:
        action = "onboard"
    elif high and lapsed:
        action = "win_back"
    elif high:
        action = "reward"
    elif lapsed and low:
        action = "let_go"
    elif lapsed:
        action = "reactivate"
    elif low:
        action = "grow"
    else:
        action = "cross_sell"
    return name, t(f"segment.profile.action.{action}", lang=lang)


def profile_segments(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    names: Mapping[str, Mapping[str, tuple[str, str]]] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    as_of: date | None = None,
) -> list[dict[str, Any]]:
    """Profile every segment of a segmentation.

    Parameters
    ----------
    features : pandas.DataFrame
        The customer feature table (``customer_id`` plus features).
    labels : pandas.DataFrame
        ``customer_id`` and ``segment``.
    order : sequence of str, optional
        Display order of the segments (default: largest first).
    names : mapping, optional
        ``segment -> {lang: (name, action)}`` given by the method (the RFM map); generated
        otherwise, in every language of the catalogue. An action of None is generated.
    con : duckdb.DuckDBPyConnection, optional
        The workspace, for the top products and categories of each segment (from
        transactions before ``as_of``).
    as_of : date, optional
        The as-of date of the features.

    Returns
    -------
    list of dict
        One JSON-able dict per segment, in display order; ``name`` and ``action`` are
        ``{lang: text}``.
    """
    data = features.merge(labels[["customer_id", "segment"]], on="customer_id", how="inner")
    data["segment"] = data["segment"].astype(str)
    cols = numeric_features(features)
    values = data[cols].astype(float)
    overall_mean = values.mean()
    overall_std = values.std(ddof=0).replace(0.0, np.nan)
    sorted_all = {c: np.sort(values[c].dropna().to_numpy()) for c in cols}
    total = len(data)
    revenue = float(data["monetary"].clip(lower=0).sum()) if "monetary" in data else None
    segs = list(order) if order is not None else \
        data["segment"].value_counts().sort_values(ascending=False, kind="stable").index.tolist()
    present = set(data["segment"].unique())
    segs = [s for s in segs if s in present] + sorted(present - set(segs))
    top = _top_items(con, labels, as_of) if con is not None else {}

    profiles = []
    for seg in segs:
        part = values[data["segment"].to_numpy() == seg]
        mean, median = part.mean(), part.median()
        lift = (mean - overall_mean) / overall_std
        stats = {c: {"mean": _finite(mean[c]), "median": _finite(median[c]),
                     "lift": _finite(lift[c])} for c in cols}
        ranked = sorted((c for c in cols if _finite(lift[c]) is not None),
                        key=lambda c: -abs(float(lift[c])))
        levels = {c: _percentile_of(sorted_all[c], float(median[c])) for c in cols
                  if c in ("monetary", "frequency", "recency_days", "tenure_days")}
        if "return_rate" in cols and _finite(lift["return_rate"]) is not None:
            levels["return_rate_lift"] = float(lift["return_rate"])
        name, action = {}, {}
        for lang in LANGUAGES:
            given = (names or {}).get(seg, {}).get(lang)
            generated = describe_name(levels, lang=lang)
            # A method may name its segments and leave the action (None) to the profile.
            name[lang] = given[0] if given else generated[0]
            action[lang] = given[1] if given and given[1] else generated[1]
        n = len(part)
        seg_revenue = float(data.loc[data["segment"] == seg, "monetary"].clip(lower=0).sum()) \
            if revenue is not None else None
        profiles.append({
            "segment": seg,
            "name": name,
            "action": action,
            "n_customers": n,
            "share_customers": n / total if total else 0.0,
            "share_revenue": (seg_revenue / revenue) if revenue else None,
            "headline": {c: stats[c] for c in HEADLINE if c in stats},
            "distinguishing": [{"feature": c, "lift": float(lift[c]),
                                "mean": _finite(mean[c]), "overall_mean": _finite(
                                    overall_mean[c])} for c in ranked[:N_DISTINGUISHING]],
            "levels": levels,
            "features": stats,
            "top_products": top.get(("product", seg), []),
            "top_categories": top.get(("category", seg), []),
            "distinctive_products": top.get(("distinctive_product", seg), []),
            "distinctive_categories": top.get(("distinctive_category", seg), []),
        })
    _dedupe_names(profiles)
    return profiles


def _dedupe_names(profiles: list[dict[str, Any]]) -> None:
    # Two clusters can earn the same generated name; the segment label tells them apart.
    for lang in LANGUAGES:
        seen: dict[str, int] = {}
        for p in profiles:
            seen[p["name"][lang]] = seen.get(p["name"][lang], 0) + 1
        for p in profiles:
            if seen[p["name"][lang]] > 1:
                p["name"][lang] = t("segment.profile.name_numbered", lang=lang,
                                    name=p["name"][lang], segment=p["segment"])


def _top_items(con: duckdb.DuckDBPyConnection, labels: pd.DataFrame, as_of: date | None
               ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per segment and dimension: the top items by net spend, and the distinctive ones.

    Distinctive: the items whose share of buyers in the segment most exceeds their share of
    buyers among all profiled customers (lift), among items bought by at least
    ``max(3, 5 %)`` of the segment — best-sellers that everybody buys are left out.
    One aggregation per dimension inside the engine; Python sees a few rows per segment.
    """
    frame = labels[["customer_id", "segment"]].astype(str)
    con.register("_crmlens_profile_labels", frame)
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    pairs = "_crmlens_profile_pairs"
    try:
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'transactions'").fetchall()}
        if not cols:
            return out
        cutoff = "AND t.ts < ?" if as_of is not None else ""
        params = [as_of] if as_of is not None else []
        dims = {"product": "coalesce(t.product_name, t.product_id)", "category": "t.category"}
        for dim, expr in dims.items():
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {pairs} AS
                SELECT l.segment, {expr} AS item, sum(t.amount) AS spend,
                       count(DISTINCT t.customer_id) AS customers
                FROM transactions t JOIN _crmlens_profile_labels l USING (customer_id)
                WHERE t.line_type = 'product' AND {expr} IS NOT NULL {cutoff}
                GROUP BY ALL""", params)
            top = con.execute(f"""
                SELECT segment, item, spend, customers, NULL FROM {pairs}
                QUALIFY row_number() OVER (PARTITION BY segment ORDER BY spend DESC, item)
                        <= {N_TOP_ITEMS}
                ORDER BY segment, spend DESC, item""").fetchall()
            # Segments are exclusive, so buyers summed over segments are the item's buyers.
            distinct = con.execute(f"""
                WITH seg AS (SELECT segment, count(*) AS n FROM _crmlens_profile_labels
                             GROUP BY segment),
                     items AS (SELECT item, sum(customers) AS buyers FROM {pairs} GROUP BY item),
                     total AS (SELECT count(*) AS n FROM _crmlens_profile_labels)
                SELECT p.segment, p.item, p.spend, p.customers,
                       (p.customers / seg.n) / (items.buyers / total.n) AS lift
                FROM {pairs} p JOIN seg USING (segment) JOIN items USING (item), total
                WHERE p.customers >= greatest(3, 0.05 * seg.n)
                QUALIFY row_number() OVER (PARTITION BY p.segment
                                           ORDER BY lift DESC, p.spend DESC, p.item)
                        <= {N_TOP_ITEMS}
                ORDER BY p.segment, lift DESC, p.spend DESC, p.item""").fetchall()
            for key, rows in ((dim, top), (f"distinctive_{dim}", distinct)):
                for seg, item, spend, customers, lift in rows:
                    entry = {"item": str(item), "spend": float(spend),
                             "customers": int(customers)}
                    if lift is not None:
                        entry["lift"] = float(lift)
                    out.setdefault((key, str(seg)), []).append(entry)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {pairs}")
        con.unregister("_crmlens_profile_labels")
    return out
