"""Shared machinery of the CLV estimators: input checks, the optimiser call, standard errors.

The models minimise a mean negative log-likelihood over log-parameters (so every parameter
stays positive without bounds) with an analytic gradient; the Hessian for standard errors is
taken by central differences of that analytic gradient in the natural parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from threadpoolctl import threadpool_limits

from crmlens.errors import CrmlensError, InputError


class FitError(CrmlensError):
    """The maximum-likelihood fit did not converge or gave unusable parameters."""

    exit_code = 2


class MaximumLikelihoodModel(BaseEstimator):
    """The settings every CLV likelihood model shares (scikit-learn contract).

    Parameters
    ----------
    penalizer_coef : float, default=0.0
        L2 penalty on the parameters; 0 gives the plain maximum-likelihood estimate.
    tol : float, default=1e-8
        Convergence tolerance on the gradient of the mean log-likelihood.
    max_iter : int, default=1000
        Maximum number of optimiser iterations.
    """

    _parameter_constraints: dict = {
        "penalizer_coef": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, penalizer_coef: float = 0.0, tol: float = 1e-8, max_iter: int = 1000):
        self.penalizer_coef = penalizer_coef
        self.tol = tol
        self.max_iter = max_iter


def as_float_array(values, name: str) -> np.ndarray:
    """``values`` as a finite 1-d float array, else an :class:`InputError` naming ``name``."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError("error.clv_model.not_numeric", column=name) from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise InputError("error.clv_model.not_1d", column=name, ndim=array.ndim)
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(
            "error.clv_model.not_finite", column=name, count=int(bad.sum()), row=int(np.argmax(bad))
        )
    return array


def check_same_length(**arrays: np.ndarray) -> int:
    """The common length of ``arrays``, else an :class:`InputError` listing the lengths."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise InputError("error.clv_model.length_mismatch", lengths=shown)
    n = next(iter(lengths.values()))
    if n == 0:
        raise InputError("error.clv_model.empty")
    return n


def check_frequency(frequency: np.ndarray) -> None:
    """Frequency counts repeat purchases: a non-negative integer."""
    negative = frequency < 0
    if negative.any():
        row = int(np.argmax(negative))
        raise InputError("error.clv_model.negative_frequency", row=row, value=frequency[row])
    fractional = frequency != np.round(frequency)
    if fractional.any():
        row = int(np.argmax(fractional))
        raise InputError("error.clv_model.fractional_frequency", row=row, value=frequency[row])


def check_recency_T(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    """0 <= recency <= T, and recency is 0 for customers without repeat purchases."""
    negative = recency < 0
    if negative.any():
        row = int(np.argmax(negative))
        raise InputError("error.clv_model.negative_recency", row=row, value=recency[row])
    late = recency > T
    if late.any():
        row = int(np.argmax(late))
        raise InputError(
            "error.clv_model.recency_after_T", row=row, recency=recency[row], T=T[row],
            count=int(late.sum()),
        )
    stray = (frequency == 0) & (recency != 0)
    if stray.any():
        row = int(np.argmax(stray))
        raise InputError("error.clv_model.recency_without_repeat", row=row, recency=recency[row])


def check_weights(sample_weight, n: int) -> np.ndarray:
    """Non-negative finite weights (all ones when ``None``) with a positive total."""
    if sample_weight is None:
        return np.ones(n)
    weights = as_float_array(sample_weight, "sample_weight")
    check_same_length(sample_weight=weights, rows=np.empty(n))
    if (weights < 0).any():
        row = int(np.argmax(weights < 0))
        raise InputError("error.clv_model.negative_weight", row=row, value=weights[row])
    if weights.sum() <= 0:
        raise InputError("error.clv_model.zero_total_weight")
    return weights


# Above this many rows a fit first runs on a weighted sample of this many customers: its optimum
# is a starting point a few iterations from the full optimum, and each of its evaluations costs
# a fraction of a full one. The full fit still decides convergence, so the result is unchanged.
WARM_START_ROWS = 50_000


def warm_start_weights(weights: np.ndarray, *, seed: int = 0) -> np.ndarray | None:
    """Weights of a random sample of ``WARM_START_ROWS`` customers, or None for small data.

    Customers are drawn with replacement (a multinomial over the rows by their weights), each
    drawn customer standing for ``total / WARM_START_ROWS``: the sample's log-likelihood is an
    unbiased estimate of the full one, so its optimum is close to the full optimum.
    """
    total = float(weights.sum())
    if len(weights) <= WARM_START_ROWS or total <= 2 * WARM_START_ROWS:
        return None
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(WARM_START_ROWS, weights / total)
    return counts * (total / WARM_START_ROWS)


def fit_log_params(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    *,
    x0: np.ndarray,
    total_weight: float,
    tol: float,
    max_iter: int,
    model: str,
) -> tuple[np.ndarray, float, int, bool, str]:
    """Minimise ``objective`` (mean NLL and gradient in log-parameters) with L-BFGS-B.

    Returns log-parameters, the total log-likelihood, iterations, convergence and the
    optimiser's message. Raises :class:`FitError` when the result is not finite.
    """
    # One BLAS thread: the objective's dot products are short, and a multi-threaded BLAS that
    # spins for busy cores made the fit 5-8x slower on a loaded 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(
            objective,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "gtol": tol, "ftol": tol * 1e-6, "maxcor": 20},
        )
    if not (np.all(np.isfinite(result.x)) and np.isfinite(result.fun)):
        raise FitError("error.clv_model.non_finite_fit", model=model)
    grad_norm = float(np.max(np.abs(result.jac)))
    # L-BFGS-B stops with ABNORMAL when the line search cannot improve any further; at a
    # vanishing gradient that is the optimum reached to machine precision, not a failure.
    converged = bool(result.success) or grad_norm <= max(tol, 1e-5)
    return result.x, -float(result.fun) * total_weight, int(result.nit), converged, str(
        result.message
    )


def standard_errors(
    gradient: Callable[[np.ndarray], np.ndarray], params: np.ndarray, *, model: str
) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and covariance from the Hessian of the total NLL at ``params``.

    ``gradient`` maps natural parameters to the gradient of the total negative
    log-likelihood; the Hessian is its central-difference Jacobian, symmetrised.
    """
    k = len(params)
    hessian = np.empty((k, k))
    with threadpool_limits(limits=1, user_api="blas"):
        for j in range(k):
            step = 1e-5 * params[j]
            up, down = params.copy(), params.copy()
            up[j] += step
            down[j] -= step
            hessian[:, j] = (gradient(up) - gradient(down)) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    try:
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        raise FitError("error.clv_model.singular_hessian", model=model) from None
    variances = np.diag(covariance)
    se = np.sqrt(np.where(variances > 0, variances, np.nan))
    return se, covariance


def check_params_finite(params: np.ndarray, model: str, names: tuple[str, ...]) -> None:
    """Refuse non-finite or non-positive parameters instead of returning them."""
    bad = ~np.isfinite(params) | (params <= 0)
    if bad.any():
        shown = ", ".join(f"{n}={v}" for n, v in zip(names, params, strict=True))
        raise FitError("error.clv_model.bad_params", model=model, params=shown)
