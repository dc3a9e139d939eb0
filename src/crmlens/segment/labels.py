"""Display labels of features for tables, charts and rules (from the feature catalogue)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _catalogue_labels(lang: str) -> dict[str, str]:
    from crmlens.features import feature_catalogue

    return {item["name"]: item["label"] for item in feature_catalogue(lang)}


def feature_label(name: str, *, lang: str = "en") -> str:
    """The display label of a feature (``recency_days`` -> ``Recency``); the name otherwise.

    Share columns (``share_channel_web``) read as their family's label and the value.
    """
    labels = _catalogue_labels(lang)
    if name in labels:
        return labels[name]
    for template, label in labels.items():
        prefix = template.split("{")[0]
        if "{" in template and name.startswith(prefix):
            value = name[len(prefix):]
            return label.replace("{value}", value) if "{value}" in label else f"{label}: {value}"
    return name.replace("_", " ")
