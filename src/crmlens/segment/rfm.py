"""RFM scoring and the named RFM segments.

Each customer gets a recency score R, a frequency score F and a monetary score M from 1 to
``n_bins`` (5 = best; for recency the most recent customers score highest), the RFM cell
(``"545"``), the frequency-monetary score ``FM = (F + M + 1) // 2`` and a named segment from a
segment map. The map is data (``rfm_map.toml``, or a file of the user's): it is validated when
loaded so that every cell of the R x F x M cube belongs to exactly one segment.

Scoring policy (see ``docs/rfm.md``):

* **quantile** — bins of as equal size as ties allow. A bin edge is always placed *between*
  distinct values, so equal values always share a score. Edges are placed one at a time: each
  next bin takes the share ``remaining / bins left`` of the customers not yet binned, ending at
  the distinct value whose cumulative count is nearest to that target. A value holding many
  customers (60 % with one order) fills one bin and the remaining customers are split evenly
  over the remaining bins, so all ``n_bins`` scores stay in use whenever there are at least
  ``n_bins`` distinct values. With fewer distinct values each value is its own bin and the
  scores are spread over 1..``n_bins`` (two values score 1 and 5; one value scores the middle).
* **fixed** — user cut points per dimension, ``n_bins - 1`` increasing numbers; a value equal
  to a cut point belongs to the lower bin.
* **jenks** — natural breaks (Fisher–Jenks) per dimension; a value equal to a break belongs to
  the lower class.

Monetary values of zero or below (returns cancelled the spend) always score M = 1 and are left
out when the monetary bins are learned, so they do not distort the bins of paying customers.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from crmlens.errors import InputError
from crmlens.i18n import get_language, normalize_lang
from crmlens.segment.jenks import NaturalBreaks

__all__ = [
    "DIMENSIONS", "RFMScorer", "Segment", "SegmentMap", "assign_segments", "fm_score",
    "load_segment_map", "rfm_cell", "rfm_segment", "segment_name", "segment_summary",
]

# Dimension -> column of the customer features table.
DIMENSIONS = {"recency": "recency_days", "frequency": "frequency", "monetary": "monetary"}
METHODS = ("quantile", "fixed", "jenks")
SCORE_COLUMNS = {"recency": "r_score", "frequency": "f_score", "monetary": "m_score"}
MAP_DIMENSIONS = ("r", "f", "m", "fm")
LANGS = ("en", "zh")


# --------------------------------------------------------------------------- scoring

class RFMScorer(TransformerMixin, BaseEstimator):
    """Score customers on recency, frequency and monetary value, 1 (worst) to ``n_bins`` (best).

    Parameters
    ----------
    method : {"quantile", "fixed", "jenks"}, default="quantile"
        How bin edges are learned for dimensions without ``cut_points``: tie-aware quantiles,
        user cut points (then ``cut_points`` must name all three dimensions), or natural
        breaks.
    n_bins : int, default=5
        Number of score levels, 2 to 9.
    cut_points : dict or None, default=None
        ``{"recency": [...], "frequency": [...], "monetary": [...]}``, each ``n_bins - 1``
        strictly increasing numbers; a value equal to a cut point goes to the lower bin
        (for recency, in days: the lowest bin is the most recent and scores ``n_bins``).
        Named dimensions use these cut points whatever ``method`` is.
    jenks_sample_size : int or None, default=50000
        With ``method="jenks"``, a dimension with more distinct values than this gets its
        breaks from a random sample of that many customers (see :class:`NaturalBreaks`).
    random_state : int or None, default=0
        Seed of that sample.

    Attributes
    ----------
    edges_ : dict of str to ndarray
        Inner bin edges per dimension (upper-inclusive), in the dimension's own unit.
    bin_scores_ : dict of str to ndarray
        Score of each bin per dimension (one more entry than ``edges_``).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"recency_days": [1, 50, 300], "frequency": [9, 2, 1],
    ...                   "monetary": [900.0, 80.0, -5.0]})
    >>> RFMScorer(n_bins=3).fit_transform(X)["r_score"].tolist()
    [3, 2, 1]
    """

    def __init__(self, *, method: str = "quantile", n_bins: int = 5,
                 cut_points: Mapping[str, Sequence[float]] | None = None,
                 jenks_sample_size: int | None = 50_000, random_state: int | None = 0) -> None:
        self.method = method
        self.n_bins = n_bins
        self.cut_points = cut_points
        self.jenks_sample_size = jenks_sample_size
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y=None) -> RFMScorer:
        """Learn the bin edges of each dimension.

        Parameters
        ----------
        X : DataFrame
            Customer features with columns ``recency_days``, ``frequency`` and ``monetary``.
        y : ignored
            Present for API consistency.

        Returns
        -------
        self : RFMScorer
            The fitted scorer.
        """
        if self.method not in METHODS:
            raise InputError("error.rfm_method", value=self.method)
        n_bins = _check_n_bins(self.n_bins)
        cut_points = _check_cut_points(self.cut_points, n_bins, self.method)
        values = _feature_values(X)
        if len(X) == 0:
            raise InputError("error.rfm_no_rows")
        self.edges_, self.bin_scores_ = {}, {}
        for dim, x in values.items():
            if dim == "monetary":
                x = x[x > 0]
            if dim in cut_points:
                edges = cut_points[dim]
                scores = np.arange(1, n_bins + 1)
            elif x.size == 0:
                edges, scores = np.empty(0), np.array([1])
            else:
                edges = (_jenks_edges(x, n_bins, self.jenks_sample_size, self.random_state)
                         if self.method == "jenks" else _quantile_edges(x, n_bins))
                scores = _spread_scores(len(edges) + 1, n_bins)
            if dim == "recency":
                scores = n_bins + 1 - scores  # fewer days since the last order is better
            self.edges_[dim] = np.asarray(edges, dtype=np.float64)
            self.bin_scores_[dim] = np.asarray(scores, dtype=np.int64)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """R, F and M scores of each customer.

        Parameters
        ----------
        X : DataFrame
            Customer features with columns ``recency_days``, ``frequency`` and ``monetary``.

        Returns
        -------
        DataFrame
            Columns ``r_score``, ``f_score``, ``m_score`` (integers 1..``n_bins``), on the
            index of ``X``.
        """
        check_is_fitted(self, "edges_")
        out = {}
        for dim, x in _feature_values(X).items():
            bins = np.searchsorted(self.edges_[dim], x, side="left")
            scores = self.bin_scores_[dim][bins]
            if dim == "monetary":
                scores = np.where(x > 0, scores, 1)
            out[SCORE_COLUMNS[dim]] = scores.astype(np.int64)
        return pd.DataFrame(out, index=X.index)


def fm_score(f_score, m_score):
    """Frequency-monetary score: the mean of F and M, halves rounded up.

    Parameters
    ----------
    f_score, m_score : int or array-like of int
        Frequency and monetary scores.

    Returns
    -------
    int or ndarray
        ``(f_score + m_score + 1) // 2``.
    """
    return (np.asarray(f_score) + np.asarray(m_score) + 1) // 2


def rfm_cell(scores: pd.DataFrame) -> pd.Series:
    """The RFM cell of each customer, e.g. ``"545"`` for R=5, F=4, M=5.

    Parameters
    ----------
    scores : DataFrame
        Columns ``r_score``, ``f_score``, ``m_score`` (single digits).

    Returns
    -------
    Series of str
        On the index of ``scores``.
    """
    return (scores["r_score"].astype(str) + scores["f_score"].astype(str)
            + scores["m_score"].astype(str)).rename("rfm_cell")


def _check_n_bins(n_bins) -> int:
    # Up to 9 so that the RFM cell stays one digit per score.
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) \
            or not 2 <= n_bins <= 9:
        raise InputError("error.rfm_n_bins", value=n_bins)
    return int(n_bins)


def _check_cut_points(cut_points, n_bins: int, method: str) -> dict[str, np.ndarray]:
    cut_points = dict(cut_points or {})
    for dim in cut_points:
        if dim not in DIMENSIONS:
            raise InputError("error.rfm_cut_points_unknown", dimension=dim)
    if method == "fixed":
        for dim in DIMENSIONS:
            if dim not in cut_points:
                raise InputError("error.rfm_cut_points_missing", dimension=dim)
    checked = {}
    for dim, points in cut_points.items():
        try:
            arr = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.empty(0)
        if arr.shape != (n_bins - 1,) or not np.all(np.isfinite(arr)) \
                or not np.all(np.diff(arr) > 0):
            raise InputError("error.rfm_cut_points_invalid", dimension=dim,
                             expected=n_bins - 1, value=points)
        checked[dim] = arr
    return checked


def _feature_values(X) -> dict[str, np.ndarray]:
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
    missing = [col for col in DIMENSIONS.values() if col not in X.columns]
    if missing:
        raise InputError("error.rfm_missing_columns", columns=", ".join(missing))
    values = {}
    for dim, col in DIMENSIONS.items():
        x = pd.to_numeric(X[col], errors="coerce").astype("float64").to_numpy()
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise InputError("error.rfm_bad_values", column=col, count=bad)
        values[dim] = x
    return values


def _quantile_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Upper-inclusive edges between distinct values, bins as equal as the ties allow."""
    distinct, counts = np.unique(x, return_counts=True)
    d = len(distinct)
    if d <= n_bins:
        return distinct[:-1]
    cum = np.cumsum(counts)
    total = int(cum[-1])
    chosen, first, taken = [], 0, 0
    for left in range(n_bins, 1, -1):  # bins still to fill, this one included
        target = taken + (total - taken) / left
        hi = int(np.searchsorted(cum, target, side="left"))
        hi = min(max(hi, first), d - left)  # non-empty, and a value left for each later bin
        pick = hi
        if hi - 1 >= first and target - cum[hi - 1] < cum[hi] - target:
            pick = hi - 1  # the smaller bin is nearer the target
        chosen.append(pick)
        taken, first = int(cum[pick]), pick + 1
    return distinct[chosen]


def _jenks_edges(x: np.ndarray, n_bins: int, sample_size, random_state) -> np.ndarray:
    n_classes = min(n_bins, len(np.unique(x)))
    if n_classes < 2:
        return np.empty(0)
    model = NaturalBreaks(n_classes=n_classes, sample_size=sample_size,
                          random_state=random_state).fit(x)
    return np.asarray(model.breaks_[1:-1])


def _spread_scores(n_groups: int, n_bins: int) -> np.ndarray:
    """Scores of ``n_groups`` ordered bins spread evenly over 1..n_bins (ends kept)."""
    if n_groups >= n_bins:
        return np.arange(1, n_bins + 1)
    if n_groups == 1:
        return np.array([(n_bins + 1) // 2])
    i = np.arange(n_groups)
    span = n_groups - 1
    return 1 + (2 * i * (n_bins - 1) + span) // (2 * span)  # round half up, in integers


# --------------------------------------------------------------------------- segment map

@dataclass(frozen=True)
class Segment:
    """One named segment of an RFM segment map.

    Parameters
    ----------
    id : str
        Stable identifier (stored in the workspace).
    name, action, description : dict of str to str
        Texts by language (``en``, ``zh``); description may be empty.
    rules : tuple of dict
        Each rule maps a score (``r``, ``f``, ``m``, ``fm``) to an inclusive range.
    """

    id: str
    name: dict
    action: dict
    description: dict
    rules: tuple


@dataclass(frozen=True)
class SegmentMap:
    """A validated RFM segment map: segments in display order plus a cell lookup table.

    Parameters
    ----------
    path : str
        The file it was read from (named in messages).
    n_bins : int
        Score levels it is written for.
    segments : tuple of Segment
        In display order.
    table : ndarray of shape (n_bins, n_bins, n_bins)
        Segment position of each (R, F, M) cell, zero-based scores.
    """

    path: str
    n_bins: int
    segments: tuple
    table: np.ndarray = field(repr=False, compare=False)

    @property
    def ids(self) -> list[str]:
        """Segment ids in display order."""
        return [s.id for s in self.segments]

    def segment(self, segment_id: str) -> Segment:
        """The segment with this id; InputError if the map has none."""
        for seg in self.segments:
            if seg.id == segment_id:
                return seg
        raise InputError("error.rfm_unknown_segment", segment=segment_id, path=self.path)

    def name(self, segment_id: str, lang: str | None = None) -> str:
        """Display name of a segment in ``lang`` (default: the current language)."""
        return _text(self.segment(segment_id).name, lang)

    def action(self, segment_id: str, lang: str | None = None) -> str:
        """Recommended action for a segment in ``lang``."""
        return _text(self.segment(segment_id).action, lang)

    def description(self, segment_id: str, lang: str | None = None) -> str:
        """One-line description of a segment in ``lang`` (may be empty)."""
        return _text(self.segment(segment_id).description, lang)


def _text(texts: dict, lang: str | None) -> str:
    lang = normalize_lang(lang) if lang else get_language()
    return texts.get(lang) or texts.get("en", "")


def load_segment_map(path: str | Path | None = None) -> SegmentMap:
    """Read and validate an RFM segment map.

    Parameters
    ----------
    path : str, Path or None, default=None
        A TOML file in the format of the built-in ``rfm_map.toml``; ``None`` loads the
        built-in 11-segment map.

    Returns
    -------
    SegmentMap
        Segments in file order and the lookup table of every (R, F, M) cell.

    Raises
    ------
    InputError
        If the file cannot be read, a field is missing, a range lies outside 1..n_bins, or a
        cell of the score cube has no segment or more than one (the message names the cell).
    """
    if path is None:
        return _builtin_map()
    return _read_map(Path(path), str(path))


@lru_cache(maxsize=1)
def _builtin_map() -> SegmentMap:
    source = resources.files("crmlens.segment") / "rfm_map.toml"
    return _read_map(source, str(source))


def _read_map(source, shown: str) -> SegmentMap:
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError("error.rfm_map_unreadable", path=shown, detail=str(exc)) from None
    n_bins = data.get("n_bins", 5)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or not 2 <= n_bins <= 9:
        raise InputError("error.rfm_map_field", path=shown, segment="-", field="n_bins")
    raw = data.get("segment")
    if not isinstance(raw, list) or not raw:
        raise InputError("error.rfm_map_field", path=shown, segment="-", field="segment")
    segments = tuple(_parse_segment(item, n, shown, n_bins) for n, item in enumerate(raw, 1))
    seen = set()
    for seg in segments:
        if seg.id in seen:
            raise InputError("error.rfm_map_duplicate_id", path=shown, segment=seg.id)
        seen.add(seg.id)
    return SegmentMap(shown, n_bins, segments, _cell_table(segments, n_bins, shown))


def _parse_segment(item, position: int, path: str, n_bins: int) -> Segment:
    label = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) \
        else f"#{position}"

    def need(ok: bool, name: str) -> None:
        if not ok:
            raise InputError("error.rfm_map_field", path=path, segment=label, field=name)

    need(isinstance(item, dict), "segment")
    need(isinstance(item.get("id"), str) and item["id"].strip() != "", "id")
    texts = {}
    for key in ("name", "action", "description"):
        value = item.get(key, {} if key == "description" else None)
        need(isinstance(value, dict), key)
        if key != "description":
            for lang in LANGS:
                need(isinstance(value.get(lang), str) and value[lang].strip() != "",
                     f"{key}.{lang}")
        texts[key] = dict(value)
    rules = item.get("rules")
    need(isinstance(rules, list) and len(rules) > 0 and all(isinstance(r, dict) for r in rules),
         "rules")
    for rule in rules:
        for dim, bounds in rule.items():
            if dim not in MAP_DIMENSIONS:
                raise InputError("error.rfm_map_dimension", path=path, segment=label,
                                 dimension=dim)
            need(isinstance(bounds, list) and len(bounds) == 2
                 and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds),
                 f"rules.{dim}")
            low, high = bounds
            if not 1 <= low <= high <= n_bins:
                raise InputError("error.rfm_map_range", path=path, segment=label,
                                 dimension=dim, low=low, high=high, n_bins=n_bins)
    return Segment(item["id"], texts["name"], texts["action"], texts["description"],
                   tuple(dict(r) for r in rules))


def _cell_table(segments: tuple, n_bins: int, path: str) -> np.ndarray:
    r, f, m = np.meshgrid(*(np.arange(1, n_bins + 1),) * 3, indexing="ij")
    grid = {"r": r, "f": f, "m": m, "fm": fm_score(f, m)}
    owner = np.full(r.shape, -1, dtype=np.int64)
    for pos, seg in enumerate(segments):
        covered = np.zeros(r.shape, dtype=bool)
        for rule in seg.rules:
            hit = np.ones(r.shape, dtype=bool)
            for dim, (low, high) in rule.items():
                hit &= (grid[dim] >= low) & (grid[dim] <= high)
            covered |= hit
        clash = covered & (owner >= 0)
        if clash.any():
            cell = tuple(int(v[0]) for v in np.nonzero(clash))
            raise InputError("error.rfm_map_overlap", path=path, cell=_cell_label(cell),
                             first=segments[owner[cell]].id, second=seg.id)
        owner[covered] = pos
    if (owner < 0).any():
        cell = tuple(int(v[0]) for v in np.nonzero(owner < 0))
        raise InputError("error.rfm_map_gap", path=path, cell=_cell_label(cell))
    return owner


def _cell_label(cell: tuple) -> str:
    r, f, m = (c + 1 for c in cell)
    return f"R={r} F={f} M={m} (FM={int(fm_score(f, m))})"


# --------------------------------------------------------------------------- segments

def assign_segments(scores: pd.DataFrame, segment_map: SegmentMap) -> pd.Series:
    """The segment id of each customer, from its R, F and M scores.

    Parameters
    ----------
    scores : DataFrame
        Columns ``r_score``, ``f_score``, ``m_score`` with integers 1..``segment_map.n_bins``.
    segment_map : SegmentMap
        From :func:`load_segment_map`.

    Returns
    -------
    Series of str
        Segment ids, on the index of ``scores``.
    """
    idx = []
    for col in ("r_score", "f_score", "m_score"):
        values = pd.to_numeric(scores[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isin(values, np.arange(1, segment_map.n_bins + 1))
        if bad.any():
            raise InputError("error.rfm_scores_range", n_bins=segment_map.n_bins,
                             path=segment_map.path, column=col, value=values[bad][0])
        idx.append(values.astype(np.int64) - 1)
    positions = segment_map.table[idx[0], idx[1], idx[2]]
    ids = np.asarray(segment_map.ids, dtype=object)[positions]
    return pd.Series(ids, index=scores.index, name="segment", dtype=object)


def rfm_segment(features: pd.DataFrame, *, method: str = "quantile", n_bins: int = 5,
                segment_map: SegmentMap | str | Path | None = None,
                cut_points: Mapping[str, Sequence[float]] | None = None,
                jenks_sample_size: int | None = 50_000) -> pd.DataFrame:
    """Score customers and put each into a named RFM segment, in one call.

    Parameters
    ----------
    features : DataFrame
        One row per customer: ``customer_id``, ``recency_days``, ``frequency``, ``monetary``.
    method : {"quantile", "fixed", "jenks"}, default="quantile"
        Scoring method (see :class:`RFMScorer`).
    n_bins : int, default=5
        Score levels; must match the segment map.
    segment_map : SegmentMap, path or None, default=None
        The map to use; ``None`` is the built-in 11-segment map.
    cut_points : dict or None, default=None
        Fixed cut points per dimension (see :class:`RFMScorer`).
    jenks_sample_size : int or None, default=50000
        Sample bound for natural breaks (see :class:`RFMScorer`).

    Returns
    -------
    DataFrame
        ``customer_id``, ``r_score``, ``f_score``, ``m_score``, ``fm_score``, ``rfm_cell``,
        ``segment`` (segment id), in the order of ``features``.
    """
    if not isinstance(segment_map, SegmentMap):
        segment_map = load_segment_map(segment_map)
    if "customer_id" not in features.columns:
        raise InputError("error.rfm_missing_columns", columns="customer_id")
    n_bins = _check_n_bins(n_bins)
    if n_bins != segment_map.n_bins:
        raise InputError("error.rfm_map_bins_mismatch", path=segment_map.path,
                         map_bins=segment_map.n_bins, n_bins=n_bins)
    scorer = RFMScorer(method=method, n_bins=n_bins, cut_points=cut_points,
                       jenks_sample_size=jenks_sample_size)
    scores = scorer.fit_transform(features)
    out = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()}, index=features.index)
    out = pd.concat([out, scores], axis=1)
    out["fm_score"] = fm_score(out["f_score"], out["m_score"]).astype(np.int64)
    out["rfm_cell"] = rfm_cell(out)
    out["segment"] = assign_segments(out, segment_map)
    return out.reset_index(drop=True)


def segment_summary(result: pd.DataFrame, segment_map: SegmentMap | None = None, *,
                    lang: str | None = None) -> pd.DataFrame:
    """Size of each segment, in map order (empty segments included).

    Parameters
    ----------
    result : DataFrame
        Output of :func:`rfm_segment` (a ``segment`` column).
    segment_map : SegmentMap or None, default=None
        The map used; ``None`` is the built-in map.
    lang : str or None, default=None
        Language of the names and actions (default: the current language).

    Returns
    -------
    DataFrame
        ``segment``, ``name``, ``action``, ``count``, ``share`` (0..1).
    """
    segment_map = segment_map or load_segment_map()
    counts = result["segment"].value_counts()
    total = max(int(counts.sum()), 1)
    rows = [{"segment": sid, "name": segment_map.name(sid, lang),
             "action": segment_map.action(sid, lang), "count": int(counts.get(sid, 0)),
             "share": counts.get(sid, 0) / total} for sid in segment_map.ids]
    return pd.DataFrame(rows, columns=["segment", "name", "action", "count", "share"])


def segment_name(segment_id: str, *, lang: str | None = None,
                 segment_map: SegmentMap | None = None) -> str:
    """Display name of an RFM segment.

    Parameters
    ----------
    segment_id : str
        E.g. ``"champions"``.
    lang : str or None, default=None
        ``en`` or ``zh`` (default: the current language).
    segment_map : SegmentMap or None, default=None
        The map; ``None`` is the built-in map.

    Returns
    -------
    str
        E.g. ``"Champions"`` or ``"冠军客户"``.
    """
    return (segment_map or load_segment_map()).name(segment_id, lang)
