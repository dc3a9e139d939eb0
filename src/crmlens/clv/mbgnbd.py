"""MBG/NBD purchase and dropout model (Batislam, Denizel & Filiztekin 2007), fitted by ML.

BG/NBD lets a customer drop out only right after a repeat purchase, so a customer who never
bought again is certain to be alive. MBG/NBD adds a dropout chance right after the *first*
purchase (time 0) too, which makes one-time buyers who have been silent for long unlikely to
be alive. Every row, not only repeat buyers, therefore carries the "dropped out" branch of the
likelihood. Log space with an analytic gradient, on weighted rows, as in
:mod:`crmlens.clv.bgnbd`.
"""

from __future__ import annotations


import numpy as np
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1, xlogy
from sklearn.utils.validation import check_is_fitted

from crmlens.clv._fitting import (
    FitError,
    MaximumLikelihoodModel,
    check_params_finite,
    check_weights,
    fit_log_params,
    standard_errors,
    warm_start_weights,
)
from crmlens.clv.bgnbd import PARAM_NAMES, _check_history, _finite, _nonnegative_time
from crmlens.errors import InputError

MODEL = "MBG/NBD"


class _Summary:
    """Weighted rows prepared once for repeated likelihood evaluations (time already scaled).

    Frequency-only terms are summed per distinct frequency and ``log(alpha + time)`` is taken
    once per distinct time value; the softplus term is per row (every row has one here).
    """

    def __init__(self, frequency, recency, T, weights):
        keep = weights > 0
        x, tx, T, w = frequency[keep], recency[keep], T[keep], weights[keep]
        self.total_weight = float(w.sum())
        self.x_unique, self.x_index = np.unique(x, return_inverse=True)
        self.w_unique = np.bincount(self.x_index, weights=w)
        self.times, time_index = np.unique(np.concatenate([T, tx]), return_inverse=True)
        n_times = len(self.times)
        self.T_index, self.tx_index = time_index[: len(T)], time_index[len(T):]
        self.w_by_T = np.bincount(self.T_index, weights=w, minlength=n_times)
        self.wx_by_T = np.bincount(self.T_index, weights=w * x, minlength=n_times)
        self.x, self.w = x, w


def _loglik_grad(params: np.ndarray, s: _Summary) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its gradient in natural parameters (r, alpha, a, b).

    Per row, ``LL = A1 + A2 + A3 + log(1 + exp(d))`` with ``A2`` the BG/NBD term with ``b+x+1``
    in place of ``b+x``, ``A3 = -(r+x) log(alpha+T)`` and
    ``d = log a - log(b+x) + (r+x) (log(alpha+T) - log(alpha+t_x))`` for every row
    (``t_x = 0`` when ``x = 0``: the dropout right after the first purchase).
    """
    r, alpha, a, b = params
    xu, wu = s.x_unique, s.w_unique
    W = s.total_weight

    # A1 + A2: frequency-only terms.
    ll = float(wu @ (gammaln(r + xu) - gammaln(r) + gammaln(a + b) + gammaln(b + xu + 1)
                     - gammaln(b) - gammaln(a + b + xu + 1))) + W * r * np.log(alpha)
    psi_ab_x = digamma(a + b + xu + 1)
    g_r = float(wu @ (digamma(r + xu) - digamma(r))) + W * np.log(alpha)
    g_alpha = W * r / alpha
    g_a = float(wu @ (digamma(a + b) - psi_ab_x))
    g_b = float(wu @ (digamma(a + b) + digamma(b + xu + 1) - digamma(b) - psi_ab_x))

    # A3 from per-T aggregates.
    log_at = np.log(alpha + s.times)
    inv_at = 1.0 / (alpha + s.times)
    ll -= float(r * (s.w_by_T @ log_at) + s.wx_by_T @ log_at)
    g_r -= float(s.w_by_T @ log_at)
    g_alpha -= float(r * (s.w_by_T @ inv_at) + s.wx_by_T @ inv_at)

    # Every row: softplus(d) and its derivatives.
    x, w = s.x, s.w
    rx = r + x
    log_b = np.log(b + xu)[s.x_index]
    log_gap = log_at[s.T_index] - log_at[s.tx_index]
    d = np.log(a) - log_b + rx * log_gap
    e = np.exp(-np.abs(d))
    softplus = np.maximum(d, 0.0) + np.log1p(e)
    p_drop = np.where(d >= 0, 1.0, e) / (1.0 + e)
    wp = w * p_drop
    ll += float(w @ softplus)
    g_r += float(wp @ log_gap)
    g_alpha += float(wp @ (rx * (inv_at[s.T_index] - inv_at[s.tx_index])))
    g_a += float(wp.sum()) / a
    g_b -= float(wp @ np.exp(-log_b))
    return ll, np.array([g_r, g_alpha, g_a, g_b])


class ModifiedBetaGeoModel(MaximumLikelihoodModel):
    """MBG/NBD model of repeat purchases and dropout (Batislam, Denizel & Filiztekin 2007).

    While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
    right after the first purchase and after every repeat purchase they drop out with
    probability ``p ~ Beta(a, b)``. Unlike BG/NBD a customer without repeat purchases can be
    inactive, so P(alive) falls for one-time buyers who stay silent.

    Parameters
    ----------
    penalizer_coef : float, default=0.0
        L2 penalty on the parameters (with time scaled so the oldest customer has ``T = 1``, as
        in :class:`~crmlens.clv.bgnbd.BetaGeoModel`); 0 gives the plain ML estimate.
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
        Maximised total (weighted) log-likelihood, in the caller's time unit.
    n_iter_ : int
        Optimiser iterations.
    converged_ : bool
        Whether the optimiser met its tolerance (a fit that did not converge raises).
    n_customers_ : float
        Total weight (number of customers) fitted.
    """

    model_name = "mbgnbd"

    def fit(self, frequency, recency, T, sample_weight=None) -> ModifiedBetaGeoModel:
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

        Returns
        -------
        self : ModifiedBetaGeoModel
            The fitted model.
        """
        self._validate_params()
        frequency, recency, T = _check_history(frequency, recency, T)
        weights = check_weights(sample_weight, len(frequency))

        # Time scaled so the oldest customer has T = 1 (parameters of similar magnitude).
        t_max = float(T.max())
        scale = 1.0 / t_max if t_max > 0 else 1.0
        summary = _Summary(frequency, recency * scale, T * scale, weights)
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
            # Warm start from a sample of customers when the data is large (as BG/NBD does).
            x0 = np.full(4, 0.1)
            sample = warm_start_weights(weights)
            if sample is not None:
                rows = _Summary(frequency, recency * scale, T * scale, sample)
                x0 = fit_log_params(objective_on(rows), x0=x0, total_weight=rows.total_weight,
                                    tol=max(self.tol, 1e-6), max_iter=self.max_iter,
                                    model=MODEL)[0]
            log_params, _, n_iter, converged, message = fit_log_params(
                objective_on(summary), x0=x0, total_weight=W, tol=self.tol,
                max_iter=self.max_iter, model=MODEL,
            )
        scaled = np.exp(log_params)
        check_params_finite(scaled, MODEL, PARAM_NAMES)
        if not converged:
            raise FitError("error.clv_model.not_converged", model=MODEL, iterations=n_iter,
                           message=message)
        se, cov = standard_errors(total_gradient, scaled, model=MODEL)
        unscale = np.array([1.0, 1.0 / scale, 1.0, 1.0])
        params = scaled * unscale
        self.params_ = dict(zip(PARAM_NAMES, params.tolist(), strict=True))
        self.se_ = dict(zip(PARAM_NAMES, (se * unscale).tolist(), strict=True))
        self.covariance_ = cov * np.outer(unscale, unscale)
        self.log_likelihood_ = float(_loglik_grad(params, _Summary(frequency, recency, T,
                                                                   weights))[0])
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_customers_ = W
        return self

    # ------------------------------------------------------------------ predictions
    def _params(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """Probability that a customer with history ``(frequency, recency, T)`` is alive.

        Batislam et al. (2007), appendix eq. (5):
        ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))``, below 1 for customers without
        repeat purchases too.

        Parameters
        ----------
        frequency, recency, T : array-like of shape (n_customers,)
            Customer histories, in the time unit used for fitting.

        Returns
        -------
        ndarray of shape (n_customers,)
            ``P(alive)`` at time ``T``.
        """
        r, alpha, a, b = self._params()
        x, tx, T = _check_history(frequency, recency, T)
        return _finite(_p_alive(r, alpha, a, b, x, tx, T), "conditional_probability_alive")

    def conditional_expected_number_of_purchases_up_to_time(
        self, t, frequency, recency, T
    ) -> np.ndarray:
        """Expected repeat purchases in ``(T, T + t]`` given the history (Wagner & Hoppe 2008).

        Parameters
        ----------
        t : float or array-like
            Horizon length(s), broadcast against the histories.
        frequency, recency, T : array-like of shape (n_customers,)
            Customer histories, in the time unit used for fitting.

        Returns
        -------
        ndarray
            Expected number of purchases per customer.
        """
        r, alpha, a, b = self._params()
        x, tx, T = _check_history(frequency, recency, T)
        t = _nonnegative_time(t)
        return _conditional_expected(r, alpha, a, b, t, x, tx, T)

    def expected_number_of_purchases_up_to_time(self, t) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a new customer.

        ``b/(a-1) (1 - 2F1(r, b+1; a+b; t/(alpha+t)) (alpha/(alpha+t))^r)``, the conditional
        expectation at ``x = t_x = T = 0``.

        Parameters
        ----------
        t : float or array-like
            Time(s) since the first purchase.

        Returns
        -------
        ndarray
            Expected number of repeat purchases.
        """
        r, alpha, a, b = self._params()
        t = _nonnegative_time(t)
        zero = np.zeros(1)
        return _conditional_expected(r, alpha, a, b, t, zero, zero, zero)

    def probability_of_n_purchases_up_to_time(self, t, n) -> np.ndarray:
        """``P(X(t) = n)``: probability of ``n`` repeat purchases in ``(0, t]``.

        With ``j`` the number of purchases after which the customer drops out (``j = 0``: right
        after the first), ``X(t) = n`` when ``j > n`` and ``N(t) = n``, or ``j = n`` and
        ``N(t) >= n``; ``N(t)`` is negative binomial. Integrating ``p`` over its beta
        distribution gives ``B(a, b+n+1)/B(a, b) NB(n) + B(a+1, b+n)/B(a, b) P(N(t) >= n)``.

        Parameters
        ----------
        t : float or array-like
            Time(s) since the first purchase.
        n : int or array-like of int
            Number(s) of repeat purchases, broadcast against ``t``.

        Returns
        -------
        ndarray
            The probabilities.
        """
        r, alpha, a, b = self._params()
        t = _nonnegative_time(t)
        n = np.asarray(n, dtype=float)
        if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.round(n)):
            raise InputError("error.clv_model.bad_horizon", name="n")
        p_buy = t / (alpha + t)
        log_first = (betaln(a, b + n + 1) - betaln(a, b) + gammaln(r + n) - gammaln(r)
                     - gammaln(n + 1) + r * (np.log(alpha) - np.log(alpha + t))
                     + xlogy(n, p_buy))
        n1 = np.maximum(n, 1)
        # P(N(t) >= n) is the NB survival function I_{p_buy}(n, r) (1 for n = 0).
        survival = np.where(n > 0, betainc(n1, r, p_buy), 1.0)
        second = np.exp(betaln(a + 1, b + n) - betaln(a, b)) * survival
        return _finite(np.exp(log_first) + second, "probability_of_n_purchases_up_to_time")


def _p_alive(r, alpha, a, b, x, tx, T):
    log_div = (r + x) * (np.log(alpha + T) - np.log(alpha + tx)) + np.log(a) - np.log(b + x)
    return expit(-log_div)


def _conditional_expected(r, alpha, a, b, t, x, tx, T):
    """Wagner & Hoppe (2008) with the 2F1 term in Euler-transformed, log form.

    ``2F1(r+x, b+x+1; a+b+x; z) (1-z)^(r+x) = (1-z)^(a-1) 2F1(a+b-r, a-1; a+b+x; z)``: the
    transformed parameters do not grow with ``x``, which keeps scipy's ``hyp2f1`` out of its
    overflow regions; where it still fails the untransformed form is used.
    """
    with np.errstate(all="ignore"):
        log_1mz = np.log(alpha + T) - np.log(alpha + T + t)
        z = t / (alpha + T + t)
        c = a + b + x
        log_hyp = np.log(hyp2f1(a + b - r, a - 1, c, z)) + (a - 1) * log_1mz
        bad = ~np.isfinite(log_hyp)
        if bad.any():
            direct = np.log(hyp2f1(r + x, b + x + 1, c, z)) + (r + x) * log_1mz
            log_hyp = np.where(bad, direct, log_hyp)
        expected = (c / (a - 1)) * -np.expm1(log_hyp) * _p_alive(r, alpha, a, b, x, tx, T)
    return _finite(expected, "conditional_expected_number_of_purchases_up_to_time")
