"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005; Fader & Hardie note 025).

A customer's transaction values are Gamma(p, nu) with ``nu ~ Gamma(q, v)`` across customers,
independent of their purchase process. That independence is an assumption the data can
contradict, so the fit measures the correlation between frequency and mean spend and reports it.
"""

from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from crmlens.clv._fitting import (
    FitError,
    as_float_array,
    check_frequency,
    check_params_finite,
    check_same_length,
    check_weights,
    fit_log_params,
    standard_errors,
)
from crmlens.errors import InputError
from crmlens.i18n import t as translate

logger = logging.getLogger(__name__)

PARAM_NAMES = ("p", "q", "v")


class _Spends:
    """Weighted repeat-buyer rows prepared once for repeated likelihood evaluations.

    Only ``log(x m + v)`` and ``1 / (x m + v)`` truly depend on the row and the parameters;
    the Gamma-function terms depend on ``x`` alone and are summed over distinct frequencies,
    and the terms in ``log m`` and ``log x`` are constants of the data.
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray):
        self.total_weight = float(w.sum())
        self.x_unique, index = np.unique(x, return_inverse=True)
        self.w_unique = np.bincount(index, weights=w)
        self.xm = x * m
        self.w = w
        self.wx = w * x
        log_m = np.log(m)
        self.sum_w_log_m = float(w @ log_m)
        self.sum_wx_log_mx = float(self.wx @ (log_m + np.log(x)))


def _loglik_grad(params, s: _Spends) -> tuple[float, np.ndarray]:
    """Total log-likelihood and gradient in (p, q, v) of mean spends over ``x`` purchases."""
    p, q, v = params
    W, xu, wu = s.total_weight, s.x_unique, s.w_unique
    pxu = p * xu
    log_xmv = np.log(s.xm + v)
    inv_xmv = 1.0 / (s.xm + v)
    wx_log, w_log = float(s.wx @ log_xmv), float(s.w @ log_xmv)
    wx_inv, w_inv = float(s.wx @ inv_xmv), float(s.w @ inv_xmv)
    ll = (float(wu @ (gammaln(pxu + q) - gammaln(pxu))) - W * gammaln(q) + W * q * np.log(v)
          + p * s.sum_wx_log_mx - s.sum_w_log_m - p * wx_log - q * w_log)
    psi_pxq = digamma(pxu + q)
    g_p = float((wu * xu) @ (psi_pxq - digamma(pxu))) + s.sum_wx_log_mx - wx_log
    g_q = float(wu @ psi_pxq) - W * digamma(q) + W * np.log(v) - w_log
    g_v = W * q / v - p * wx_inv - q * w_inv
    return float(ll), np.array([g_p, g_q, g_v], dtype=float)


def _weighted_pearson(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    mean_a, mean_b = np.average(a, weights=w), np.average(b, weights=w)
    da, db = a - mean_a, b - mean_b
    denominator = np.sqrt((w @ da**2) * (w @ db**2))
    return float((w @ (da * db)) / denominator) if denominator > 0 else 0.0


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma model of the mean value of a customer's repeat transactions.

    Parameters
    ----------
    penalizer_coef : float, default=0.0
        L2 penalty on ``(p, q, v)``; 0 gives the maximum-likelihood estimate.
    tol : float, default=1e-8
        Convergence tolerance on the gradient of the mean log-likelihood (log-parameters).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    correlation_threshold : float, default=0.3
        ``|Pearson r|`` between frequency and mean spend above which the independence
        assumption is flagged (warning at fit time, text in :meth:`independence_warning`).

    Attributes
    ----------
    params_ : dict of str to float
        ``p``, ``q``, ``v``.
    se_ : dict of str to float
        Standard errors from the inverse Hessian.
    covariance_ : ndarray of shape (3, 3)
        Covariance matrix of ``(p, q, v)``.
    log_likelihood_ : float
        Maximised total (weighted) log-likelihood.
    n_iter_ : int
        Optimiser iterations.
    converged_ : bool
        Whether the optimiser met its tolerance.
    frequency_spend_correlation_ : float
        Weighted Pearson correlation between frequency and mean spend among repeat buyers.
    independence_suspect_ : bool
        Whether ``|frequency_spend_correlation_| >= correlation_threshold``.
    """

    _parameter_constraints: dict = {
        "penalizer_coef": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "correlation_threshold": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        *,
        penalizer_coef: float = 0.0,
        tol: float = 1e-8,
        max_iter: int = 1000,
        correlation_threshold: float = 0.3,
    ):
        self.penalizer_coef = penalizer_coef
        self.tol = tol
        self.max_iter = max_iter
        self.correlation_threshold = correlation_threshold

    def fit(self, frequency, monetary_value, sample_weight=None) -> GammaGammaModel:
        """Estimate ``p, q, v`` by maximum likelihood on repeat buyers.

        Parameters
        ----------
        frequency : array-like of shape (n_rows,)
            Repeat purchases, each ``>= 1`` (filter out one-time buyers first).
        monetary_value : array-like of shape (n_rows,)
            Mean value of the repeat purchases, ``> 0``.
        sample_weight : array-like of shape (n_rows,), default=None
            Number of customers sharing each row.

        Returns
        -------
        self : GammaGammaModel
            The fitted model.
        """
        self._validate_params()
        x, m = _check_spend(frequency, monetary_value, repeat_only=True)
        w = check_weights(sample_weight, len(x))
        keep = w > 0
        x, m, w = x[keep], m[keep], w[keep]
        spends = _Spends(x, m, w)
        W = spends.total_weight
        c = self.penalizer_coef

        def objective(log_params):
            params = np.exp(log_params)
            ll, grad = _loglik_grad(params, spends)
            return -ll / W + c * float(params @ params), -grad * params / W + 2 * c * params**2

        def total_gradient(params):
            return -_loglik_grad(params, spends)[1] + 2 * c * W * params

        with np.errstate(all="ignore"):
            log_params, _, n_iter, converged, message = fit_log_params(
                objective, x0=np.full(3, 0.1), total_weight=W, tol=self.tol,
                max_iter=self.max_iter, model="Gamma-Gamma",
            )
        params = np.exp(log_params)
        check_params_finite(params, "Gamma-Gamma", PARAM_NAMES)
        if not converged:
            raise FitError("error.clv_model.not_converged", model="Gamma-Gamma",
                           iterations=n_iter, message=message)
        se, cov = standard_errors(total_gradient, params, model="Gamma-Gamma")
        self.params_ = dict(zip(PARAM_NAMES, params.tolist(), strict=True))
        self.se_ = dict(zip(PARAM_NAMES, se.tolist(), strict=True))
        self.covariance_ = cov
        self.log_likelihood_ = _loglik_grad(params, spends)[0]
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.frequency_spend_correlation_ = _weighted_pearson(x, m, w)
        self.independence_suspect_ = (
            abs(self.frequency_spend_correlation_) >= self.correlation_threshold
        )
        if self.independence_suspect_:
            text = self.independence_warning(lang="en")
            logger.warning(text)
            warnings.warn(text, UserWarning, stacklevel=2)
        return self

    def independence_warning(self, lang: str | None = None) -> str | None:
        """Text explaining a doubtful independence assumption, or ``None`` when it holds.

        Parameters
        ----------
        lang : str, optional
            Language of the text (default: the current language).

        Returns
        -------
        str or None
            The warning, naming the measured correlation.
        """
        check_is_fitted(self, "params_")
        if not self.independence_suspect_:
            return None
        return translate(
            "clv.gamma_gamma.dependence_warning",
            lang=lang,
            r=f"{self.frequency_spend_correlation_:.2f}",
            threshold=f"{self.correlation_threshold:.2f}",
        )

    def conditional_expected_average_profit(self, frequency, monetary_value) -> np.ndarray:
        """Expected mean transaction value given the history (note 025, eq. 5).

        Parameters
        ----------
        frequency : array-like of shape (n_customers,)
            Repeat purchases (0 gives the population mean).
        monetary_value : array-like of shape (n_customers,)
            Observed mean spend of the repeat purchases (ignored when frequency is 0).

        Returns
        -------
        ndarray of shape (n_customers,)
            Shrunk estimate between the population mean and the customer's own mean.
        """
        check_is_fitted(self, "params_")
        p, q, v = (self.params_[k] for k in PARAM_NAMES)
        if q <= 1:
            raise FitError("error.clv_model.gamma_gamma_q_le_1", q=q)
        x, m = _check_spend(frequency, monetary_value, repeat_only=False)
        individual_weight = p * x / (p * x + q - 1)
        population_mean = v * p / (q - 1)
        return (1 - individual_weight) * population_mean + individual_weight * m

    def customer_lifetime_value(
        self,
        purchase_model,
        frequency,
        recency,
        T,
        monetary_value,
        *,
        time: int,
        period_length: float,
        discount_rate: float,
        margin: float = 1.0,
    ) -> np.ndarray:
        """Discounted value of the next ``time`` periods of each customer.

        ``CLV = margin * sum_{i=1..time} E[spend] * (E[X(i L)] - E[X((i-1) L)]) / (1+d)^i``
        with ``L = period_length`` expressed in the time unit of ``recency`` and ``T``: there is
        no hidden conversion (monthly periods on daily data: ``period_length=30`` or
        ``30.4375``, on weekly data ``period_length=4.348``, as you choose).

        Parameters
        ----------
        purchase_model : BetaGeoModel
            A fitted purchase model with ``conditional_expected_number_of_purchases_up_to_time``.
        frequency, recency, T : array-like of shape (n_customers,)
            Customer histories in the purchase model's time unit.
        monetary_value : array-like of shape (n_customers,)
            Observed mean repeat spend (any value where frequency is 0).
        time : int
            Number of discounting periods in the horizon.
        period_length : float
            Length of one discounting period in the time unit of ``recency`` and ``T``.
        discount_rate : float
            Discount rate per period (e.g. 0.01 per month).
        margin : float, default=1.0
            Share of spend kept as profit.

        Returns
        -------
        ndarray of shape (n_customers,)
            Customer lifetime value over the horizon.
        """
        check_is_fitted(self, "params_")
        if not (isinstance(time, Integral) and time >= 1):
            raise InputError("error.clv_model.bad_option", name="time", value=time)
        for name, value, low in (("period_length", period_length, 0.0),
                                 ("discount_rate", discount_rate, -1.0)):
            if not (np.isfinite(value) and value > low):
                raise InputError("error.clv_model.bad_option", name=name, value=value)
        if not (np.isfinite(margin) and margin >= 0):
            raise InputError("error.clv_model.bad_option", name="margin", value=margin)
        spend = self.conditional_expected_average_profit(frequency, monetary_value)
        clv = np.zeros(len(spend))
        previous = np.zeros(len(spend))
        for i in range(1, time + 1):
            cumulative = purchase_model.conditional_expected_number_of_purchases_up_to_time(
                i * period_length, frequency, recency, T
            )
            clv += spend * (cumulative - previous) / (1 + discount_rate) ** i
            previous = cumulative
        return margin * clv


def _check_spend(frequency, monetary_value, *, repeat_only: bool):
    x = as_float_array(frequency, "frequency")
    m = as_float_array(monetary_value, "monetary_value")
    check_same_length(frequency=x, monetary_value=m)
    check_frequency(x)
    if repeat_only and (x == 0).any():
        row = int(np.argmax(x == 0))
        raise InputError("error.clv_model.spend_without_repeat", row=row,
                         count=int((x == 0).sum()))
    bad = (m <= 0) & (x > 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError("error.clv_model.nonpositive_spend", row=row, value=m[row])
    return x, m
