"""Baskets for bench/basket.py, saved as CSR arrays in an .npz file.

* :func:`retail_baskets`: the bundled Online Retail sample ingested into a temporary workspace,
  one basket per invoice, one item per product (``crmlens.basket.data.load_baskets``, or the
  same rule in SQL while that module is not there yet).
* :func:`synthetic_baskets`: 1M baskets x 50k items drawn with numpy: Zipf-like item
  popularity, lognormal basket sizes (mean about 10) and a few planted groups of items bought
  together, so that there are long frequent itemsets to find. Cached by its parameters.

An .npz holds ``indptr`` (int64, length n_baskets + 1), ``indices`` (int32, sorted and unique
within each basket), ``n_items`` and, for information, ``source``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# Bump when the synthetic recipe changes, so an old cached file is not reused.
SYNTHETIC_VERSION = 1

# Synthetic recipe (summarised in the RESULTS.md section bench/basket.py writes).
ZIPF_EXPONENT = 1.0        # item popularity p_i ∝ 1 / (rank_i + ZIPF_OFFSET) ** ZIPF_EXPONENT
ZIPF_OFFSET = 50.0         # flattens the head: the top product is in ~2 % of baskets, not 60 %
SIZE_MEDIAN = 7.0          # lognormal basket sizes: median 7, sigma 0.85 -> mean about 10
SIZE_SIGMA = 0.85
N_GROUPS = 40              # planted groups of items bought together
GROUP_SIZES = (2, 7)       # items per group, uniform in [2, 7]
GROUP_RATE = (0.001, 0.006)  # share of baskets that receive a group, log-uniform
GROUP_KEEP = 0.85          # each item of a group lands in a receiving basket with this chance


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "crmlens-bench-basket"


def save(path: Path, indptr: np.ndarray, indices: np.ndarray, n_items: int, source: str) -> Path:
    np.savez(path, indptr=indptr.astype(np.int64), indices=indices.astype(np.int32),
             n_items=np.int64(n_items), source=np.array(source))
    return path


def load(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(indptr, indices, n_items) of a saved basket file."""
    with np.load(path) as z:
        return z["indptr"], z["indices"], int(z["n_items"])


def describe(path: Path) -> dict[str, Any]:
    indptr, indices, n_items = load(path)
    sizes = np.diff(indptr)
    with np.load(path) as z:
        source = str(z["source"])
    return {"n_baskets": len(sizes), "n_items": n_items, "n_pairs": int(len(indices)),
            "mean_size": float(sizes.mean()) if len(sizes) else 0.0,
            "max_size": int(sizes.max()) if len(sizes) else 0,
            "items_used": int(len(np.unique(indices))), "source": source}


# --- Online Retail -----------------------------------------------------------------------------

# Fallback while crmlens.basket.data is not available: the contract's rule (merchandise lines,
# a product is in an invoice when its net quantity there is > 0), in DuckDB.
_BASKETS_SQL = """
WITH net AS (
    SELECT order_id, product_id
    FROM transactions
    WHERE line_type = 'product' AND order_id IS NOT NULL AND product_id IS NOT NULL
    GROUP BY order_id, product_id
    HAVING sum(quantity) > 0
), items AS (
    SELECT product_id, (row_number() OVER (ORDER BY product_id)) - 1 AS code
    FROM (SELECT DISTINCT product_id FROM net)
)
SELECT n.order_id, i.code::INTEGER AS code
FROM net n JOIN items i USING (product_id)
ORDER BY n.order_id, code
"""


def retail_baskets(out: Path, workdir: Path) -> Path:
    """Ingest the bundled Online Retail sample into ``workdir`` and save its invoice baskets."""
    import crmlens
    from crmlens.datasets.sample import sample_path

    ws = crmlens.Workspace(workdir / "retail-workspace")
    ws.ingest("transactions", sample_path())
    import duckdb

    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        try:
            from crmlens.basket.data import load_baskets
        except ImportError:
            load_baskets = None
        if load_baskets is not None:
            b = load_baskets(con, basket="order", item="product")
            return save(out, np.asarray(b.indptr), np.asarray(b.indices), b.n_items,
                        "crmlens.basket.data.load_baskets(basket='order', item='product')")
        orders, codes = con.execute(_BASKETS_SQL).fetchnumpy().values()
        n_items = int(codes.max()) + 1 if len(codes) else 0
    order_arr = np.asarray(orders, dtype=object)
    starts = np.flatnonzero(np.r_[True, order_arr[1:] != order_arr[:-1]]) if len(order_arr) \
        else np.array([], dtype=np.int64)
    indptr = np.r_[starts, len(order_arr)].astype(np.int64)
    return save(out, indptr, np.asarray(codes), n_items,
                "bench SQL on transactions (line_type = 'product', net quantity > 0 per "
                "order and product)")


# --- synthetic ---------------------------------------------------------------------------------


def synthetic_path(n_baskets: int, n_items: int, seed: int, cache_dir: Path) -> Path:
    return cache_dir / f"synthetic-v{SYNTHETIC_VERSION}-{n_baskets}x{n_items}-seed{seed}.npz"


def synthetic_baskets(n_baskets: int, n_items: int, *, seed: int = 0,
                      cache_dir: Path | None = None) -> tuple[Path, float]:
    """The cached synthetic set (generated if missing) and the seconds generation took
    (0 when the cache was used)."""
    import time

    cache_dir = cache_dir or default_cache_dir()
    path = synthetic_path(n_baskets, n_items, seed, cache_dir)
    if path.exists():
        return path, 0.0
    cache_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    indptr, indices = generate_synthetic(n_baskets, n_items, seed=seed)
    tmp = path.with_name(path.stem + ".partial.npz")
    save(tmp, indptr, indices, n_items,
         f"synthetic v{SYNTHETIC_VERSION}: {n_baskets} baskets x {n_items} items, seed {seed}")
    tmp.replace(path)  # atomic: a crash never leaves a truncated cache file behind
    return path, time.perf_counter() - t


def generate_synthetic(n_baskets: int, n_items: int, *, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, indices) of random baskets; see the module docstring for the recipe."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(n_items) + ZIPF_OFFSET) ** ZIPF_EXPONENT
    cdf = np.cumsum(weights / weights.sum())
    # Popularity rank -> item code: shuffled, so codes say nothing about popularity.
    code_of_rank = rng.permutation(n_items).astype(np.int32)

    sizes = np.maximum(1, np.rint(rng.lognormal(np.log(SIZE_MEDIAN), SIZE_SIGMA, n_baskets)))
    sizes = sizes.astype(np.int64)
    rows = [np.repeat(np.arange(n_baskets, dtype=np.int64), sizes)]
    ranks = np.minimum(np.searchsorted(cdf, rng.random(int(sizes.sum()))), n_items - 1)
    cols = [code_of_rank[ranks]]

    # Planted groups: items from the middle of the popularity range (frequent together, not
    # each on its own), given to a random share of baskets, each item kept with GROUP_KEEP.
    lo, hi = min(200, n_items // 4), min(20_000, n_items)
    for _ in range(N_GROUPS):
        k = min(int(rng.integers(GROUP_SIZES[0], GROUP_SIZES[1] + 1)), hi - lo)
        members = code_of_rank[rng.choice(np.arange(lo, hi), size=k, replace=False)]
        rate = float(np.exp(rng.uniform(np.log(GROUP_RATE[0]), np.log(GROUP_RATE[1]))))
        chosen = np.flatnonzero(rng.random(n_baskets) < rate)
        keep = rng.random((len(chosen), k)) < GROUP_KEEP
        rows.append(np.repeat(chosen, k)[keep.ravel()])
        cols.append(np.tile(members, len(chosen))[keep.ravel()])

    keys = np.unique(np.concatenate(rows) * n_items + np.concatenate(cols))  # sorted, deduped
    basket = keys // n_items
    indices = (keys % n_items).astype(np.int32)
    indptr = np.zeros(n_baskets + 1, dtype=np.int64)
    np.cumsum(np.bincount(basket, minlength=n_baskets), out=indptr[1:])
    return indptr, indices
