"""`--k auto` k-means on planted data: seconds, peak memory, chosen k and recovery.

Called by ``bench/segment.py`` in a subprocess (so ``peak_rss_mib`` is this measurement's own
peak); run directly for one figure: ``python bench/_kauto.py 1000000``.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from crmlens.segment.clustering import Segmenter

PLANTED_K = 6
N_FEATURES = 8
_LOG_NORMAL = ("monetary", "frequency", "avg_order_value")  # exp of a Gaussian: money-like


def planted_customers(n_customers: int, *, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Gaussian clusters in 8 features; three of them exponentiated so they look like money.

    Centres are drawn in [-5, 5]^8 with a minimum distance of 6 between them (unit spread per
    feature), cluster shares between 8 % and 28 %.
    """
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    while len(centres) < PLANTED_K:
        c = rng.uniform(-5, 5, N_FEATURES)
        if all(np.linalg.norm(c - o) >= 6.0 for o in centres):
            centres.append(c)
    shares = np.array([0.28, 0.22, 0.18, 0.14, 0.10, 0.08])
    truth = rng.choice(PLANTED_K, n_customers, p=shares)
    X = np.asarray(centres)[truth] + rng.standard_normal((n_customers, N_FEATURES))
    names = list(_LOG_NORMAL) + [f"f{i}" for i in range(N_FEATURES - len(_LOG_NORMAL))]
    df = pd.DataFrame(X, columns=names)
    for c in _LOG_NORMAL:  # log1p(expm1(x)) recovers x once the preprocessor logs them back
        df[c] = np.expm1(df[c] * 0.5 + 4.0)
    df.insert(0, "customer_id", np.arange(n_customers))
    return df, truth


def measure_kauto(n_customers: int, *, seed: int = 0) -> dict:
    """Time the automatic choice of k (k = 2..12, stability included) plus the final fit.

    Parameters
    ----------
    n_customers : int
        Rows of planted data.
    seed : int, default 0
        Seed of the data and of the clustering.

    Returns
    -------
    dict
        ``seconds`` (preprocessing + k scan + final fit on all rows), ``peak_rss_mib``,
        ``chosen_k``, ``planted_k``, ``ari_vs_planted``, ``table`` (one dict per k),
        ``sklearn_kmeans_k8_seconds`` (plain ``KMeans(8)`` on the same 8 features), and
        ``settings`` (what the automatic choice did).
    """
    df, truth = planted_customers(n_customers, seed=seed)
    start = time.perf_counter()
    seg = Segmenter(method="kmeans", n_clusters="auto", k_range=(2, 12),
                    random_state=seed).fit(df)
    seconds = time.perf_counter() - start
    Z = seg.preprocessor_.transform(df)
    start = time.perf_counter()
    KMeans(n_clusters=8, random_state=seed).fit(Z)
    kmeans_seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "chosen_k": int(seg.n_clusters_),
        "planted_k": PLANTED_K,
        "ari_vs_planted": round(float(adjusted_rand_score(truth, seg.labels_)), 4),
        # NaN (no BIC for k-means) becomes None, so the result is valid JSON.
        "table": [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                  for r in seg.k_choice_.table.round(4).to_dict(orient="records")],
        "sklearn_kmeans_k8_seconds": round(kmeans_seconds, 3),
        "settings": seg.k_choice_.settings,
        "reason": seg.k_choice_.reason("en"),
    }


if __name__ == "__main__":
    print(json.dumps(measure_kauto(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000),
                     indent=2))
