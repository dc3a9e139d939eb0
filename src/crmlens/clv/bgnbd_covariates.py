"""Time-invariant covariates for the BG/NBD model (Fader & Hardie 2007 note).

Per customer ``alpha_i = alpha0 exp(-gamma1 . x_i)`` (purchase covariates: a positive
coefficient raises the purchase rate), ``a_i = a0 exp(gamma2 . z_i)`` and
``b_i = b0 exp(gamma3 . z_i)`` (dropout covariates). The likelihood is the BG/NBD one at the
per-customer parameters, summed per weighted row in log space with an analytic gradient.

During the fit time is scaled so the oldest customer has ``T = 1`` and each covariate is
centred and scaled to unit variance (conditioning); estimates, standard errors and the
covariance are mapped back to the caller's units. A covariate that is constant over the fitted
customers is confounded with the baseline parameter: its coefficient is fixed at 0 (standard
error NaN) and a warning is logged, so all-zero covariates give exactly the plain BG/NBD fit.

:class:`crmlens.clv.bgnbd.BetaGeoModel` dispatches here when covariates are given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, gammaln
from sklearn.utils.validation import check_is_fitted

from crmlens.clv._fitting import FitError, check_params_finite, fit_log_params, standard_errors
from crmlens.errors import InputError

logger = logging.getLogger(__name__)

BASE_NAMES = ("r", "alpha", "a", "b")
PURCHASE = "purchase_covariates"
DROPOUT = "dropout_covariates"


def covariate_matrix(values, name: str, rows: int | None,
                     names: tuple[str, ...] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """``values`` as a finite float matrix (rows, k) and its column names.

    DataFrames give their column names (and are matched by name against ``names`` when given);
    arrays are positional, named ``x0, x1, ...``; a 1-d array or Series is one column.
    """
    if isinstance(values, pd.Series):
        values = values.to_frame(name=values.name if values.name is not None else "x0")
    if isinstance(values, pd.DataFrame):
        given = tuple(str(c) for c in values.columns)
        duplicated = [c for c in given if given.count(c) > 1]
        if duplicated:
            raise InputError("error.clv_bgnbd_cov.duplicate_names", name=name,
                             column=duplicated[0])
        if names is not None:
            if not set(names) <= set(given):
                raise InputError("error.clv_bgnbd_cov.columns_mismatch", name=name,
                                 expected=", ".join(names), got=", ".join(given))
            values = values.set_axis(given, axis=1)[list(names)]
            given = names
        try:
            matrix = values.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InputError("error.clv_bgnbd_cov.not_numeric", name=name) from None
    else:
        try:
            matrix = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise InputError("error.clv_bgnbd_cov.not_numeric", name=name) from None
        if matrix.ndim == 1:
            matrix = matrix.reshape(-1, 1)
        if matrix.ndim != 2:
            raise InputError("error.clv_bgnbd_cov.not_2d", name=name, ndim=matrix.ndim)
        given = tuple(f"x{j}" for j in range(matrix.shape[1]))
        if names is not None and len(names) != len(given):
            raise InputError("error.clv_bgnbd_cov.columns_mismatch", name=name,
                             expected=", ".join(names), got=f"{len(given)} columns")
        given = names if names is not None else given
    if rows is not None and matrix.shape[0] != rows:
        raise InputError("error.clv_bgnbd_cov.rows_mismatch", name=name, rows=matrix.shape[0],
                         expected=rows)
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError("error.clv_bgnbd_cov.not_finite", name=name, count=int(bad.sum()),
                         row=int(row), column=given[col])
    return matrix, given


@dataclass(frozen=True)
class _Design:
    """Fit data: scaled histories, standardised covariates of the non-constant columns."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    X1: np.ndarray  # (n, k1) purchase covariates, standardised
    X2: np.ndarray  # (n, k2) dropout covariates, standardised

    @property
    def k1(self) -> int:
        return self.X1.shape[1]

    @property
    def k2(self) -> int:
        return self.X2.shape[1]


def _unpack(u: np.ndarray, k1: int, k2: int):
    base = np.exp(u[:4])
    return base, u[4:4 + k1], u[4 + k1:4 + k1 + k2], u[4 + k1 + k2:]


def _loglik_grad(u: np.ndarray, d: _Design) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its gradient in ``u = (log r, log alpha0, log a0, log b0,
    gamma1, gamma2, gamma3)`` (the covariates as stored in ``d``)."""
    (r, alpha0, a0, b0), g1, g2, g3 = _unpack(u, d.k1, d.k2)
    x, tx, T, w = d.x, d.tx, d.T, d.w
    alpha = alpha0 * np.exp(-(d.X1 @ g1))
    a = a0 * np.exp(d.X2 @ g2)
    b = b0 * np.exp(d.X2 @ g3)
    rx = r + x
    repeat = x > 0
    log_at, log_atx = np.log(alpha + T), np.log(alpha + tx)
    log_bx1 = np.log(b + np.maximum(x, 1) - 1)  # used only where x > 0
    gap = log_at - log_atx
    dd = np.log(a) - log_bx1 + rx * gap
    softplus = np.where(repeat, np.logaddexp(0.0, dd), 0.0)
    p = np.where(repeat, expit(dd), 0.0)  # weight of the "dropped out" branch
    ll_rows = (gammaln(rx) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + x)
               - gammaln(b) - gammaln(a + b + x) - rx * log_at + softplus)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    g_r = digamma(rx) - digamma(r) + np.log(alpha) - log_at + p * gap
    g_alpha = r / alpha - rx / (alpha + T) + p * rx * (1 / (alpha + T) - 1 / (alpha + tx))
    g_a = psi_ab - psi_abx + p / a
    g_b = psi_ab + digamma(b + x) - digamma(b) - psi_abx - p * np.exp(-log_bx1)
    # Chain rule to u: d alpha_i / d log alpha0 = alpha_i, d alpha_i / d gamma1 = -alpha_i x_i.
    wa, wA, wB = w * g_alpha * alpha, w * g_a * a, w * g_b * b
    grad = np.concatenate([
        [w @ g_r * r, wa.sum(), wA.sum(), wB.sum()],
        -(wa @ d.X1), wA @ d.X2, wB @ d.X2,
    ])
    return float(w @ ll_rows), grad


@dataclass(frozen=True)
class _Standardiser:
    mean: np.ndarray
    sd: np.ndarray
    keep: np.ndarray  # non-constant columns

    @classmethod
    def of(cls, X: np.ndarray, w: np.ndarray) -> _Standardiser:
        mean = (w @ X) / w.sum()
        sd = np.sqrt((w @ (X - mean) ** 2) / w.sum())
        keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
        return cls(mean[keep], sd[keep], keep)

    def apply(self, X: np.ndarray) -> np.ndarray:
        return (X[:, self.keep] - self.mean) / self.sd


def fit_with_covariates(model, frequency, recency, T, weights, purchase_covariates,
                        dropout_covariates):
    """Fit ``model`` (a BetaGeoModel) with covariates; sets its learned attributes."""
    n = len(frequency)
    X1, names1 = (covariate_matrix(purchase_covariates, PURCHASE, n)
                  if purchase_covariates is not None else (np.empty((n, 0)), ()))
    X2, names2 = (covariate_matrix(dropout_covariates, DROPOUT, n)
                  if dropout_covariates is not None else (np.empty((n, 0)), ()))
    keep = weights > 0
    w = weights[keep]
    std1, std2 = _Standardiser.of(X1[keep], w), _Standardiser.of(X2[keep], w)
    constant = [c for c, k in zip(names1, std1.keep, strict=True) if not k] + [
        c for c, k in zip(names2, std2.keep, strict=True) if not k]
    if constant:
        logger.warning("Covariates constant over the fitted customers, coefficients fixed "
                       "at 0: %s", ", ".join(constant))
    t_max = float(T.max())
    scale = 1.0 / t_max if t_max > 0 else 1.0
    design = _Design(frequency[keep], recency[keep] * scale, T[keep] * scale, w,
                     std1.apply(X1[keep]), std2.apply(X2[keep]))
    W = float(w.sum())
    c = model.penalizer_coef
    n_log = 4

    def penalty_grad(u):
        out = 2 * c * u.copy()
        out[:n_log] = 2 * c * np.exp(2 * u[:n_log])
        return out

    def objective(u):
        ll, grad = _loglik_grad(u, design)
        value = -ll / W + c * (float(np.exp(2 * u[:n_log]).sum()) + float(u[n_log:] @ u[n_log:]))
        return value, -grad / W + penalty_grad(u)

    k = n_log + design.k1 + 2 * design.k2
    with np.errstate(all="ignore"):
        u, _, n_iter, converged, message = fit_log_params(
            objective, x0=np.concatenate([np.full(n_log, 0.1), np.zeros(k - n_log)]),
            total_weight=W, tol=model.tol, max_iter=model.max_iter, model="BG/NBD")
    base_scaled = np.exp(u[:n_log])
    check_params_finite(base_scaled, "BG/NBD", BASE_NAMES)
    if not converged:
        raise FitError("error.clv_model.not_converged", model="BG/NBD", iterations=n_iter,
                       message=message)

    # Hessian in u via standard_errors' relative steps on v = exp(u) (u may be 0 or negative).
    def total_gradient_v(v):
        uu = np.log(v)
        return (-_loglik_grad(uu, design)[1] + W * penalty_grad(uu)) / v

    v = np.exp(u)
    _, cov_v = standard_errors(total_gradient_v, v, model="BG/NBD")
    cov_u = cov_v / np.outer(v, v)

    # Back to the caller's units: gamma = gamma_z / sd; the baselines absorb the centring.
    _, g1z, g2z, g3z = _unpack(u, design.k1, design.k2)
    g1, g2, g3 = g1z / std1.sd, g2z / std2.sd, g3z / std2.sd
    r = base_scaled[0]
    alpha0 = base_scaled[1] / scale * np.exp(g1 @ std1.mean)
    a0 = base_scaled[2] * np.exp(-(g2 @ std2.mean))
    b0 = base_scaled[3] * np.exp(-(g3 @ std2.mean))
    jac = np.zeros((k, k))
    jac[0, 0], jac[1, 1], jac[2, 2], jac[3, 3] = r, alpha0, a0, b0
    i1, i2 = n_log + design.k1, n_log + design.k1 + design.k2
    jac[1, n_log:i1] = alpha0 * std1.mean / std1.sd
    jac[2, i1:i2] = -a0 * std2.mean / std2.sd
    jac[3, i2:] = -b0 * std2.mean / std2.sd
    jac[n_log:, n_log:] = np.diag(1 / np.concatenate([std1.sd, std2.sd, std2.sd]))
    cov = jac @ cov_u @ jac.T
    variances = np.diag(cov)
    se = np.sqrt(np.where(variances > 0, variances, np.nan))
    base = np.array([r, alpha0, a0, b0])
    check_params_finite(base, "BG/NBD", BASE_NAMES)

    def expand(values, mask):
        full = np.zeros(len(mask))
        full[mask] = values
        return full

    def expand_se(values, mask):
        full = np.full(len(mask), np.nan)
        full[mask] = values
        return full

    se1, se2, se3 = se[n_log:i1], se[i1:i2], se[i2:]
    model.params_ = dict(zip(BASE_NAMES, base.tolist(), strict=True))
    model.se_ = dict(zip(BASE_NAMES, se[:n_log].tolist(), strict=True))
    model.purchase_coefficients_ = dict(zip(names1, expand(g1, std1.keep).tolist(), strict=True))
    model.dropout_coefficients_ = {
        **{f"a:{c}": v for c, v in zip(names2, expand(g2, std2.keep).tolist(), strict=True)},
        **{f"b:{c}": v for c, v in zip(names2, expand(g3, std2.keep).tolist(), strict=True)},
    }
    model.purchase_coefficient_se_ = dict(zip(names1, expand_se(se1, std1.keep).tolist(),
                                              strict=True))
    model.dropout_coefficient_se_ = {
        **{f"a:{c}": v for c, v in zip(names2, expand_se(se2, std2.keep).tolist(), strict=True)},
        **{f"b:{c}": v for c, v in zip(names2, expand_se(se3, std2.keep).tolist(), strict=True)},
    }
    model.purchase_covariate_names_ = names1
    model.dropout_covariate_names_ = names2
    model.covariance_ = cov  # r, alpha, a, b, then the estimated (non-constant) coefficients
    model.log_likelihood_ = float(_loglik_grad(u, design)[0]
                                  + np.log(scale) * float(design.w @ design.x))
    model.n_iter_ = n_iter
    model.converged_ = converged
    model.n_customers_ = W
    return model


def clear_covariates(model) -> None:
    """Mark ``model`` as fitted without covariates (no coefficients)."""
    model.purchase_coefficients_, model.dropout_coefficients_ = {}, {}
    model.purchase_coefficient_se_, model.dropout_coefficient_se_ = {}, {}
    model.purchase_covariate_names_, model.dropout_covariate_names_ = (), ()


def customer_params(model, purchase_covariates, dropout_covariates, rows: int | None):
    """``(r, alpha, a, b)`` for prediction: floats without covariates, else per-customer arrays.

    Refuses covariates the model was not fitted with, and missing ones it was fitted with.
    """
    check_is_fitted(model, "params_")
    p = model.params_
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    names1 = getattr(model, "purchase_covariate_names_", ())
    names2 = getattr(model, "dropout_covariate_names_", ())
    for given, names, label in ((purchase_covariates, names1, PURCHASE),
                                (dropout_covariates, names2, DROPOUT)):
        if given is None and names:
            raise InputError("error.clv_bgnbd_cov.missing", name=label)
        if given is not None and not names:
            raise InputError("error.clv_bgnbd_cov.unexpected", name=label)
    if names1:
        X1, _ = covariate_matrix(purchase_covariates, PURCHASE, rows, names1)
        rows = X1.shape[0]
        g1 = np.array([model.purchase_coefficients_[c] for c in names1])
        alpha = alpha * np.exp(-(X1 @ g1))
    if names2:
        X2, _ = covariate_matrix(dropout_covariates, DROPOUT, rows, names2)
        g2 = np.array([model.dropout_coefficients_[f"a:{c}"] for c in names2])
        g3 = np.array([model.dropout_coefficients_[f"b:{c}"] for c in names2])
        a = a * np.exp(X2 @ g2)
        b = b * np.exp(X2 @ g3)
    return r, alpha, a, b
