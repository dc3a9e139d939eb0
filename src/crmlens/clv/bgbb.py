"""BG/BB discrete-time purchase and dropout model (Fader, Hardie & Shang 2010), fitted by ML.

Time is a sequence of transaction opportunities (periods). ``T`` is ``n``, the number of
repeat-transaction opportunities after the first purchase; ``recency`` is ``t_x``, the
opportunity of the last transaction; ``frequency`` is ``x``, the opportunities with a
transaction. The likelihood of a row is the probability of its history, a sum of
``n - t_x + 1`` terms (FHS 2010, eq. 5), taken with a log-sum-exp. Its log-likelihood is the
log of a *probability*, so it is not comparable with the log-*density* of the
continuous-time models (BG/NBD, MBG/NBD, Pareto/NBD), nor are AIC/BIC across the two kinds.
"""

from __future__ import annotations


import numpy as np
from scipy.special import betaln, digamma, gammaln
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
from crmlens.clv.bgnbd import _check_history, _finite
from crmlens.errors import InputError

PARAM_NAMES = ("alpha", "beta", "gamma", "delta")
MODEL = "BG/BB"


class _Summary:
    """Weighted rows and the (row, opportunity) pairs of the likelihood's sums, built once.

    Row ``i`` has the "alive throughout" term and one term per opportunity
    ``k = t_x .. n-1`` at which the customer may have dropped out; the pairs are laid out
    row after row so per-row sums are ``reduceat`` segments. Every ``gammaln`` is evaluated on
    an integer grid ``0 .. max(n) + 1`` and gathered, so an evaluation costs
    ``O(rows + sum(n - t_x))`` gathers and ``O(max n)`` special functions.
    """

    def __init__(self, frequency, recency, T, weights):
        keep = weights > 0
        x, tx, n = (a[keep].astype(np.int64) for a in (frequency, recency, T))
        self.x, self.n, self.w = x, n, weights[keep]
        self.n_minus_x = n - x
        self.total_weight = float(self.w.sum())
        self.grid = np.arange(int(n.max()) + 2, dtype=float)
        gap = n - tx
        self.has_pairs = gap > 0
        self.starts = (np.cumsum(gap) - gap)[self.has_pairs]
        self.pair_row = np.repeat(np.arange(len(x)), gap)
        offset = np.arange(len(self.pair_row)) - (np.cumsum(gap) - gap)[self.pair_row]
        self.pair_k = tx[self.pair_row] + offset
        self.pair_k_minus_x = self.pair_k - x[self.pair_row]


def _row_terms(params, s: _Summary):
    """Per-row log-likelihood and the softmax weights of its terms (alive; dropout at k)."""
    alpha, beta, gamma, delta = params
    m = s.grid
    lg_b, lg_ab = gammaln(beta + m), gammaln(alpha + beta + m)
    lg_d, lg_gd = gammaln(delta + m), gammaln(gamma + delta + m)
    # log B(alpha+x, beta+k-x) B(gamma+1, delta+k) without the row's lgamma(alpha+x) and the
    # normalising constants (added in ``common``).
    by_k = lg_d - lg_ab
    u_alive = lg_b[s.n_minus_x] + by_k[s.n] - lg_gd[s.n] + gammaln(gamma)
    u_pairs = (lg_b[s.pair_k_minus_x] + by_k[s.pair_k] - lg_gd[s.pair_k + 1]
               + gammaln(gamma + 1))
    top = u_alive.copy()
    if len(u_pairs):
        top[s.has_pairs] = np.maximum(top[s.has_pairs], np.maximum.reduceat(u_pairs, s.starts))
    e_alive = np.exp(u_alive - top)
    e_pairs = np.exp(u_pairs - top[s.pair_row])
    total = e_alive.copy()
    if len(u_pairs):
        total[s.has_pairs] += np.add.reduceat(e_pairs, s.starts)
    common = gammaln(alpha + s.x) - betaln(alpha, beta) - betaln(gamma, delta)
    row_ll = common + top + np.log(total)
    return row_ll, e_alive / total, e_pairs / total[s.pair_row]


def _loglik_grad(params: np.ndarray, s: _Summary) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its gradient in natural parameters (alpha, beta, gamma, delta).

    The derivative of a log-sum-exp is the softmax-weighted derivative of its terms; each
    term's derivative is a digamma of ``alpha+beta+k``, ``beta+k-x``, ``delta+k`` or
    ``gamma+delta+k+1``, so the weights are summed per grid value (``bincount``) and dotted
    with digamma on the grid.
    """
    alpha, beta, gamma, delta = params
    row_ll, s_alive, s_pairs = _row_terms(params, s)
    w, W = s.w, s.total_weight
    size = len(s.grid)
    wa = w * s_alive
    wp = w[s.pair_row] * s_pairs
    # Weight per grid value of each index: k (n for the alive term), k - x, and the
    # gamma+delta index (n for the alive term, k+1 for a dropout term).
    by_k = np.bincount(s.n, wa, size) + np.bincount(s.pair_k, wp, size)
    by_k_minus_x = (np.bincount(s.n_minus_x, wa, size)
                    + np.bincount(s.pair_k_minus_x, wp, size))
    by_gd = np.bincount(s.n, wa, size) + np.bincount(s.pair_k + 1, wp, size)
    m = s.grid
    psi_ab_k = digamma(alpha + beta + m)
    psi_gd_k = digamma(gamma + delta + m)
    psi_ab, psi_gd = digamma(alpha + beta), digamma(gamma + delta)
    g_alpha = (float(w @ digamma(alpha + s.x)) + W * (psi_ab - digamma(alpha))
               - by_k @ psi_ab_k)
    g_beta = W * (psi_ab - digamma(beta)) + by_k_minus_x @ digamma(beta + m) - by_k @ psi_ab_k
    g_gamma = (W * (psi_gd - digamma(gamma)) + float(wa.sum()) * digamma(gamma)
               + float(wp.sum()) * digamma(gamma + 1) - by_gd @ psi_gd_k)
    g_delta = W * (psi_gd - digamma(delta)) + by_k @ digamma(delta + m) - by_gd @ psi_gd_k
    return float(w @ row_ll), np.array([g_alpha, g_beta, g_gamma, g_delta])


def _check_periods(frequency, recency, T):
    """The continuous-time checks plus whole periods and ``frequency <= recency <= T``."""
    x, tx, n = _check_history(frequency, recency, T)
    for name, values in (("recency", tx), ("T", n)):
        fractional = values != np.round(values)
        if fractional.any():
            row = int(np.argmax(fractional))
            raise InputError("error.clv_bgbb.fractional_period", column=name, row=row,
                             value=values[row])
    above = x > n
    if above.any():
        row = int(np.argmax(above))
        raise InputError("error.clv_bgbb.frequency_above_T", row=row, frequency=x[row], T=n[row],
                         count=int(above.sum()))
    above = x > tx
    if above.any():
        row = int(np.argmax(above))
        raise InputError("error.clv_bgbb.frequency_above_recency", row=row, frequency=x[row],
                         recency=tx[row])
    return x, tx, n


def _whole_periods(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(
        values != np.round(values)
    ):
        raise InputError("error.clv_bgbb.bad_periods", name=name)
    return values


class BetaGeoBetaBinomModel(MaximumLikelihoodModel):
    """BG/BB model of discrete-time repeat purchases and dropout (Fader, Hardie & Shang 2010).

    At each transaction opportunity an alive customer buys with probability
    ``p ~ Beta(alpha, beta)``; before each opportunity they drop out for good with probability
    ``theta ~ Beta(gamma, delta)``.

    Parameters
    ----------
    penalizer_coef : float, default=0.0
        L2 penalty on the parameters; 0 gives the plain maximum-likelihood estimate.
    tol : float, default=1e-8
        Convergence tolerance on the gradient of the mean log-likelihood (log-parameters).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict of str to float
        ``alpha``, ``beta``, ``gamma``, ``delta`` (dimensionless: time is counted in periods).
    se_ : dict of str to float
        Standard errors from the inverse Hessian of the log-likelihood.
    covariance_ : ndarray of shape (4, 4)
        Covariance matrix of ``(alpha, beta, gamma, delta)``.
    log_likelihood_ : float
        Maximised total (weighted) log-likelihood. It is the log of a probability (discrete
        time), not comparable with the continuous-time models' log-density.
    n_iter_ : int
        Optimiser iterations.
    converged_ : bool
        Whether the optimiser met its tolerance (a fit that did not converge raises).
    n_customers_ : float
        Total weight (number of customers) fitted.
    """

    model_name = "bgbb"

    def fit(self, frequency, recency, T, sample_weight=None) -> BetaGeoBetaBinomModel:
        """Estimate ``alpha, beta, gamma, delta`` by maximum likelihood.

        Parameters
        ----------
        frequency : array-like of shape (n_rows,)
            ``x``: repeat-transaction opportunities with a transaction (whole numbers).
        recency : array-like of shape (n_rows,)
            ``t_x``: the opportunity of the last transaction (0 without repeats).
        T : array-like of shape (n_rows,)
            ``n``: repeat-transaction opportunities observed (whole periods after the first
            purchase period).
        sample_weight : array-like of shape (n_rows,), default=None
            Number of customers sharing each row (1 each when omitted).

        Returns
        -------
        self : BetaGeoBetaBinomModel
            The fitted model.
        """
        self._validate_params()
        frequency, recency, T = _check_periods(frequency, recency, T)
        weights = check_weights(sample_weight, len(frequency))
        summary = _Summary(frequency, recency, T, weights)
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
            x0 = np.zeros(4)
            sample = warm_start_weights(weights)
            if sample is not None:
                rows = _Summary(frequency, recency, T, sample)
                x0 = fit_log_params(objective_on(rows), x0=x0, total_weight=rows.total_weight,
                                    tol=max(self.tol, 1e-6), max_iter=self.max_iter,
                                    model=MODEL)[0]
            log_params, _, n_iter, converged, message = fit_log_params(
                objective_on(summary), x0=x0, total_weight=W, tol=self.tol,
                max_iter=self.max_iter, model=MODEL,
            )
        params = np.exp(log_params)
        check_params_finite(params, MODEL, PARAM_NAMES)
        if not converged:
            raise FitError("error.clv_model.not_converged", model=MODEL, iterations=n_iter,
                           message=message)
        se, cov = standard_errors(total_gradient, params, model=MODEL)
        self.params_ = dict(zip(PARAM_NAMES, params.tolist(), strict=True))
        self.se_ = dict(zip(PARAM_NAMES, se.tolist(), strict=True))
        self.covariance_ = cov
        self.log_likelihood_ = float(_loglik_grad(params, summary)[0])
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_customers_ = W
        return self

    # ------------------------------------------------------------------ predictions
    def _params(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        p = self.params_
        return p["alpha"], p["beta"], p["gamma"], p["delta"]

    def _history_loglik(self, frequency, recency, T):
        x, tx, n = _check_periods(frequency, recency, T)
        row_ll, _, _ = _row_terms(np.array(self._params()), _Summary(x, tx, n, np.ones(len(x))))
        return x, n, row_ll

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """Probability that the customer is alive at the *next* opportunity, ``n + 1``.

        FHS 2010, eq. (11): ``B(alpha+x, beta+n-x)/B(alpha, beta) B(gamma, delta+n+1) /
        B(gamma, delta) / L``. (lifetimes' ``conditional_probability_alive(m, ...)`` is alive at
        ``n + m``; this is ``m = 1``.)

        Parameters
        ----------
        frequency, recency, T : array-like of shape (n_customers,)
            Histories ``(x, t_x, n)`` in whole periods.

        Returns
        -------
        ndarray of shape (n_customers,)
            ``P(alive at opportunity n + 1)``.
        """
        alpha, beta, gamma, delta = self._params()
        x, n, row_ll = self._history_loglik(frequency, recency, T)
        log_p = (betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
                 + betaln(gamma, delta + n + 1) - betaln(gamma, delta) - row_ll)
        return _finite(np.exp(log_p), "conditional_probability_alive")

    def conditional_expected_number_of_purchases_up_to_time(
        self, t, frequency, recency, T
    ) -> np.ndarray:
        """Expected transactions in the next ``t`` opportunities ``n+1 .. n+t`` (FHS eq. 13).

        Parameters
        ----------
        t : int or array-like of int
            Whole number(s) of future periods, broadcast against the histories.
        frequency, recency, T : array-like of shape (n_customers,)
            Histories ``(x, t_x, n)`` in whole periods.

        Returns
        -------
        ndarray
            Expected number of transactions per customer.
        """
        alpha, beta, gamma, delta = self._params()
        t = _whole_periods(t, "t")
        x, n, row_ll = self._history_loglik(frequency, recency, T)
        return _conditional_expected(alpha, beta, gamma, delta, t, x, n, row_ll)

    def expected_number_of_purchases_up_to_time(self, t) -> np.ndarray:
        """Expected transactions of a new customer in opportunities ``1 .. t`` (FHS eq. 9).

        Parameters
        ----------
        t : int or array-like of int
            Whole number(s) of periods since the first purchase.

        Returns
        -------
        ndarray
            Expected number of repeat transactions.
        """
        alpha, beta, gamma, delta = self._params()
        t = _whole_periods(t, "t")
        zero = np.zeros(1)
        return _conditional_expected(alpha, beta, gamma, delta, t, zero, zero, zero)

    def probability_of_n_purchases_up_to_time(self, t, n) -> np.ndarray:
        """``P(X(t) = n)``: probability of ``n`` transactions in opportunities ``1 .. t`` (eq. 7).

        Parameters
        ----------
        t : int or array-like of int
            Whole number(s) of periods since the first purchase.
        n : int or array-like of int
            Number(s) of transactions, broadcast against ``t``.

        Returns
        -------
        ndarray
            The probabilities (0 where ``n > t``).
        """
        alpha, beta, gamma, delta = self._params()
        t, x = np.broadcast_arrays(_whole_periods(t, "t"), _whole_periods(n, "n"))
        norm = betaln(alpha, beta) + betaln(gamma, delta)

        def log_choose(i):
            return gammaln(i + 1) - gammaln(x + 1) - gammaln(np.maximum(i - x, 0) + 1)

        with np.errstate(all="ignore"):
            # Alive through all t opportunities, transactions in x of them.
            log_p = (log_choose(t) + betaln(alpha + x, beta + t - x) + betaln(gamma, delta + t)
                     - norm)
            log_p = np.where(x <= t, log_p, -np.inf)
            # Dropped out before opportunity i + 1 (i = x .. t-1), x transactions in 1 .. i.
            for i in range(int(t.max()) if t.size else 0):
                term = (log_choose(i) + betaln(alpha + x, beta + i - x)
                        + betaln(gamma + 1, delta + i) - norm)
                log_p = np.logaddexp(log_p, np.where((x <= i) & (i < t), term, -np.inf))
        return _finite(np.exp(log_p), "probability_of_n_purchases_up_to_time")


def _conditional_expected(alpha, beta, gamma, delta, t, x, n, row_ll):
    """FHS 2010 eq. (13), the difference of gamma ratios as ``expm1`` of a log difference."""
    with np.errstate(all="ignore"):
        log_now = gammaln(1 + delta + n) - gammaln(gamma + delta + n)
        log_later = gammaln(1 + delta + n + t) - gammaln(gamma + delta + n + t)
        log_front = (betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta) - row_ll
                     + gammaln(gamma + delta) - gammaln(1 + delta) + log_now)
        expected = np.exp(log_front) * delta / (gamma - 1) * -np.expm1(log_later - log_now)
    return _finite(expected, "conditional_expected_number_of_purchases_up_to_time")
