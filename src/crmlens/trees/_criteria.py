"""Impurity measures of ID3 and C4.5, vectorized over rows of class-count tables.

All functions take weighted class counts (the last axis is the class) so the same code serves
plain counts, sample weights and C4.5's fractional cases with missing values.
"""

from __future__ import annotations

import numpy as np


def entropy(counts: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each row of ``counts``: ``-sum p log2 p`` (0 log 0 = 0).

    Parameters
    ----------
    counts : ndarray of shape (..., n_classes)
        Non-negative (weighted) class counts.

    Returns
    -------
    ndarray of shape (...)
        Entropy of each row; 0 for an empty row.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    share = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    logs = np.log2(share, out=np.zeros_like(share), where=share > 0)
    return -(share * logs).sum(axis=-1)


def split_entropy(branches: np.ndarray) -> np.ndarray:
    """Weighted mean entropy of the branches of a split (the ``E(A)`` of Quinlan).

    Parameters
    ----------
    branches : ndarray of shape (..., n_branches, n_classes)

    Returns
    -------
    ndarray of shape (...)
    """
    branches = np.asarray(branches, dtype=np.float64)
    size = branches.sum(axis=-1)
    total = size.sum(axis=-1)
    weighted = (size * entropy(branches)).sum(axis=-1)
    return np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)


def information_gain(parent: np.ndarray, branches: np.ndarray) -> np.ndarray:
    """ID3's information gain: ``H(parent) - sum_i |S_i|/|S| H(S_i)``.

    Parameters
    ----------
    parent : ndarray of shape (..., n_classes)
        Class counts of the cases with a known value of the attribute.
    branches : ndarray of shape (..., n_branches, n_classes)
        Class counts in each branch; they add up to ``parent``.

    Returns
    -------
    ndarray of shape (...)
    """
    return entropy(parent) - split_entropy(branches)


def split_information(sizes: np.ndarray) -> np.ndarray:
    """C4.5's split information: the entropy of the branch sizes, ``-sum |S_i|/|S| log2 ...``.

    Parameters
    ----------
    sizes : ndarray of shape (..., n_branches)
        Weight of each branch (C4.5 adds the cases with an unknown value as one more branch).

    Returns
    -------
    ndarray of shape (...)
    """
    return entropy(sizes)
