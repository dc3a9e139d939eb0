"""Item x item weights from co-occurrence, kept sparse: top-M neighbours per item.

The co-occurrence counts ``X.T @ X`` are computed one block of items at a time (a block's
rows are dense for a moment, ``block x n_items``), so memory stays bounded even for 10k+ items;
each item keeps only its ``neighbours`` strongest partners (argpartition per row).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

# Items per block of the co-occurrence product: 512 x 10k float32 = 20 MB.
ITEM_BLOCK = 512


def top_neighbours(matrix: sp.csr_matrix, weigh: Callable[[np.ndarray, np.ndarray, np.ndarray],
                                                           np.ndarray], *,
                   neighbours: int, min_count: int) -> sp.csr_matrix:
    """Sparse ``n_items x n_items`` weights from the co-occurrences of ``matrix``'s columns.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Binary ``rows x n_items`` (customers or orders).
    weigh : callable
        ``weigh(co, rows, counts)``: weights of the dense co-occurrence block ``co``
        (``len(rows) x n_items``) given the block's item codes ``rows`` and every item's count.
    neighbours : int
        Kept per item (row), strongest first; ties broken by item code.
    min_count : int
        Pairs seen together fewer times are dropped.

    Returns
    -------
    scipy.sparse.csr_matrix
        Row ``i`` holds item ``i``'s neighbours ``j`` (never ``i`` itself) with weight > 0.
    """
    n_items = matrix.shape[1]
    binary = matrix.copy()
    binary.data[:] = 1.0
    csc = binary.tocsc()
    counts = np.asarray(binary.sum(axis=0)).ravel()
    rows_out, cols_out, vals_out = [], [], []
    for lo in range(0, n_items, ITEM_BLOCK):
        rows = np.arange(lo, min(lo + ITEM_BLOCK, n_items))
        co = (csc[:, rows].T @ binary).toarray()
        co[np.arange(len(rows)), rows] = 0.0
        co[co < min_count] = 0.0
        w = weigh(co, rows, counts).astype(np.float32)
        w[co == 0] = 0.0
        m = min(neighbours, n_items - 1)
        if m <= 0:
            continue
        top = np.argpartition(-w, m - 1, axis=1)[:, :m] if m < n_items else \
            np.tile(np.arange(n_items), (len(rows), 1))
        vals = np.take_along_axis(w, top, axis=1)
        keep = vals > 0
        rows_out.append(np.repeat(rows, m)[keep.ravel()])
        cols_out.append(top[keep])
        vals_out.append(vals[keep])
    if not rows_out:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals_out), (np.concatenate(rows_out),
                                                     np.concatenate(cols_out))),
                         shape=(n_items, n_items), dtype=np.float32)
