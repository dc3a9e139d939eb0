"""Human-readable conditions and rules: feature labels, units, numbers, percentages (en/zh)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crmlens.i18n import has, normalize_lang, t
from crmlens.trees._rule import Condition, Rule

# Feature labels: a mapping or a callable from feature name to a spec, where a spec is a label,
# a (label, unit) or (label, unit, kind) tuple, a mapping with "label"/"unit"/"kind", or an
# object with ``label`` (a string or a method taking the language) and ``unit`` (like the
# feature catalogue's definitions). Labels and units may be {"en": ..., "zh": ...} mappings.
FeatureLabels = Mapping[str, Any] | Callable[[str], Any] | None

_MONEY_UNITS = {"currency", "money"}
_MONEY_SYMBOLS = set("£$€¥₹")


@dataclass(frozen=True)
class FeatureFormat:
    """How one feature is shown."""

    label: str
    unit: str = ""  # shown after the value ("" for none)
    kind: str = "number"  # number, integer or money


def _in_lang(text: Any, lang: str) -> str:
    if isinstance(text, Mapping):
        return str(text.get(lang) or text.get("en") or next(iter(text.values()), ""))
    return "" if text is None else str(text)


def resolve_feature(name: str, labels: FeatureLabels, lang: str,
                    integer: bool = False) -> FeatureFormat:
    """The label, unit and kind of feature ``name`` from the caller's ``labels``."""
    spec = None
    if callable(labels) and not isinstance(labels, Mapping):
        spec = labels(name)
    elif labels is not None:
        spec = labels.get(name)
    label, unit, kind = name, "", None
    if isinstance(spec, str):
        label = spec
    elif isinstance(spec, tuple):
        label, unit = spec[0], spec[1] if len(spec) > 1 else ""
        kind = spec[2] if len(spec) > 2 else None
    elif isinstance(spec, Mapping):
        label, unit, kind = spec.get("label", name), spec.get("unit", ""), spec.get("kind")
    elif spec is not None:
        raw = getattr(spec, "label", name)
        label = raw(lang) if callable(raw) else raw
        unit, kind = getattr(spec, "unit", ""), getattr(spec, "format", None)
    label, unit = _in_lang(label, lang), _in_lang(unit, lang)
    if kind not in ("number", "integer", "money"):
        is_money = unit.lower() in _MONEY_UNITS or unit in _MONEY_SYMBOLS or (
            len(unit) == 3 and unit.isalpha() and unit.isupper())
        kind = "money" if is_money else "integer" if integer else "number"
    if unit.lower() in _MONEY_UNITS:
        unit = ""  # the currency itself is not known here; two decimals say "money"
    elif unit and has(f"trees.unit.{unit}"):
        unit = t(f"trees.unit.{unit}", lang=lang)
    return FeatureFormat(label=label or name, unit=unit, kind=kind)


def format_number(value: float, kind: str = "number") -> str:
    """A threshold for people: integers without decimals, money with two, else 3 digits."""
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "integer" or float(value).is_integer():
        return f"{value:,.0f}"
    magnitude = math.floor(math.log10(abs(value))) if value else 0
    decimals = min(max(2 - magnitude, 0), 6)
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:,.0f}"


def format_percent(share: float, lang: str) -> str:
    """``0.81`` -> ``81 %`` (en) or ``81%`` (zh)."""
    return t("trees.percent", lang=lang, value=f"{100 * share:.0f}")


def _with_unit(text: str, fmt: FeatureFormat) -> str:
    return f"{text} {fmt.unit}" if fmt.unit else text


def format_conditions(conditions, *, lang: str = "en", labels: FeatureLabels = None) -> str:
    """Join the conditions of one rule; a lower and an upper bound read as one range."""
    lang = normalize_lang(lang)
    by_feature: dict[str, list[Condition]] = {}
    for condition in conditions:
        by_feature.setdefault(condition.feature, []).append(condition)
    parts = [_format_feature(group, lang, labels) for group in by_feature.values()]
    if not parts:
        return t("trees.rule.always", lang=lang)
    return t("trees.and", lang=lang).join(parts)


def _format_feature(group: list[Condition], lang: str, labels: FeatureLabels) -> str:
    integer = all(c.integer for c in group)
    fmt = resolve_feature(group[0].feature, labels, lang, integer=integer)
    texts = []
    # An infinite bound is no bound (it can come out of merged conditions); never print it.
    numeric = {c.operator: c for c in group if c.operator in ("<=", ">")
               and math.isfinite(float(c.value))}
    if "<=" in numeric and ">" in numeric:
        low, high = _lower_bound(numeric[">"], fmt), _upper_bound(numeric["<="], fmt)
        texts.append(_with_unit(f"{low[1]} {low[0]} {fmt.label} ≤ {high}", fmt))
    elif "<=" in numeric:
        texts.append(_with_unit(f"{fmt.label} ≤ {_upper_bound(numeric['<='], fmt)}", fmt))
    elif ">" in numeric:
        symbol, value = _lower_bound(numeric[">"], fmt)
        symbol = {"<": ">", "≤": "≥"}[symbol]
        texts.append(_with_unit(f"{fmt.label} {symbol} {value}", fmt))
    for condition in group:
        if condition.operator == "==":
            texts.append(t("trees.cond.eq", lang=lang, feature=fmt.label,
                           value=_category(condition.value, lang)))
        elif condition.operator == "in":
            values = t("trees.list_sep", lang=lang).join(
                _category(v, lang) for v in condition.value)
            texts.append(t("trees.cond.in", lang=lang, feature=fmt.label, values=values))
    text = t("trees.and", lang=lang).join(texts)
    if group and all(c.missing for c in group):
        text = t("trees.cond.or_missing", lang=lang, condition=text)
    return text


def _category(value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return t("trees.yes" if value else "trees.no", lang=lang)
    return str(value)


def _upper_bound(condition: Condition, fmt: FeatureFormat) -> str:
    value = math.floor(condition.value) if fmt.kind == "integer" else condition.value
    return format_number(value, fmt.kind)


def _lower_bound(condition: Condition, fmt: FeatureFormat) -> tuple[str, str]:
    """(symbol, value) for ``value symbol feature``: integers read ``6 ≤ x``, not ``5.5 < x``."""
    if fmt.kind == "integer":
        return "≤", format_number(math.floor(condition.value) + 1, "integer")
    return "<", format_number(condition.value, fmt.kind)


def format_prediction(prediction: Any, class_labels: Any, lang: str) -> str:
    """The name of a predicted class: from ``class_labels`` (mapping or callable) or as is."""
    if callable(class_labels) and not isinstance(class_labels, Mapping):
        return str(class_labels(prediction))
    if isinstance(class_labels, Mapping) and prediction in class_labels:
        return _in_lang(class_labels[prediction], lang)
    return str(prediction)


def format_rule(rule: Rule, *, lang: str = "en", labels: FeatureLabels = None,
                class_labels: Any = None) -> str:
    """One rule as text: ``recency ≤ 30 days and orders ≥ 6 → 3, covers 81 %, precision 94 %``.

    Parameters
    ----------
    rule : Rule
    lang : {"en", "zh"}
    labels : mapping or callable, optional
        Feature labels, units and kinds (see the module docstring).
    class_labels : mapping or callable, optional
        Names of the predicted classes.

    Returns
    -------
    str
    """
    lang = normalize_lang(lang)
    return t("trees.rule.line", lang=lang,
             conditions=format_conditions(rule.conditions, lang=lang, labels=labels),
             prediction=format_prediction(rule.prediction, class_labels, lang),
             coverage=format_percent(rule.coverage, lang),
             precision=format_percent(rule.precision, lang))


def rules_to_text(rules, lang: str = "en", labels: FeatureLabels = None, *,
                  class_labels: Any = None) -> str:
    """All rules as text, one per line.

    Parameters
    ----------
    rules : iterable of Rule
    lang : {"en", "zh"}, default="en"
    labels : mapping or callable, optional
        Feature labels/units, e.g. ``{"recency_days": ("Recency", "days")}``.
    class_labels : mapping or callable, optional
        Names of the predicted classes.

    Returns
    -------
    str
    """
    return "\n".join(format_rule(r, lang=lang, labels=labels, class_labels=class_labels)
                     for r in rules)
