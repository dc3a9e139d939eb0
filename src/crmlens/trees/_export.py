"""Export a fitted tree as rules (one per leaf), as JSON, or as an indented text tree."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crmlens.i18n import t
from crmlens.trees._formatting import format_number, format_percent
from crmlens.trees._rule import Rule, _json_value, simplify
from crmlens.trees._tree_view import tree_view


def _plain(number: float) -> float | int:
    return int(round(number)) if abs(number - round(number)) < 1e-9 else float(number)


def export_rules(tree, *, feature_names: Sequence[str] | None = None,
                 class_names: Sequence[Any] | Mapping[Any, Any] | None = None) -> list[Rule]:
    """One rule per leaf of a fitted ID3, C4.5 or CART (scikit-learn) tree.

    Conditions on the same feature along a path are merged (``recency <= 60`` and
    ``recency <= 30`` give ``recency <= 30``). Support, coverage and precision come from the
    training samples stored in the tree; use :meth:`Rule.evaluate` for other data.

    Parameters
    ----------
    tree : ID3Classifier, C45Classifier, CARTClassifier or DecisionTreeClassifier
        A fitted tree.
    feature_names : sequence of str, optional
        Defaults to ``feature_names_in_``, else ``x0, x1, ...``.
    class_names : sequence or mapping, optional
        Names for ``tree.classes_`` (a sequence aligned with them, or a mapping).

    Returns
    -------
    list of Rule
        In depth-first order, the ``<=`` / first branch first.
    """
    view = tree_view(tree, feature_names, class_names)
    totals = view.counts(view.root)
    rules = []
    stack = [(view.root, ())]
    while stack:
        node, path = stack.pop()
        branches = view.branches(node)
        if branches:
            for condition, child in reversed(branches):
                stack.append((child, path + (condition,)))
            continue
        counts = view.counts(node)
        support = float(counts.sum())
        best = int(np.argmax(counts))
        rules.append(Rule(
            conditions=simplify(path),
            prediction=view.classes[best],
            support=_plain(support),
            coverage=float(counts[best] / totals[best]) if totals[best] > 0 else 0.0,
            precision=float(counts[best] / support) if support > 0 else 0.0,
            class_counts={c: _plain(float(v)) for c, v in zip(view.classes, counts) if v > 0},
        ))
    return rules


def rules_to_json(rules, *, indent: int | None = None) -> str:
    """The rules as a JSON array (see :meth:`Rule.to_dict` for the fields).

    Parameters
    ----------
    rules : iterable of Rule
    indent : int, optional

    Returns
    -------
    str
    """
    return json.dumps([r.to_dict() for r in rules], indent=indent, ensure_ascii=False)


def export_text(tree, *, feature_names: Sequence[str] | None = None,
                class_names: Sequence[Any] | Mapping[Any, Any] | None = None,
                lang: str = "en") -> str:
    """The whole tree as indented text, one line per branch, leaves with class and counts.

    Parameters
    ----------
    tree : ID3Classifier, C45Classifier, CARTClassifier or DecisionTreeClassifier
    feature_names : sequence of str, optional
    class_names : sequence or mapping, optional
    lang : {"en", "zh"}, default="en"
        Language of the percentages.

    Returns
    -------
    str

    Examples
    --------
    ``outlook = overcast: yes (n=4, 100 %)``, nested branches indented with ``|   ``.
    """
    view = tree_view(tree, feature_names, class_names)
    lines: list[str] = []

    def leaf_text(node) -> str:
        counts = view.counts(node)
        best = int(np.argmax(counts))
        share = counts[best] / counts.sum() if counts.sum() > 0 else 0.0
        n = format_number(_plain(float(counts.sum())))
        return f"{view.classes[best]} (n={n}, {format_percent(share, lang)})"

    if not view.branches(view.root):
        return leaf_text(view.root)
    stack = [(child, 1, condition) for condition, child in reversed(view.branches(view.root))]
    while stack:
        node, depth, condition = stack.pop()
        head = "|   " * (depth - 1) + "|--- " + _condition_text(condition, lang)
        branches = view.branches(node)
        if not branches:
            lines.append(f"{head}: {leaf_text(node)}")
            continue
        lines.append(head)
        for sub, child in reversed(branches):
            stack.append((child, depth + 1, sub))
    return "\n".join(lines)


def _condition_text(condition, lang: str) -> str:
    if condition.operator in ("<=", ">"):
        value = f"{condition.value:g}"
    elif condition.operator == "in":
        value = "{" + ", ".join(str(_json_value(v)) for v in condition.value) + "}"
    else:
        value = str(_json_value(condition.value))
    text = f"{condition.feature} {condition.operator} {value}"
    return t("trees.cond.or_missing", lang=lang, condition=text) if condition.missing else text
