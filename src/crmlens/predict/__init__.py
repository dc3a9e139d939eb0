"""Churn and behaviour prediction: labels, model zoo, evaluation, explanations.

>>> from crmlens.predict import build_training_frame, compare_models, fit_final

Labels and frames (:func:`churn_labels`, :func:`rolling_cutoffs`, :func:`build_training_frame`,
:func:`build_scoring_frame`, :func:`build_labelled_frame`), the model families behind one
constructor (:func:`make_model`, :data:`MODEL_FAMILIES`, :class:`NaiveBaseline`), metrics
(:func:`classification_metrics`), the comparison and final fit (:func:`compare_models`,
:func:`fit_final`), the leakage scan (:func:`leakage_scan`), explanations
(:func:`permutation_importance_table`, :func:`customer_factors`), the expected days to the next
order (:func:`fit_days_to_next`) and a whole step (:func:`train_churn`, :func:`train_labelled`,
:func:`rescore`). See ``docs/churn.md``.
"""

from crmlens.predict.dataset import (
    TrainingFrame,
    build_labelled_frame,
    build_scoring_frame,
    build_training_frame,
)
from crmlens.predict.evaluate import Comparison, compare_models, fit_final
from crmlens.predict.explain import (
    customer_factors,
    describe_factor,
    permutation_importance_table,
)
from crmlens.predict.labels import churn_labels, rolling_cutoffs
from crmlens.predict.leakage import leakage_scan
from crmlens.predict.metrics import classification_metrics, curve_points
from crmlens.predict.models import MODEL_FAMILIES, BalancedClassifier, NaiveBaseline, make_model
from crmlens.predict.next_order import fit_days_to_next
from crmlens.predict.run import ChurnResult, rescore, train_churn, train_labelled

__all__ = ["MODEL_FAMILIES", "BalancedClassifier", "ChurnResult", "Comparison",
           "NaiveBaseline", "TrainingFrame", "build_labelled_frame", "build_scoring_frame",
           "build_training_frame", "churn_labels", "classification_metrics", "compare_models",
           "curve_points", "customer_factors", "describe_factor", "fit_days_to_next",
           "fit_final", "leakage_scan", "make_model", "permutation_importance_table",
           "rescore", "rolling_cutoffs", "train_churn", "train_labelled"]
