"""Customer lifetime value: BTYD models fitted on per-customer summaries.

>>> from crmlens.clv import rfm_summary, compress, BetaGeoModel, GammaGammaModel

Issue 4 is in progress: the data preparation and the BG/NBD and Gamma-Gamma models are here;
the other models, the workspace step, CLI, report section and benchmark are still to come.
"""

from crmlens.clv._fitting import FitError
from crmlens.clv.bgnbd import BetaGeoModel
from crmlens.clv.gamma_gamma import GammaGammaModel
from crmlens.clv.summary import (
    Summary,
    calibration_and_holdout,
    check_summary,
    compress,
    rfm_summary,
)

__all__ = ["BetaGeoModel", "FitError", "GammaGammaModel", "Summary", "calibration_and_holdout",
           "check_summary", "compress", "rfm_summary"]
