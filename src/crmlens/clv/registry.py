"""Purchase models by name, imported on demand (so a missing optional model never breaks import)."""

from __future__ import annotations

from importlib import import_module

from crmlens.errors import InputError

# name -> "module:Class"; continuous-time models first, then discrete time.
PURCHASE_MODELS: dict[str, str] = {
    "bgnbd": "crmlens.clv.bgnbd:BetaGeoModel",
    "mbgnbd": "crmlens.clv.mbgnbd:ModifiedBetaGeoModel",
    "pareto_nbd": "crmlens.clv.pareto_nbd:ParetoNBDModel",
    "bgbb": "crmlens.clv.bgbb:BetaGeoBetaBinomModel",
}
# Discrete-time models: their likelihood is a probability, not a density, so their
# log-likelihood (and AIC/BIC) is not comparable with the continuous-time models'.
DISCRETE_TIME = frozenset({"bgbb"})


def purchase_model_class(name: str) -> type:
    """The estimator class registered as ``name`` (``InputError`` for an unknown name)."""
    if name not in PURCHASE_MODELS:
        raise InputError("error.clv_unknown_model", model=name,
                         known=", ".join(available_purchase_models()))
    module, _, cls = PURCHASE_MODELS[name].partition(":")
    return getattr(import_module(module), cls)


def available_purchase_models() -> list[str]:
    """Names of the purchase models that are importable, in registry order."""
    out = []
    for name, target in PURCHASE_MODELS.items():
        module, _, cls = target.partition(":")
        try:
            getattr(import_module(module), cls)
        except (ImportError, AttributeError):
            continue
        out.append(name)
    return out
