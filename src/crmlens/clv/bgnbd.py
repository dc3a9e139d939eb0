"""BG/NBD purchase and dropout model (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

The log-likelihood is summed over *weighted* rows, so callers that compress customers to unique
``(frequency, recency, T)`` rows pay for distinct rows, not customers; the terms that depend on
frequency alone are further summed over distinct frequencies. Everything is in log space
(``gammaln``, ``logaddexp``) with an analytic gradient.
"""

from __future__ import annotations


import numpy as np
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1, xlogy
from sklearn.utils.validation import check_is_fitted

from crmlens.clv._fitting import (
    FitError,
    MaximumLikelihoodModel,
    as_float_array,
    check_frequency,
    check_params_finite,
    check_recency_T,
    check_same_length,
    check_weights,
    fit_log_params,
    standard_errors,
    warm_start_weights,
)
from crmlens.clv.bgnbd_covariates import clear_covariates, customer_params, fit_with_covariates
from crmlens.errors import InputError

PARAM_NAMES = ("r", "alpha", "a", "b")


class _Summary:
    """Weighted rows prepared once for repeated likelihood evaluations.

    Per-row work in the likelihood is reduced to what truly depends on the row: logarithms of
    ``alpha + time`` are taken once per distinct time value and gathered, and every sum that
    does not involve the row's mixture weight is pre-aggregated per distinct value. Times are
    multiplied by ``scale`` (the fit scales the oldest customer to ``T = 1``); the per-row
    buffers are allocated once, so an evaluation allocates nothing of the rows' size.
    """

    def __init__(self, frequency, recency, T, weights, scale: float = 1.0):
        keep = weights > 0
        x, tx, T, w = frequency[keep], recency[keep], T[keep], weights[keep]
        self.total_weight = float(w.sum())
        # Frequency-only terms: summed over distinct frequencies.
        self.x_unique, x_index = _distinct(x)
        self.w_unique = np.bincount(x_index, weights=w)
        # Distinct time values (T and recency share one table).
        times, time_index = _distinct(np.concatenate([T, tx]))
        self.times = times * scale
        n_times = len(self.times)
        T_index, tx_index = time_index[: len(T)], time_index[len(T):]
        # Sums over all rows of w * log(alpha+T) and w * (r+x) / (alpha+T), per distinct T.
        self.w_by_T = np.bincount(T_index, weights=w, minlength=n_times)
        self.wx_by_T = np.bincount(T_index, weights=w * x, minlength=n_times)
        # Repeat buyers, per row.
        repeat = x > 0
        self.x = x[repeat]
        self.w = w[repeat]
        self.x_index = x_index[repeat]
        self.T_index = T_index[repeat]
        self.tx_index = tx_index[repeat]
        n = len(self.x)
        self.buffers = tuple(np.empty(n) for _ in range(4))


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's index among them (``np.unique`` semantics).

    Whole numbers in a moderate range (frequencies, and times in days or weeks) are counted
    with ``bincount`` in linear time instead of being sorted.
    """
    if len(values) and values.min() >= 0 and values.max() < 1e7:
        whole = values.astype(np.int64)
        if np.array_equal(whole, values):
            present = np.bincount(whole) > 0
            position = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(float), position[whole]
    return np.unique(values, return_inverse=True)


def _loglik_grad(params: np.ndarray, s: _Summary) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its gradient in natural parameters (r, alpha, a, b).

    Per row, ``LL = A1 + A2 + A3 + log(1 + exp(d))`` with ``A3 = -(r+x) log(alpha+T)`` and
    ``d = A4 - A3 = log a - log(b+x-1) + (r+x) (log(alpha+T) - log(alpha+t_x))`` (``d`` only
    for repeat buyers); ``expit(d)`` is the weight of the "dropped out" branch.
    """
    r, alpha, a, b = params
    xu, wu = s.x_unique, s.w_unique
    W = s.total_weight

    # A1 + A2: frequency-only terms.
    ll = float(wu @ (gammaln(r + xu) - gammaln(r) + gammaln(a + b) + gammaln(b + xu)
                     - gammaln(b) - gammaln(a + b + xu))) + W * r * np.log(alpha)
    psi_ab_x = digamma(a + b + xu)
    g_r = float(wu @ (digamma(r + xu) - digamma(r))) + W * np.log(alpha)
    g_alpha = W * r / alpha
    g_a = float(wu @ (digamma(a + b) - psi_ab_x))
    g_b = float(wu @ (digamma(a + b) + digamma(b + xu) - digamma(b) - psi_ab_x))

    # A3 for every row, from per-T aggregates.
    log_at = np.log(alpha + s.times)
    inv_at = 1.0 / (alpha + s.times)
    ll -= float(r * (s.w_by_T @ log_at) + s.wx_by_T @ log_at)
    g_r -= float(s.w_by_T @ log_at)
    g_alpha -= float(r * (s.w_by_T @ inv_at) + s.wx_by_T @ inv_at)

    # Repeat buyers: softplus(d) = max(d, 0) + log1p(e) and P(dropped out) = expit(d) =
    # exp(min(d, 0)) / (1 + e), with e = exp(-|d|) <= 1 (no overflow). Written with numpy's
    # SIMD exp/log1p and in-place buffers: logaddexp and expit are 5-20x slower per value.
    if len(s.x):
        gap, d, rx, e = s.buffers
        log_b_x = np.log(b + xu - 1, where=xu > 0, out=np.zeros_like(xu))
        np.subtract(log_at[s.T_index], log_at[s.tx_index], out=gap)  # log(a+T) - log(a+tx)
        np.add(s.x, r, out=rx)
        np.multiply(rx, gap, out=d)
        d += (np.log(a) - log_b_x)[s.x_index]
        np.abs(d, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        softplus = np.log1p(e)
        softplus += np.maximum(d, 0.0)
        ll += float(s.w @ softplus)
        p_drop = np.minimum(d, 0.0, out=softplus)
        np.exp(p_drop, out=p_drop)
        e += 1.0
        p_drop /= e
        p_drop *= s.w                                               # w * P(dropped out)
        g_r += float(p_drop @ gap)
        np.subtract(inv_at[s.T_index], inv_at[s.tx_index], out=gap)
        gap *= rx
        g_alpha += float(p_drop @ gap)
        g_a += float(p_drop.sum()) / a
        g_b -= float(np.bincount(s.x_index, weights=p_drop, minlength=len(xu))
                     @ np.exp(-log_b_x))
    return ll, np.array([g_r, g_alpha, g_a, g_b])


def _check_history(frequency, recency, T):
    frequency = as_float_array(frequency, "frequency")
    recency = as_float_array(recency, "recency")
    T = as_float_array(T, "T")
    check_same_length(frequency=frequency, recency=recency, T=T)
    check_frequency(frequency)
    check_recency_T(frequency, recency, T)
    return frequency, recency, T


def _nonnegative_time(t, name: str = "t") -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InputError("error.clv_model.bad_horizon", name=name)
    return t


class BetaGeoModel(MaximumLikelihoodModel):
    """BG/NBD model of repeat purchases and dropout (Fader, Hardie & Lee 2005).

    While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
    after every repeat purchase they drop out with probability ``p ~ Beta(a, b)``. A customer
    without repeat purchases is assumed alive (they can only drop out right after a purchase).

    Parameters
    ----------
    penalizer_coef : float, default=0.0
        L2 penalty on the parameters (with time scaled so the oldest customer has ``T = 1``, as
        lifetimes does); 0 gives the plain maximum-likelihood estimate.
    tol : float, default=1e-8
        Convergence tolerance on the gradient of the mean log-likelihood (log-parameters).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict of str to float
        ``r``, ``alpha`` (in the time unit of ``recency`` and ``T``), ``a``, ``b``.
    se_ : dict of str to float
        Standard errors from the inverse Hessian of the log-likelihood.
    covariance_ : ndarray of shape (4, 4)
        Covariance matrix of ``(r, alpha, a, b)``.
    log_likelihood_ : float
        Maximised total (weighted) log-likelihood.
    n_iter_ : int
        Optimiser iterations.
    converged_ : bool
        Whether the optimiser met its tolerance (a fit that did not converge raises).
    n_customers_ : float
        Total weight (number of customers) fitted.
    """

    model_name = "bgnbd"

    def fit(self, frequency, recency, T, sample_weight=None, *, purchase_covariates=None,
            dropout_covariates=None) -> BetaGeoModel:
        """Estimate ``r, alpha, a, b`` by maximum likelihood.

        Parameters
        ----------
        frequency : array-like of shape (n_rows,)
            Repeat purchases (non-negative integers).
        recency : array-like of shape (n_rows,)
            Time of the last repeat purchase since the first purchase (0 if none).
        T : array-like of shape (n_rows,)
            Age: time from the first purchase to the end of the calibration period.
        sample_weight : array-like of shape (n_rows,), default=None
            Number of customers sharing each row (1 each when omitted).
        purchase_covariates : array-like of shape (n_rows, k1), default=None
            Time-invariant covariates of the purchase rate: ``alpha_i = alpha0 exp(-gamma1 .
            x_i)`` (Fader & Hardie 2007 note); DataFrame columns name the coefficients, else
            ``x0, x1, ...``. Learned: ``purchase_coefficients_``, ``purchase_coefficient_se_``.
        dropout_covariates : array-like of shape (n_rows, k2), default=None
            Covariates of dropout: ``a_i = a0 exp(gamma2 . z_i)``, ``b_i = b0 exp(gamma3 . z_i)``.
            Learned: ``dropout_coefficients_`` (keys ``a:name`` and ``b:name``) and
            ``dropout_coefficient_se_``. With covariates, ``params_`` holds the baseline
            ``r, alpha0, a0, b0`` (a customer whose covariates are all 0); see
            :mod:`crmlens.clv.bgnbd_covariates`.

        Returns
        -------
        self : BetaGeoModel
            The fitted model.
        """
        self._validate_params()
        frequency, recency, T = _check_history(frequency, recency, T)
        weights = check_weights(sample_weight, len(frequency))
        if purchase_covariates is not None or dropout_covariates is not None:
            return fit_with_covariates(self, frequency, recency, T, weights, purchase_covariates,
                                       dropout_covariates)
        clear_covariates(self)

        # Time scaled so the oldest customer has T = 1: parameters of similar magnitude help
        # the optimiser; alpha is scaled back at the end.
        t_max = float(T.max())
        scale = 1.0 / t_max if t_max > 0 else 1.0
        summary = _Summary(frequency, recency, T, weights, scale=scale)
        W = summary.total_weight
        c = self.penalizer_coef

        def objective_on(rows: _Summary):
            def objective(log_params):
                params = np.exp(log_params)
                ll, grad = _loglik_grad(params, rows)
                value = -ll / rows.total_weight + c * float(params @ params)
                return value, -grad * params / rows.total_weight + 2 * c * params**2
            return objective

        def total_gradient(params):
            return -_loglik_grad(params, summary)[1] + 2 * c * W * params

        with np.errstate(all="ignore"):
            x0 = np.full(4, 0.1)
            sample = warm_start_weights(weights)
            if sample is not None:
                rows = _Summary(frequency, recency, T, sample, scale=scale)
                x0 = fit_log_params(objective_on(rows), x0=x0, total_weight=rows.total_weight,
                                    tol=max(self.tol, 1e-6), max_iter=self.max_iter,
                                    model="BG/NBD")[0]
            log_params, _, n_iter, converged, message = fit_log_params(
                objective_on(summary), x0=x0, total_weight=W, tol=self.tol,
                max_iter=self.max_iter, model="BG/NBD",
            )
        scaled = np.exp(log_params)
        check_params_finite(scaled, "BG/NBD", PARAM_NAMES)
        if not converged:
            raise FitError("error.clv_model.not_converged", model="BG/NBD", iterations=n_iter,
                           message=message)
        se, cov = standard_errors(total_gradient, scaled, model="BG/NBD")
        unscale = np.array([1.0, 1.0 / scale, 1.0, 1.0])
        params = scaled * unscale
        self.params_ = dict(zip(PARAM_NAMES, params.tolist(), strict=True))
        self.se_ = dict(zip(PARAM_NAMES, (se * unscale).tolist(), strict=True))
        self.covariance_ = cov * np.outer(unscale, unscale)
        # In the caller's time unit: each of a customer's x purchase-time densities is
        # divided by the scale, so the log-likelihood shifts by log(scale) * sum(w * x).
        self.log_likelihood_ = float(_loglik_grad(scaled, summary)[0]
                                     + np.log(scale) * float(weights @ frequency))
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_customers_ = W
        return self

    # ------------------------------------------------------------------ predictions
    def _params(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def conditional_probability_alive(self, frequency, recency, T, *, purchase_covariates=None,
                                      dropout_covariates=None) -> np.ndarray:
        """Probability that a customer with history ``(frequency, recency, T)`` is alive.

        Parameters
        ----------
        frequency, recency, T : array-like of shape (n_customers,)
            Customer histories, in the time unit used for fitting.
        purchase_covariates, dropout_covariates : array-like (n_customers, k), default=None
            The covariates the model was fitted with, one row per customer (DataFrames are
            matched by column name); required exactly when the model was fitted with them.

        Returns
        -------
        ndarray of shape (n_customers,)
            ``P(alive)``; 1 for customers without repeat purchases.
        """
        r, alpha, a, b = self._params()
        x, tx, T = _check_history(frequency, recency, T)
        r, alpha, a, b = customer_params(self, purchase_covariates, dropout_covariates, len(x))
        return _p_alive(r, alpha, a, b, x, tx, T)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t, frequency, recency, T, *, purchase_covariates=None, dropout_covariates=None
    ) -> np.ndarray:
        """Expected repeat purchases in ``(T, T + t]`` given the history (FHL 2005, eq. 10).

        Parameters
        ----------
        t : float or array-like
            Horizon length(s), broadcast against the histories.
        frequency, recency, T : array-like of shape (n_customers,)
            Customer histories, in the time unit used for fitting.
        purchase_covariates, dropout_covariates : array-like (n_customers, k), default=None
            The covariates the model was fitted with, one row per customer (DataFrames are
            matched by column name); required exactly when the model was fitted with them.

        Returns
        -------
        ndarray
            Expected number of purchases per customer.
        """
        r, alpha, a, b = self._params()
        x, tx, T = _check_history(frequency, recency, T)
        t = _nonnegative_time(t)
        r, alpha, a, b = customer_params(self, purchase_covariates, dropout_covariates, len(x))
        return _conditional_expected(r, alpha, a, b, t, x, tx, T)

    def expected_number_of_purchases_up_to_time(self, t, *, purchase_covariates=None,
                                                dropout_covariates=None) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a new customer (FHL 2005, eq. 9).

        Parameters
        ----------
        t : float or array-like
            Time(s) since the first purchase.
        purchase_covariates, dropout_covariates : array-like (n_customers, k), default=None
            The covariates the model was fitted with, one row per customer (DataFrames are
            matched by column name); required exactly when the model was fitted with them.
            With covariates, ``t`` is broadcast against the customers.

        Returns
        -------
        ndarray
            Expected number of repeat purchases.
        """
        r, alpha, a, b = self._params()
        t = _nonnegative_time(t)
        r, alpha, a, b = customer_params(self, purchase_covariates, dropout_covariates, None)
        zero = np.zeros(1)
        return _conditional_expected(r, alpha, a, b, t, zero, zero, zero)

    def probability_of_n_purchases_up_to_time(self, t, n, *, purchase_covariates=None,
                                              dropout_covariates=None) -> np.ndarray:
        """``P(X(t) = n)``: probability of ``n`` repeat purchases in ``(0, t]`` (FHL 2005, eq. 8).

        Parameters
        ----------
        t : float or array-like
            Time(s) since the first purchase.
        n : int or array-like of int
            Number(s) of repeat purchases, broadcast against ``t``.
        purchase_covariates, dropout_covariates : array-like (n_customers, k), default=None
            The covariates the model was fitted with, one row per customer (DataFrames are
            matched by column name); required exactly when the model was fitted with them.
            With covariates, ``t`` and ``n`` are broadcast against the customers.

        Returns
        -------
        ndarray
            The probabilities.
        """
        r, alpha, a, b = self._params()
        t = _nonnegative_time(t)
        r, alpha, a, b = customer_params(self, purchase_covariates, dropout_covariates, None)
        n = np.asarray(n, dtype=float)
        if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.round(n)):
            raise InputError("error.clv_model.bad_horizon", name="n")
        p_buy = t / (alpha + t)
        log_first = (betaln(a, b + n) - betaln(a, b) + gammaln(r + n) - gammaln(r)
                     - gammaln(n + 1) + r * (np.log(alpha) - np.log(alpha + t))
                     + xlogy(n, p_buy))
        n1 = np.maximum(n, 1)
        # 1 - sum_{j<n} NB(j; r, alpha/(alpha+t)) is the NB survival function I_{p_buy}(n, r).
        second = np.where(n > 0, np.exp(betaln(a + 1, b + n1 - 1) - betaln(a, b))
                          * betainc(n1, r, p_buy), 0.0)
        return _finite(np.exp(log_first) + second, "probability_of_n_purchases_up_to_time")


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise FitError("error.clv_model.prediction_not_finite", what=what,
                       count=int((~np.isfinite(values)).sum()))
    return values


def _p_alive(r, alpha, a, b, x, tx, T):
    log_div = (r + x) * (np.log(alpha + T) - np.log(alpha + tx)) + np.log(a) - np.log(
        b + np.maximum(x, 1) - 1
    )
    return np.where(x > 0, expit(-log_div), 1.0)


def _one_minus(hyp: np.ndarray, log_factor: np.ndarray) -> np.ndarray:
    """``1 - hyp * exp(log_factor)``, with ``expm1`` precision when the product is positive.

    The 2F1 value is negative when its third parameter is (``a + b < 1`` and ``x = 0``), so the
    product is formed from ``log|hyp|`` and the sign; a non-finite ``hyp`` gives NaN.
    """
    log_value = np.log(np.abs(hyp)) + log_factor
    return np.where(hyp > 0, -np.expm1(log_value), 1.0 + np.exp(log_value))


def _conditional_expected(r, alpha, a, b, t, x, tx, T):
    """Equation (10) of FHL 2005 with the 2F1 term in Euler-transformed, log form.

    ``2F1(r+x, b+x; a+b+x-1; z) (1-z)^(r+x) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``:
    the transformed parameters do not grow with ``x``, which keeps scipy's ``hyp2f1`` out of
    its overflow regions; where it still fails the untransformed form is used.
    """
    with np.errstate(all="ignore"):
        log_1mz = np.log(alpha + T) - np.log(alpha + T + t)
        z = t / (alpha + T + t)
        c = a + b + x - 1
        one_minus = _one_minus(hyp2f1(a + b - 1 - r, a - 1, c, z), (a - 1) * log_1mz)
        bad = ~np.isfinite(one_minus)
        if bad.any():
            direct = _one_minus(hyp2f1(r + x, b + x, c, z), (r + x) * log_1mz)
            one_minus = np.where(bad, direct, one_minus)
        expected = (c / (a - 1)) * one_minus * _p_alive(r, alpha, a, b, x, tx, T)
    return _finite(expected, "conditional_expected_number_of_purchases_up_to_time")
