"""Segmentation steps on the workspace: features in, saved segments, profiles and rules out.

Each function reads the stored customer features of one as-of date, runs a method, explains
the result with a shallow tree, profiles every segment, and saves it all (``segment_runs``,
``segments``, ``segment_profiles`` and a ``runs`` row) on the caller's connection, inside the
caller's transaction. The :class:`~crmlens.Workspace` verbs and the CLI are shells over these.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError
from crmlens.i18n import LANGUAGES
from crmlens.segment import store as seg_store
from crmlens.segment.profiles import profile_segments
from crmlens.workspace.runs import RunRecord

log = logging.getLogger(__name__)

# What the automatic clustering looks at by default: behaviour a marketer can act on.
# Everything else in the feature table still shows in the profiles.
DEFAULT_CLUSTER_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value",
                            "tenure_days", "n_products", "return_rate", "satisfaction")


@dataclass
class SegmentationResult:
    """A saved segmentation: its run, profiles and explanation.

    Attributes
    ----------
    run : crmlens.segment.store.SegmentRun
    profiles : list of dict
        One per segment, in display order (names and actions per language).
    explanation : dict or None
        Rules per language and the tree's fidelity.
    extra : dict
        Method-specific figures (the table of k for clustering, counts per rule ...).
    """

    run: seg_store.SegmentRun
    profiles: list[dict[str, Any]]
    explanation: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> int:
        return self.run.run_id

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """JSON-able result; names, actions and rules in ``lang``."""
        def pick(value: Any) -> Any:
            return value.get(lang, value.get("en")) if isinstance(value, dict) else value

        rules = (self.explanation or {}).get("rules", {}).get(lang, {})
        segments = []
        for p in self.profiles:
            segments.append({
                "segment": p["segment"], "name": pick(p["name"]), "action": pick(p["action"]),
                "n_customers": p["n_customers"], "share_customers": p["share_customers"],
                "share_revenue": p["share_revenue"], "headline": p["headline"],
                "distinguishing": p["distinguishing"], "rules": rules.get(p["segment"], []),
                "top_products": p["top_products"], "top_categories": p["top_categories"],
                "distinctive_products": p.get("distinctive_products", []),
                "distinctive_categories": p.get("distinctive_categories", [])})
        out = {"run": self.run.to_dict(), "segments": segments}
        if self.explanation:
            out["fidelity"] = self.explanation.get("fidelity")
        notes = self.run.notes
        for key in ("k_reason", "sampling", "preprocessing"):
            if key in notes:
                out[key] = pick(notes[key])
        for key in ("k_table", "chosen_k"):
            if key in notes:
                out[key] = notes[key]
        out.update(self.extra)
        return out


# --- shared steps ---------------------------------------------------------------------------


def load_features(con: duckdb.DuckDBPyConnection, as_of: str | date | None
                  ) -> tuple[pd.DataFrame, date]:
    """The stored features of ``as_of`` (default the latest), and that date."""
    from crmlens.features import read_features
    from crmlens.features._store import stored_dates

    if not stored_dates(con):
        raise InputError("error.segment_no_features")
    frame = read_features(con, as_of=as_of)
    if frame.empty:
        raise InputError("error.segment_no_features")
    day = frame["as_of"].iloc[0]
    day = day.date() if hasattr(day, "date") else day
    return frame.drop(columns=["as_of"]).reset_index(drop=True), day


def _feature_spec(lang: str):
    from crmlens.features import feature_catalogue
    from crmlens.segment.labels import feature_label

    units = {d["name"]: d.get("unit") for d in feature_catalogue(lang)}

    def spec(name: str) -> dict[str, Any]:
        unit = units.get(name)
        out: dict[str, Any] = {"label": feature_label(name, lang=lang)}
        if unit == "currency":
            out["kind"] = "money"
        elif unit == "share" or name.startswith("share_"):
            out["kind"] = "share"
        elif unit:
            out["unit"] = _unit_text(unit, lang)
        return out

    return spec


_UNITS = {"days": ("days", "天"), "orders": ("orders", "单"), "hours": ("h", "时")}


def _unit_text(unit: str, lang: str) -> str:
    pair = _UNITS.get(unit)
    return (pair[1] if lang == "zh" else pair[0]) if pair else ""


def explain(features: pd.DataFrame, labels: pd.Series, names: Mapping[str, Mapping[str, str]],
            columns: Sequence[str] | None = None, *, random_state: int = 0
            ) -> dict[str, Any] | None:
    """Rules (per language) of a shallow tree that predicts each segment from the features."""
    from crmlens.segment.explain import explain_segments

    X = features[list(columns)] if columns else features.drop(columns=["customer_id"])
    if labels.nunique() < 2 or len(X) < 10:
        return None
    out: dict[str, Any] = {"rules": {}}
    for lang in LANGUAGES:
        e = explain_segments(X, labels.to_numpy(), max_depth=3, lang=lang,
                             feature_labels=_feature_spec(lang),
                             segment_names={s: n[lang] for s, n in names.items()},
                             random_state=random_state)
        out["rules"][lang] = {str(s.segment): [r.text for r in s.rules] for s in e.segments}
        out["fidelity"] = e.fidelity
        out["sampled"] = e.n_fit < e.n_rows
        out["method"] = e.method
    return out


def _save(con: duckdb.DuckDBPyConnection, *, run: RunRecord, name: str, method: str, as_of: date,
          params: dict[str, Any], features: pd.DataFrame, labels: pd.DataFrame,
          order: Sequence[str] | None, names: Mapping[str, Mapping[str, tuple[str, str]]] | None,
          notes: dict[str, Any], explain_columns: Sequence[str] | None,
          random_state: int = 0) -> SegmentationResult:
    profiles = profile_segments(features, labels, order=order, names=names, con=con,
                                as_of=as_of)
    display = {p["segment"]: p["name"] for p in profiles}
    explanation = explain(features, labels["segment"].astype(str), display, explain_columns,
                          random_state=random_state)
    if explanation:
        notes["explanation"] = explanation
    order = [p["segment"] for p in profiles]
    run.params.update({"name": name, "method": method, "as_of": as_of.isoformat(), **params})
    run.run_id = seg_store._next_run_id(con)
    seg_store.save_segmentation(con, name=name, method=method, as_of=as_of, params=params,
                                labels=labels, notes=notes, run_id=run.run_id, order=order)
    seg_store.save_profiles(con, run.run_id, profiles)
    counts = labels["segment"].value_counts()
    run.row_counts = {"customers": len(labels), "segments": {str(k): int(v)
                                                             for k, v in counts.items()}}
    run.write(con)
    return SegmentationResult(seg_store.get_run(con, run.run_id), profiles, explanation)


# --- methods --------------------------------------------------------------------------------


def segment_rfm(con: duckdb.DuckDBPyConnection, *, as_of: str | date | None = None,
                name: str = "rfm", method: str = "quantile", n_bins: int = 5,
                segment_map: str | Path | None = None,
                cut_points: Mapping[str, Sequence[float]] | None = None) -> SegmentationResult:
    """RFM scores and the named segment map, saved as a segmentation.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable workspace connection (the caller holds the transaction).
    as_of : str or date, optional
        As-of date of the stored features (default: the latest).
    name : str, default "rfm"
    method : {"quantile", "fixed", "jenks"}, default "quantile"
    n_bins : int, default 5
    segment_map : path, optional
        A segment map file (default: the built-in 11-segment map).
    cut_points : mapping, optional
        Fixed cut points per dimension (``recency``, ``frequency``, ``monetary``).

    Returns
    -------
    SegmentationResult
    """
    from crmlens.segment.rfm import load_segment_map, rfm_segment

    run = RunRecord("segment.rfm")
    features, day = load_features(con, as_of)
    smap = load_segment_map(segment_map)
    scored = rfm_segment(features, method=method, n_bins=n_bins, segment_map=smap,
                         cut_points=cut_points)
    labels = scored[["customer_id", "segment"]]
    names = {sid: {lang: (smap.name(sid, lang), smap.action(sid, lang)) for lang in LANGUAGES}
             for sid in smap.ids}
    present = set(labels["segment"])
    order = [sid for sid in smap.ids if sid in present]
    params = {"method": method, "n_bins": n_bins,
              "segment_map": str(segment_map) if segment_map else "built-in",
              "cut_points": {k: list(v) for k, v in (cut_points or {}).items()}}
    return _save(con, run=run, name=name, method="rfm", as_of=day, params=params,
                 features=features, labels=labels, order=order, names=names, notes={},
                 explain_columns=[c for c in ("recency_days", "frequency", "monetary")
                                  if c in features])


def cluster_columns(features: pd.DataFrame, requested: Sequence[str] | None) -> list[str]:
    """The feature columns a clustering uses: those asked for, else the default set."""
    if requested:
        missing = [c for c in requested if c not in features.columns]
        if missing:
            raise InputError("error.segment_unknown_feature", feature=missing[0],
                             available=", ".join(c for c in features.columns
                                                 if c != "customer_id"))
        return list(requested)
    cols = [c for c in DEFAULT_CLUSTER_FEATURES if c in features.columns
            and features[c].notna().any()]
    return cols


def segment_cluster(con: duckdb.DuckDBPyConnection, *, as_of: str | date | None = None,
                    name: str = "clusters", method: str = "kmeans",
                    n_clusters: int | str = "auto", k_range: tuple[int, int] = (3, 8),
                    features: Sequence[str] | None = None, random_state: int = 0,
                    **options: Any) -> SegmentationResult:
    """Cluster the customers, choose k if asked, and save the result as a segmentation.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable workspace connection (the caller holds the transaction).
    as_of : str or date, optional
        As-of date of the stored features (default: the latest).
    name : str, default "clusters"
    method : str, default "kmeans"
        Any method of :class:`crmlens.segment.clustering.Segmenter`.
    n_clusters : int or "auto", default "auto"
    k_range : (int, int), default (3, 8)
        Range searched by ``"auto"``. It starts at 3: two groups (high/low) is what RFM
        already gives, and a segmentation for campaigns starts at three.
    features : sequence of str, optional
        Feature columns to cluster on (default: recency, frequency, monetary, order value,
        tenure, products, return rate and satisfaction where present).
    random_state : int, default 0
    **options
        Further :class:`~crmlens.segment.clustering.Segmenter` parameters.

    Returns
    -------
    SegmentationResult
    """
    from crmlens.segment.clustering import Segmenter

    if method == "natural_breaks":
        return segment_tiers(con, as_of=as_of, name=name, n_classes=n_clusters,
                             k_range=k_range, feature=(features or ["monetary"]))
    run = RunRecord("segment.cluster")
    frame, day = load_features(con, as_of)
    cols = cluster_columns(frame, features)
    if len(frame) < 10:
        raise InputError("error.segment_too_few_customers", n=len(frame))
    seg = Segmenter(method=method, n_clusters=n_clusters, k_range=tuple(k_range),
                    random_state=random_state, **options)
    seg.fit(frame[cols])
    ids = seg.labels_
    label_names = {lang: seg.label_names(lang) for lang in LANGUAGES}
    # Stored labels: "1", "2" ... (-1 stays "noise"); display names are in the profiles.
    stored = np.where(ids < 0, "noise", (ids + 1).astype(str))
    labels = pd.DataFrame({"customer_id": frame["customer_id"].astype(str), "segment": stored})
    notes: dict[str, Any] = {
        "features": cols,
        "sampling": {lang: " ".join(seg.notes(lang)) for lang in LANGUAGES},
        "cluster_names": {lang: {("noise" if k < 0 else str(k + 1)): v
                                 for k, v in label_names[lang].items()} for lang in LANGUAGES},
    }
    plan = getattr(seg.preprocessor_, "describe", None)
    if callable(plan):
        try:
            notes["preprocessing_plan"] = _jsonable(plan())
        except Exception:  # a description is a nicety; never fail the step for it
            log.debug("preprocessor description failed", exc_info=True)
    if seg.k_choice_ is not None:
        table = seg.k_choice_.table.replace({np.nan: None}).to_dict(orient="records")
        notes["k_table"] = [{k: _jsonable(v) for k, v in row.items()} for row in table]
        notes["chosen_k"] = int(seg.k_choice_.k)
        notes["k_reason"] = {lang: seg.k_choice_.reason(lang) for lang in LANGUAGES}
        notes["k_settings"] = _jsonable(seg.k_choice_.settings)
    order = sorted(set(stored), key=lambda s: (s == "noise", int(s) if s.isdigit() else 0))
    params = {"method": method, "n_clusters": n_clusters, "k_range": list(k_range),
              "features": cols, "random_state": random_state,
              **{k: _jsonable(v) for k, v in options.items()}}
    result = _save(con, run=run, name=name, method=method, as_of=day,
                   params=params, features=frame, labels=labels, order=order, names=None,
                   notes=notes, explain_columns=cols, random_state=random_state)
    result.extra["n_clusters"] = int(seg.n_clusters_)
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, pd.DataFrame):
        return _jsonable(value.replace({np.nan: None}).to_dict(orient="records"))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def segment_rule(con: duckdb.DuckDBPyConnection, name: str, expression: str, *,
                 as_of: str | date | None = None) -> SegmentationResult:
    """Save the customers matching a rule expression as the segment ``name``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable workspace connection (the caller holds the transaction).
    name : str
        Name of the saved segment (refer to it later as ``segment('name')``).
    expression : str
        A condition in the segment builder's language (see ``docs/segment-builder.md``).
    as_of : str or date, optional
        As-of date of the stored features (default: the latest).

    Returns
    -------
    SegmentationResult
    """
    from crmlens.segment.builder import select_customers

    run = RunRecord("segment.rule", params={"name": name, "expression": expression})
    frame, day = load_features(con, as_of)
    chosen = select_customers(con, expression, as_of=day)
    if chosen.empty:
        raise InputError("error.segment_no_customers", name=name)
    labels = pd.DataFrame({"customer_id": chosen["customer_id"].astype(str), "segment": name})
    # Profiled against everyone: the rest of the customers form the comparison group.
    rest = frame.loc[~frame["customer_id"].astype(str).isin(labels["customer_id"]),
                     ["customer_id"]].assign(segment="(rest)")
    profiles = profile_segments(frame, pd.concat([labels, rest]), order=[name, "(rest)"],
                                con=con, as_of=day)[:1]
    run.params["as_of"] = day.isoformat()
    run.run_id = seg_store._next_run_id(con)
    seg_store.save_segmentation(con, name=name, method="rule", as_of=day,
                                params={"expression": expression}, labels=labels,
                                run_id=run.run_id, order=[name])
    seg_store.save_profiles(con, run.run_id, profiles)
    run.row_counts = {"customers": len(labels), "of": len(frame)}
    run.write(con)
    return SegmentationResult(seg_store.get_run(con, run.run_id), profiles)


def segment_waterfall(con: duckdb.DuckDBPyConnection, name: str,
                      rules: Sequence[tuple[str, str]], *, as_of: str | date | None = None,
                      default_label: str | None = None) -> SegmentationResult:
    """Mutually exclusive audiences: each customer goes to the first rule it matches.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable workspace connection (the caller holds the transaction).
    name : str
        Name of the saved segmentation.
    rules : sequence of (label, expression)
        In priority order.
    as_of : str or date, optional
        As-of date of the stored features (default: the latest).
    default_label : str, optional
        Segment of customers matching no rule (default: they are left out).

    Returns
    -------
    SegmentationResult
    """
    import json

    from crmlens.segment.builder import waterfall

    run = RunRecord("segment.waterfall")
    frame, day = load_features(con, as_of)
    labels = waterfall(con, rules, as_of=day, default_label=default_label)
    if labels.empty:
        raise InputError("error.segment_no_customers", name=name)
    counts = json.loads(labels.attrs["counts"].to_json(orient="records", force_ascii=False))
    order = [label for label, _ in rules] + ([default_label] if default_label else [])
    params = {"rules": [list(r) for r in rules], "default_label": default_label}
    result = _save(con, run=run, name=name, method="waterfall", as_of=day,
                   params=params, features=frame, labels=labels[["customer_id", "segment"]],
                   order=order, names=None, notes={"counts": counts},
                   explain_columns=None)
    result.extra["counts"] = counts
    return result


# Natural-breaks tiers: the smallest number of classes whose goodness of variance fit reaches
# this (a usual cartographic rule), when the number is left to "auto".
GVF_TARGET = 0.9


def goodness_of_variance_fit(values: np.ndarray, labels: np.ndarray) -> float:
    """1 - (within-class squared deviations) / (squared deviations from the mean)."""
    total = float(((values - values.mean()) ** 2).sum())
    if total == 0:
        return 1.0
    within = sum(float(((values[labels == c] - values[labels == c].mean()) ** 2).sum())
                 for c in np.unique(labels))
    return 1.0 - within / total


def segment_tiers(con: duckdb.DuckDBPyConnection, *, as_of: str | date | None = None,
                  name: str = "tiers", n_classes: int | str = "auto",
                  k_range: tuple[int, int] = (3, 8),
                  feature: Sequence[str] | str = "monetary") -> SegmentationResult:
    """One-variable tiers by natural breaks (Fisher–Jenks), e.g. spend tiers.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A writable workspace connection (the caller holds the transaction).
    as_of : str or date, optional
        As-of date of the stored features (default: the latest).
    name : str, default "tiers"
    n_classes : int or "auto", default "auto"
        Number of tiers; "auto" takes the smallest k in ``k_range`` whose goodness of
        variance fit reaches 0.9 (the largest k when none does).
    k_range : (int, int), default (2, 8)
    feature : str, default "monetary"
        The one feature to tier (a one-element sequence is accepted).

    Returns
    -------
    SegmentationResult
    """
    from crmlens.i18n import t
    from crmlens.segment.jenks import NaturalBreaks

    run = RunRecord("segment.tiers")
    cols = [feature] if isinstance(feature, str) else list(feature)
    frame, day = load_features(con, as_of)
    cols = cluster_columns(frame, cols)
    if len(cols) != 1:
        raise InputError("error.segment_tiers_one_feature", n=len(cols))
    col = cols[0]
    known = frame[col].notna().to_numpy()
    values = frame.loc[known, col].astype(float).to_numpy()
    if len(np.unique(values)) < 2:
        raise InputError("error.segment_tiers_constant", feature=col)
    table = []
    if n_classes == "auto":
        lo, hi = int(k_range[0]), min(int(k_range[1]), len(np.unique(values)))
        chosen = None
        for k in range(lo, hi + 1):
            model = NaturalBreaks(n_classes=k, sample_size=50_000, random_state=0).fit(values)
            gvf = goodness_of_variance_fit(values, model.labels_)
            table.append({"k": k, "gvf": gvf})
            if chosen is None and gvf >= GVF_TARGET:
                chosen = k
        k = chosen or hi
        reason = {lang: t("segment.tiers.k_reason", lang=lang, k=k, target=GVF_TARGET)
                  for lang in LANGUAGES}
    else:
        k, reason = int(n_classes), None
    model = NaturalBreaks(n_classes=k, sample_size=50_000, random_state=0).fit(values)
    tiers = np.full(len(frame), "none", dtype=object)
    tiers[known] = (model.predict(values) + 1).astype(str)
    labels = pd.DataFrame({"customer_id": frame["customer_id"].astype(str), "segment": tiers})
    breaks = [float(b) for b in model.breaks_]
    notes: dict[str, Any] = {"features": [col], "breaks": breaks}
    if table:
        notes.update({"k_table": table, "chosen_k": k, "k_reason": reason})
    order = [str(i) for i in range(k, 0, -1)] + ["none"]  # top tier first

    def bound(x: float) -> str:
        return f"{x:,.0f}" if max(abs(b) for b in breaks) >= 100 else f"{x:,.2f}"

    # Tier names say what the tier is: its number and its range of the feature.
    names = {str(i): {lang: (t("segment.tiers.name", lang=lang, n=i, low=bound(breaks[i - 1]),
                                 high=bound(breaks[i])), None) for lang in LANGUAGES}
             for i in range(1, k + 1)}
    return _save(con, run=run, name=name, method="natural_breaks", as_of=day,
                 params={"feature": col, "n_classes": n_classes, "k_range": list(k_range)},
                 features=frame, labels=labels, order=order, names=names, notes=notes,
                 explain_columns=[col])
