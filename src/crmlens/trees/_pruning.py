"""C4.5's pessimistic error pruning (subtree replacement).

A leaf holding N cases of which E are misclassified is charged ``N * U_CF(E, N)`` errors, where
``U_CF`` is the upper limit of the binomial error rate at confidence CF: the rate p with
``P(X <= E | N, p) = CF``. We compute it exactly through the beta distribution,
``U_CF(E, N) = Beta.ppf(1 - CF, E + 1, N - E)``; Quinlan's program uses the same value for
E = 0 (``1 - CF ** (1 / N)``) and a normal approximation otherwise, so our figures can differ
from his in the third decimal. A subtree is replaced by a leaf when the leaf's charge is at
most the sum of its leaves' charges plus 0.1 (Quinlan's tolerance).
"""

from __future__ import annotations

from scipy.stats import beta

from crmlens.trees._node import Node


def upper_error_rate(errors: float, n: float, confidence: float) -> float:
    """Upper confidence limit ``U_CF(E, N)`` of a binomial error rate.

    Parameters
    ----------
    errors : float
        Observed (weighted) errors E.
    n : float
        Weighted number of cases N.
    confidence : float
        Confidence factor CF in (0, 1); smaller prunes more.

    Returns
    -------
    float
    """
    if n <= 0:
        return 0.0
    if errors >= n:
        return 1.0
    return float(beta.ppf(1.0 - confidence, errors + 1.0, n - errors))


def leaf_error_estimate(node: Node, confidence: float) -> float:
    """Pessimistic number of errors ``N * U_CF(E, N)`` if ``node`` were a leaf."""
    n = node.n
    errors = n - float(node.value.max()) if n > 0 else 0.0
    return n * upper_error_rate(errors, n, confidence)


def prune(root: Node, confidence: float) -> int:
    """Replace subtrees by leaves bottom-up where that does not raise the estimated errors.

    Returns the number of subtrees replaced.
    """
    estimate: dict[int, float] = {}
    replaced = 0
    for node in reversed(list(root.walk())):  # children before parents
        as_leaf = leaf_error_estimate(node, confidence)
        if node.is_leaf:
            estimate[id(node)] = as_leaf
            continue
        subtree = sum(estimate[id(child)] for child in node.children)
        if as_leaf <= subtree + 0.1:
            node.make_leaf()
            replaced += 1
            estimate[id(node)] = as_leaf
        else:
            estimate[id(node)] = subtree
    return replaced
