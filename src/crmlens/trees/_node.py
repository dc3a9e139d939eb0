"""The node structure shared by ID3 and C4.5."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LEAF = "leaf"
NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(eq=False)
class Node:
    """One node of an ID3/C4.5 tree.

    Attributes
    ----------
    value : ndarray of shape (n_classes,)
        Weighted class counts of the training cases that reached the node (cases with a missing
        value of an ancestor's attribute count fractionally, as in C4.5).
    depth : int
    kind : {"leaf", "numeric", "categorical"}
    feature : int
        Column index of the test (-1 for a leaf).
    threshold : float
        Numeric test ``x <= threshold`` goes to ``children[0]``, ``x > threshold`` to ``children[1]``.
    codes : ndarray of int or None
        Categorical test: category code of each child.
    children : list of Node
    branch_weights : ndarray
        Share of the known-value training weight in each child; cases with a missing value are
        sent down every branch with these weights (C4.5).
    gain, gain_ratio : float
        Score of the chosen test (gain after C4.5's corrections, when they apply).
    scores : dict
        ``{feature: (gain, gain_ratio)}`` of every candidate test at this node.
    """

    value: np.ndarray
    depth: int
    kind: str = LEAF
    feature: int = -1
    threshold: float = float("nan")
    codes: np.ndarray | None = None
    children: list[Node] = field(default_factory=list)
    branch_weights: np.ndarray | None = None
    gain: float = float("nan")
    gain_ratio: float = float("nan")
    scores: dict[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def is_leaf(self) -> bool:
        return self.kind == LEAF

    @property
    def n(self) -> float:
        """Weighted number of training cases at the node."""
        return float(self.value.sum())

    def make_leaf(self) -> None:
        """Drop the test and the subtree (pruning)."""
        self.kind, self.feature, self.threshold = LEAF, -1, float("nan")
        self.codes, self.children, self.branch_weights = None, [], None

    def walk(self):
        """Yield every node of the subtree, parents before children."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))
