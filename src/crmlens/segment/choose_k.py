"""Automatic choice of the number of clusters, with every metric tabulated and a stated rule.

For each k in a range, :func:`choose_k` fits the clustering on a *scan sample* (at most
``scan_size`` rows, default 100,000) and measures

- silhouette, on a sample stratified by the k's labels (at most ``silhouette_size`` rows): the
  full O(n²) distance matrix is never formed;
- Calinski–Harabasz and Davies–Bouldin on the whole scan sample (both O(n k));
- BIC, for Gaussian mixtures;
- stability: ``n_bootstrap`` more fits on bootstrap resamples (at most ``stability_size`` rows
  each) predict a common evaluation set; stability is the mean adjusted Rand index over all
  pairs of these labelings and the main fit's.

The rule (``RULE``): among the k whose stability is at least ``stability_threshold`` (0.8),
take the best silhouette; k within ``tolerance`` (0.005, about 1.5 standard errors of a
5,000-row silhouette) of that silhouette count as ties, broken by the higher stability and
then by the smaller k. If no k is that stable, take the most stable k and say so.
Why: silhouette measures how well separated the segments are; stability rules out k that
split or merge real groups arbitrarily (such choices move between resamples); and among
equally good choices fewer segments are easier to understand and to act on. Calinski–Harabasz,
Davies–Bouldin and BIC are reported for the analyst but do not decide: CH grows with k on
large samples, and BIC keeps adding components whenever data are not exactly Gaussian.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from threadpoolctl import threadpool_limits

from crmlens.i18n import t

__all__ = ["RULE", "KChoice", "choose_k", "k_choice_figure", "stratified_sample"]

log = logging.getLogger(__name__)

RULE = ("among k with bootstrap stability >= threshold, the highest silhouette; silhouette ties "
        "(within tolerance) -> the most stable, then the smaller k; if no k is stable enough, "
        "the most stable k")
STABILITY_TIE = 0.01  # stability differences below this are ties
METRICS = ("silhouette", "calinski_harabasz", "davies_bouldin", "bic", "stability")

# fit(X, k, seed) -> a fitted model with predict(X) (and bic(X) for mixtures)
FitFunction = Callable[[np.ndarray, int, int], Any]


@dataclass
class KChoice:
    """Result of :func:`choose_k`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per k: ``k``, ``silhouette``, ``calinski_harabasz``, ``davies_bouldin``,
        ``bic`` (NaN unless the model has one), ``stability``, ``smallest_cluster_share``.
    k : int
        The chosen number of clusters.
    reason_key : str
        i18n key of the reason; ``reason_params`` fill it.
    reason_params : dict
        Parameters of the reason text.
    settings : dict
        What was done: sample sizes, resamples, threshold, tolerance, the rule.
    models : dict
        The model fitted on the scan sample for each k (the final fit can start from it).
    """

    table: pd.DataFrame
    k: int
    reason_key: str
    reason_params: dict
    settings: dict
    models: dict = field(default_factory=dict, repr=False)

    def reason(self, lang: str = "en") -> str:
        """The reason for the choice, in ``lang``.

        Parameters
        ----------
        lang : str, default "en"

        Returns
        -------
        str
        """
        return t(self.reason_key, lang=lang, **self.reason_params)


def stratified_sample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a sample of about ``size`` rows, proportional per label.

    Every label keeps at least two rows (when it has them), so each cluster can be measured.

    Parameters
    ----------
    labels : numpy.ndarray
        Label of each row.
    size : int
        Target sample size.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    numpy.ndarray of int
        Sorted row indices.
    """
    n = len(labels)
    if n <= size:
        return np.arange(n)
    out = []
    for lab in np.unique(labels):
        rows = np.flatnonzero(labels == lab)
        take = min(len(rows), max(2, round(size * len(rows) / n)))
        out.append(rng.choice(rows, take, replace=False))
    return np.sort(np.concatenate(out))


SMALL_ROWS = 200_000  # up to this, one thread per fit: measured faster on a shared machine


def small_data_threads(n_rows: int):
    """Context limiting OpenMP and BLAS to one thread for fits on up to ``SMALL_ROWS`` rows.

    Busy-waiting worker threads make many short fits several times slower when the cores are
    shared (k-means scan over k = 2..12 on 100,000 rows: 52 s with two threads on a loaded
    2-core machine, 9 s with one).
    """
    return threadpool_limits(1) if n_rows <= SMALL_ROWS else nullcontext()


def _kmeans_fit(X: np.ndarray, k: int, seed: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=2, random_state=seed).fit(X)


def _mean_pairwise_ari(labelings: list[np.ndarray]) -> float:
    return float(np.mean([adjusted_rand_score(a, b)
                          for a, b in itertools.combinations(labelings, 2)]))


def choose_k(X: np.ndarray, *, fit: FitFunction | None = None, k_range: tuple[int, int] = (2, 12),
             random_state: int | None = None, scan_size: int = 100_000,
             silhouette_size: int = 5_000, n_bootstrap: int = 3, stability_size: int = 20_000,
             stability_threshold: float = 0.8, tolerance: float = 0.005,
             embed: Callable[[np.ndarray], np.ndarray] | None = None) -> KChoice:
    """Evaluate every k in ``k_range`` and pick one by the stated rule (see ``RULE``).

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        Preprocessed features (the space the clustering works in).
    fit : callable, optional
        ``fit(X, k, seed)`` returning a fitted model with ``predict``; default k-means
        (scikit-learn, ``n_init=2``).
    k_range : (int, int), default (2, 12)
        Smallest and largest k, inclusive.
    random_state : int, optional
        Seed of the samples and the fits.
    scan_size : int, default 100_000
        Rows of the scan sample every k is fitted on.
    silhouette_size : int, default 5_000
        Rows of the stratified sample the silhouette is computed on.
    n_bootstrap : int, default 3
        Extra fits on bootstrap resamples, per k, for stability.
    stability_size : int, default 20_000
        Rows of each resample and of the evaluation set.
    stability_threshold : float, default 0.8
        Stability a k needs to be eligible.
    tolerance : float, default 0.005
        Silhouette difference treated as a tie.
    embed : callable, optional
        Maps rows of ``X`` to the Euclidean space the silhouette, Calinski–Harabasz and
        Davies–Bouldin are computed in (k-prototypes: one-hot categoricals scaled so that
        squared distances equal its cost); by default ``X`` itself.

    Returns
    -------
    KChoice
    """
    fit = fit or _kmeans_fit
    X = np.asarray(X, dtype=float)
    lo, hi = int(k_range[0]), int(k_range[1])
    if lo < 2 or hi < lo:
        raise ValueError(f"k_range must satisfy 2 <= low <= high, got {k_range}")
    rng = np.random.default_rng(random_state)
    n = len(X)
    hi = min(hi, n - 1)
    if hi < lo:
        raise ValueError(f"{n} samples are too few for k_range {k_range}")
    scan = X if n <= scan_size else X[np.sort(rng.choice(n, scan_size, replace=False))]
    m = min(stability_size, len(scan))
    eval_rows = scan[rng.choice(len(scan), m, replace=False)] if m < len(scan) else scan
    space = embed(scan) if embed is not None else scan
    rows, models = [], {}
    with small_data_threads(len(scan)):
        for k in range(lo, hi + 1):
            rows.append(_evaluate_k(k, scan, space, eval_rows, fit, models, rng,
                                    silhouette_size, n_bootstrap, m))
    table = pd.DataFrame(rows)
    k, key, params = _apply_rule(table, stability_threshold, tolerance)
    settings = {"scan_size": len(scan), "n_rows": n, "silhouette_size": silhouette_size,
                "n_bootstrap": n_bootstrap, "stability_size": m,
                "stability_threshold": stability_threshold, "tolerance": tolerance,
                "rule": RULE}
    return KChoice(table=table, k=k, reason_key=key, reason_params=params, settings=settings,
                   models=models)


def _evaluate_k(k, scan, space, eval_rows, fit, models, rng, silhouette_size, n_bootstrap,
                m) -> dict:
    """Fit one k on the scan sample and measure every metric of its row."""
    seed = int(rng.integers(2**31 - 1))
    model = fit(scan, k, seed)
    labels = np.asarray(model.predict(scan))
    models[k] = model
    row: dict[str, float] = {"k": k}
    n_lab = len(np.unique(labels))
    if n_lab >= 2:
        sil_rows = stratified_sample(labels, silhouette_size, rng)
        row["silhouette"] = float(silhouette_score(space[sil_rows], labels[sil_rows]))
        row["calinski_harabasz"] = float(calinski_harabasz_score(space, labels))
        row["davies_bouldin"] = float(davies_bouldin_score(space, labels))
    else:
        row.update(silhouette=np.nan, calinski_harabasz=np.nan, davies_bouldin=np.nan)
    row["bic"] = float(model.bic(scan)) if hasattr(model, "bic") else np.nan
    labelings = [np.asarray(model.predict(eval_rows))]
    for _ in range(int(n_bootstrap)):
        boot = scan[rng.integers(0, len(scan), m)]
        labelings.append(np.asarray(fit(boot, k, int(rng.integers(2**31 - 1)))
                                    .predict(eval_rows)))
    row["stability"] = _mean_pairwise_ari(labelings) if len(labelings) > 1 else np.nan
    row["smallest_cluster_share"] = float(np.bincount(labels - labels.min()).min()
                                          / len(labels)) if n_lab else np.nan
    log.debug("k=%d %s", k, row)
    return row


def _apply_rule(table: pd.DataFrame, threshold: float,
                tolerance: float) -> tuple[int, str, dict]:
    stable = table[(table["stability"] >= threshold) & table["silhouette"].notna()]
    if len(stable):
        best = stable["silhouette"].max()
        tied = stable[stable["silhouette"] >= best - tolerance]
        # Silhouette ties go to the most stable k, remaining ties to the smallest.
        tied = tied[tied["stability"] >= tied["stability"].max() - STABILITY_TIE]
        k = int(tied["k"].min())
        row = table.loc[table["k"] == k].iloc[0]
        return k, "segment.cluster.k_reason.stable_best_silhouette", {
            "k": k, "silhouette": float(row["silhouette"]), "stability": float(row["stability"]),
            "threshold": threshold, "tolerance": tolerance}
    stab = table["stability"].fillna(-1.0)
    k = int(table.loc[stab.idxmax(), "k"])
    return k, "segment.cluster.k_reason.none_stable", {
        "k": k, "threshold": threshold, "stability": float(stab.max())}


def k_choice_figure(choice: KChoice, *, lang: str = "en"):
    """Metrics against k, one panel per metric, the chosen k marked.

    Parameters
    ----------
    choice : KChoice
        Result of :func:`choose_k`.
    lang : str, default "en"
        Language of titles and labels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = [m for m in METRICS if choice.table[m].notna().any()]
    titles = [t(f"segment.cluster.metric.{m}", lang=lang) for m in metrics]
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, subplot_titles=titles,
                        vertical_spacing=0.06)
    for i, m in enumerate(metrics, start=1):
        fig.add_trace(go.Scatter(x=choice.table["k"], y=choice.table[m], mode="lines+markers",
                                 name=titles[i - 1], showlegend=False), row=i, col=1)
        chosen = choice.table.loc[choice.table["k"] == choice.k, m]
        fig.add_trace(go.Scatter(x=[choice.k], y=chosen, mode="markers",
                                 marker={"size": 12, "symbol": "star", "color": "crimson"},
                                 name=t("segment.cluster.chart.chosen", lang=lang, k=choice.k),
                                 showlegend=i == 1), row=i, col=1)
        fig.add_vline(x=choice.k, line_dash="dot", line_color="crimson", row=i, col=1)
    fig.update_xaxes(title_text=t("segment.cluster.chart.k", lang=lang), row=len(metrics), col=1,
                     dtick=1)
    fig.update_layout(title=t("segment.cluster.chart.title", lang=lang),
                      height=220 * len(metrics) + 80)
    return fig
