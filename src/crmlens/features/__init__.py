"""Customer features as of a date, computed as SQL in the engine.

>>> from crmlens.features import compute_features, read_features, feature_catalogue
"""

from crmlens.features._catalogue import FeatureDef
from crmlens.features._compute import (
    FeatureResult, compute_features, feature_sql, summarise,
)
from crmlens.features._store import feature_catalogue, read_features, store_features

__all__ = ["FeatureDef", "FeatureResult", "compute_features", "feature_catalogue",
           "feature_sql", "read_features", "store_features", "summarise"]
