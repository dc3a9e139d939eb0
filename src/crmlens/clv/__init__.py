"""Customer lifetime value: BTYD models fitted on per-customer summaries.

>>> from crmlens.clv import rfm_summary, compress, BetaGeoModel, GammaGammaModel

Data preparation (:func:`rfm_summary`, :func:`calibration_and_holdout`, :func:`compress`),
purchase models (BG/NBD, MBG/NBD, Pareto/NBD, BG/BB; by name in :mod:`crmlens.clv.registry`),
the shifted-beta-geometric model of contractual churn, the Gamma-Gamma spend model, holdout
validation (:mod:`crmlens.clv.validation`) and the workspace step (:mod:`crmlens.clv.scoring`,
:mod:`crmlens.clv.store`). See ``docs/clv.md``.
"""

from crmlens.clv._fitting import FitError
from crmlens.clv.bgbb import BetaGeoBetaBinomModel
from crmlens.clv.bgnbd import BetaGeoModel
from crmlens.clv.gamma_gamma import GammaGammaModel
from crmlens.clv.mbgnbd import ModifiedBetaGeoModel
from crmlens.clv.pareto_nbd import ParetoNBDModel
from crmlens.clv.sbg import ShiftedBetaGeometricModel, from_survivors
from crmlens.clv.summary import (
    Summary,
    calibration_and_holdout,
    check_summary,
    compress,
    rfm_summary,
)

__all__ = ["BetaGeoBetaBinomModel", "BetaGeoModel", "FitError", "GammaGammaModel",
           "ModifiedBetaGeoModel", "ParetoNBDModel", "ShiftedBetaGeometricModel", "Summary",
           "calibration_and_holdout", "check_summary", "compress", "from_survivors",
           "rfm_summary"]
