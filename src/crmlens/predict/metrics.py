"""Scores of a binary probability forecast, and the points of its charts.

All functions take the true 0/1 outcomes and the predicted probabilities of class 1. The
top-decile figures treat ties at the decile boundary fairly: when several rows share the score
at the cut, each of them counts with the fraction of the remaining places (the expected value
under a random order of the tied rows), so a constant forecast has a lift of exactly 1.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from crmlens.errors import InputError

__all__ = [
    "CURVE_KINDS",
    "METRICS",
    "best_f1_threshold",
    "classification_metrics",
    "curve_points",
    "top_share_capture",
]

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "lift_top_decile", "capture_top_decile",
           "accuracy", "precision", "recall", "f1", "positive_rate", "threshold")
CURVE_KINDS = ("roc", "pr", "lift", "calibration")
_EPS = 1e-15


def _inputs(y_true, proba) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int8).ravel()
    p = np.asarray(proba, dtype=np.float64).ravel()
    if len(y) != len(p) or len(y) == 0:
        raise InputError("error.predict_models.bad_scores", n_true=len(y), n_proba=len(p))
    return y, np.clip(p, 0.0, 1.0)


def top_share_capture(y_true, proba, share: float = 0.1) -> float:
    """Share of all positives found among the ``share`` of rows with the highest scores.

    Rows tied with the score at the cut count fractionally (see the module docstring).

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like of float
    share : float, default=0.1
        Share of rows targeted (0.1 = top decile).

    Returns
    -------
    float
        NaN when there is no positive.
    """
    y, p = _inputs(y_true, proba)
    return float(_captures(y, p, np.array([share]))[0])


def _captures(y: np.ndarray, p: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Capture at several top shares, with one sort."""
    positives = y.sum()
    if positives == 0:
        return np.full(len(shares), np.nan)
    order = np.argsort(-p, kind="stable")
    sorted_p, sorted_y = p[order], y[order].astype(np.float64)
    cum_y = np.concatenate([[0.0], np.cumsum(sorted_y)])
    ascending = sorted_p[::-1]
    out = np.empty(len(shares))
    for i, share in enumerate(shares):
        k = float(share) * len(y)  # places to fill (may be fractional)
        cut = sorted_p[min(max(int(math.ceil(k)) - 1, 0), len(p) - 1)]
        n_tied_end = len(p) - int(np.searchsorted(ascending, cut, side="left"))
        n_above = len(p) - int(np.searchsorted(ascending, cut, side="right"))
        n_tied = n_tied_end - n_above
        found = cum_y[n_above]
        if n_tied:
            tied_pos = cum_y[n_above + n_tied] - cum_y[n_above]
            found += tied_pos * min(max(k - n_above, 0.0), n_tied) / n_tied
        out[i] = found / positives
    return out


def best_f1_threshold(y_true, proba) -> float:
    """The probability threshold with the largest F1 score (predict 1 when ``p >= t``).

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like of float

    Returns
    -------
    float
        0.5 when the data hold a single class.
    """
    y, p = _inputs(y_true, proba)
    if y.min() == y.max():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = np.where(precision + recall > 0,
                  2 * precision * recall / np.maximum(precision + recall, _EPS), 0.0)[:-1]
    return float(thresholds[int(np.argmax(f1))])


def classification_metrics(y_true, proba, *, threshold: float = 0.5) -> dict[str, float]:
    """Ranking, probability and decision scores of a forecast.

    Parameters
    ----------
    y_true : array-like of 0/1
        Outcomes.
    proba : array-like of float
        Predicted probabilities of outcome 1.
    threshold : float, default=0.5
        Rows with ``proba >= threshold`` are predicted 1 (choose it on training data, e.g.
        with :func:`best_f1_threshold`).

    Returns
    -------
    dict of str to float
        ``roc_auc``, ``pr_auc`` (average precision), ``log_loss``, ``brier``,
        ``lift_top_decile`` (positive rate in the top 10 % of scores / overall positive
        rate), ``capture_top_decile`` (share of all positives in that top 10 %),
        ``accuracy``, ``precision``, ``recall``, ``f1`` (at the threshold),
        ``positive_rate`` (share of outcome 1) and ``threshold``. Ranking scores are NaN
        when only one class is present.
    """
    y, p = _inputs(y_true, proba)
    both = 0 < y.sum() < len(y)
    predicted = p >= threshold
    tp = float(np.sum(predicted & (y == 1)))
    fp = float(np.sum(predicted & (y == 0)))
    fn = float(np.sum(~predicted & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    capture = float(_captures(y, p, np.array([0.1]))[0])
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)) if both
        else float(np.mean((p - y) ** 2)),
        "lift_top_decile": capture / 0.1 if not math.isnan(capture) else float("nan"),
        "capture_top_decile": capture,
        "accuracy": float(np.mean(predicted == (y == 1))),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "positive_rate": float(y.mean()),
        "threshold": float(threshold),
    }


def _thin(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    if len(frame) <= max_points:
        return frame.reset_index(drop=True)
    keep = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def curve_points(y_true, proba, kind: str, *, max_points: int = 101) -> pd.DataFrame:
    """Points of a chart of the forecast.

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like of float
    kind : {"roc", "pr", "lift", "calibration"}
        ``roc``: x = false positive rate, y = true positive rate. ``pr``: x = recall,
        y = precision. ``lift``: x = share of rows targeted (highest scores first, in
        ``max_points - 1`` equal steps), y = cumulative lift (positive rate among them /
        overall rate), n = rows targeted. ``calibration``: ten equal-width probability bins;
        x = mean predicted probability, y = observed rate, n = rows (empty bins left out).
    max_points : int, default=101
        At most this many points (curves are thinned evenly, keeping both ends).

    Returns
    -------
    DataFrame
        Columns ``x``, ``y`` and, for lift and calibration, ``n``.
    """
    y, p = _inputs(y_true, proba)
    if kind == "roc":
        fpr, tpr, _ = roc_curve(y, p)
        return _thin(pd.DataFrame({"x": fpr, "y": tpr}), max_points)
    if kind == "pr":
        precision, recall, _ = precision_recall_curve(y, p)
        frame = pd.DataFrame({"x": recall[::-1], "y": precision[::-1]})
        return _thin(frame, max_points)
    if kind == "lift":
        steps = max(int(max_points) - 1, 1)
        shares = np.arange(1, steps + 1) / steps
        lifts = _captures(y, p, shares) / shares
        return pd.DataFrame({"x": shares, "y": lifts,
                             "n": np.round(shares * len(y)).astype(np.int64)})
    if kind == "calibration":
        bins = np.minimum((p * 10).astype(int), 9)
        counts = np.bincount(bins, minlength=10)
        mean_p = np.bincount(bins, weights=p, minlength=10)
        rate = np.bincount(bins, weights=y.astype(float), minlength=10)
        seen = counts > 0
        return pd.DataFrame({"x": mean_p[seen] / counts[seen], "y": rate[seen] / counts[seen],
                             "n": counts[seen].astype(np.int64)})
    raise InputError("error.predict_models.bad_curve", kind=kind, allowed=", ".join(CURVE_KINDS))
