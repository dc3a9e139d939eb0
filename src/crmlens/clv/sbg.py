"""Shifted-beta-geometric (sBG) model of contractual churn (Fader & Hardie 2007).

Every period a subscriber churns with a probability ``theta`` of their own, and ``theta`` varies
across subscribers as ``Beta(alpha, beta)``. The cohort's retention rate then rises with tenure
(the churn-prone leave first) even though no individual's churn probability changes.

Time is in whole periods. ``T`` is a customer's lifetime: the period at the end of which they
churn (1, 2, ...); ``S(t) = P(T > t)`` is the share of the cohort still subscribed after ``t``
periods. The log-likelihood of weighted ``(duration, churned)`` rows is summed per distinct row,
in log space (``betaln``), with an analytic gradient (``digamma``).
"""

from __future__ import annotations


import numpy as np
from scipy.special import betaln, digamma, hyp2f1
from sklearn.utils.validation import check_is_fitted

from crmlens.clv._fitting import (
    FitError,
    MaximumLikelihoodModel,
    as_float_array,
    check_params_finite,
    check_same_length,
    check_weights,
    fit_log_params,
    standard_errors,
)
from crmlens.errors import InputError

PARAM_NAMES = ("alpha", "beta")
_MODEL = "sBG"
# Beyond these the optimiser has run to a boundary of the parameter space (e.g. no churn
# heterogeneity left to estimate): the estimate is a limit, not a usable parameter.
# Beyond 1e5 the Beta distribution of churn rates has almost no spread left (no heterogeneity):
# the likelihood is a flat ridge there and optimizers stop anywhere along it (at 1.3e6 with
# SciPy 1.17, past 1e7 with earlier releases), so the bound sits well inside the ridge.
_PARAM_RANGE = (1e-6, 1e5)


def from_survivors(counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ``(duration, churned)`` rows of one cohort from its survivor counts.

    Parameters
    ----------
    counts : array-like of shape (n_periods + 1,)
        Customers still subscribed at the start (``counts[0]``) and after each period,
        e.g. ``[1000, 631, 468, 382, 326, 289, 262, 241]``; non-increasing.

    Returns
    -------
    duration : ndarray of shape (n_periods + 1,)
        ``1 .. n_periods`` for the churners of each period, then ``n_periods`` for the survivors.
    churned : ndarray of bool
        True for the churner rows, False for the survivors (still active: censored).
    sample_weight : ndarray
        Customers per row: ``counts[t-1] - counts[t]``, then ``counts[-1]``.

    Examples
    --------
    >>> model = ShiftedBetaGeometricModel().fit(*from_survivors([1000, 631, 468, 382]))
    """
    counts = as_float_array(counts, "counts")
    if len(counts) < 2:
        raise InputError("error.clv_sbg.survivors_too_short", count=len(counts))
    if (counts < 0).any() or counts[0] <= 0:
        raise InputError("error.clv_sbg.survivors_not_positive", first=counts[0])
    rising = np.diff(counts) > 0
    if rising.any():
        period = int(np.argmax(rising)) + 1
        raise InputError("error.clv_sbg.survivors_increasing", period=period,
                         before=counts[period - 1], after=counts[period])
    n_periods = len(counts) - 1
    duration = np.append(np.arange(1, n_periods + 1, dtype=float), float(n_periods))
    churned = np.append(np.ones(n_periods, dtype=bool), False)
    weights = np.append(counts[:-1] - counts[1:], counts[-1])
    return duration, churned, weights


class _Rows:
    """Distinct ``(duration, churned)`` rows with their total weight (the fit's sufficient data)."""

    def __init__(self, duration: np.ndarray, churned: np.ndarray, weights: np.ndarray):
        keep = weights > 0
        key = np.stack([duration[keep], churned[keep].astype(float)], axis=1)
        unique, index = np.unique(key, axis=0, return_inverse=True)
        w = np.bincount(index.ravel(), weights=weights[keep])
        self.total_weight = float(w.sum())
        is_churn = unique[:, 1] == 1.0
        self.churn_t, self.churn_w = unique[is_churn, 0], w[is_churn]
        self.alive_t, self.alive_w = unique[~is_churn, 0], w[~is_churn]


def _loglik_grad(params: np.ndarray, rows: _Rows) -> tuple[float, np.ndarray]:
    """Total log-likelihood and gradient in ``(alpha, beta)``.

    ``log P(T=t) = B(alpha+1, beta+t-1) - B(alpha, beta)`` for a churner in period ``t`` and
    ``log S(t) = B(alpha, beta+t) - B(alpha, beta)`` for a customer still active after ``t``
    (``B`` the log beta function).
    """
    alpha, beta = params
    t, w = rows.churn_t, rows.churn_w
    u, v = rows.alive_t, rows.alive_w
    base = betaln(alpha, beta)
    psi_ab = digamma(alpha + beta)
    ll = float(w @ (betaln(alpha + 1, beta + t - 1) - base) + v @ (betaln(alpha, beta + u) - base))
    # d/dx log B(x, y) = psi(x) - psi(x+y); d/dy log B(x, y) = psi(y) - psi(x+y).
    psi_abt = digamma(alpha + beta + t)
    psi_abu = digamma(alpha + beta + u)
    g_alpha = float(w @ (digamma(alpha + 1) - digamma(alpha) + psi_ab - psi_abt)
                    + v @ (psi_ab - psi_abu))
    g_beta = float(w @ (digamma(beta + t - 1) - digamma(beta) + psi_ab - psi_abt)
                   + v @ (digamma(beta + u) - digamma(beta) + psi_ab - psi_abu))
    return ll, np.array([g_alpha, g_beta])


def _check_durations(duration, churned, sample_weight):
    duration = as_float_array(duration, "duration")
    churned_raw = as_float_array(churned, "churned")
    n = check_same_length(duration=duration, churned=churned_raw)
    weights = check_weights(sample_weight, n)
    bad = (duration < 0) | (duration != np.round(duration))
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError("error.clv_sbg.bad_duration", row=row, value=duration[row])
    not_flag = (churned_raw != 0) & (churned_raw != 1)
    if not_flag.any():
        row = int(np.argmax(not_flag))
        raise InputError("error.clv_sbg.churned_not_boolean", row=row, value=churned_raw[row])
    churned = churned_raw == 1
    at_zero = churned & (duration == 0)
    if at_zero.any():
        row = int(np.argmax(at_zero))
        raise InputError("error.clv_sbg.churn_at_zero", row=row)
    counted = weights > 0
    # alpha and beta are identified only when churn is observed and someone is observed at
    # risk beyond the first period (two different churn rates to compare).
    if not (churned & counted).any():
        raise InputError("error.clv_sbg.no_churn")
    if not ((duration > 1) & counted).any():
        raise InputError("error.clv_sbg.single_period")
    return duration, churned, weights


def _whole_periods(t, name: str, minimum: int) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t)) or np.any(t < minimum) or np.any(t != np.round(t)):
        raise InputError("error.clv_sbg.bad_period", name=name, minimum=minimum)
    return t


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise FitError("error.clv_model.prediction_not_finite", what=what,
                       count=int((~np.isfinite(values)).sum()))
    return values


class ShiftedBetaGeometricModel(MaximumLikelihoodModel):
    """Shifted-beta-geometric model of contractual churn (Fader & Hardie 2007).

    Each customer churns at the end of every period with probability ``theta``, constant for
    them, and ``theta ~ Beta(alpha, beta)`` across customers: ``P(T = t) = B(alpha + 1,
    beta + t - 1) / B(alpha, beta)``, ``S(t) = B(alpha, beta + t) / B(alpha, beta)`` and the
    retention rate ``r(t) = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1)`` rises
    with tenure.

    Parameters
    ----------
    penalizer_coef : float, default=0.0
        L2 penalty on ``(alpha, beta)``; 0 gives the plain maximum-likelihood estimate.
    tol : float, default=1e-8
        Convergence tolerance on the gradient of the mean log-likelihood (log-parameters).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict of str to float
        ``alpha`` and ``beta`` of the beta distribution of the per-period churn probability.
    se_ : dict of str to float
        Standard errors from the inverse Hessian of the log-likelihood.
    covariance_ : ndarray of shape (2, 2)
        Covariance matrix of ``(alpha, beta)``.
    log_likelihood_ : float
        Maximised total (weighted) log-likelihood.
    n_iter_ : int
        Optimiser iterations.
    converged_ : bool
        Whether the optimiser met its tolerance (a fit that did not converge raises).
    n_customers_ : float
        Total weight (number of customers) fitted.

    Examples
    --------
    >>> from crmlens.clv.sbg import ShiftedBetaGeometricModel, from_survivors
    >>> sbg = ShiftedBetaGeometricModel().fit(
    ...     *from_survivors([1000, 631, 468, 382, 326, 289, 262, 241]))
    >>> round(sbg.params_["alpha"], 3), round(sbg.params_["beta"], 3)
    (0.704, 1.182)
    """

    model_name = "sbg"

    def fit(self, duration, churned, sample_weight=None) -> ShiftedBetaGeometricModel:
        """Estimate ``alpha, beta`` by maximum likelihood.

        Parameters
        ----------
        duration : array-like of shape (n_rows,)
            Whole periods each customer was observed: for a churner, the period at the end of
            which they left (>= 1); for an active customer, the periods survived so far (>= 0).
        churned : array-like of bool of shape (n_rows,)
            True when the customer churned at the end of ``duration``, False when still
            active (right-censored).
        sample_weight : array-like of shape (n_rows,), default=None
            Number of customers sharing each row (1 each when omitted); see
            :func:`from_survivors`.

        Returns
        -------
        self : ShiftedBetaGeometricModel
            The fitted model.
        """
        self._validate_params()
        duration, churned, weights = _check_durations(duration, churned, sample_weight)
        rows = _Rows(duration, churned, weights)
        W = rows.total_weight
        c = self.penalizer_coef

        def objective(log_params):
            params = np.exp(log_params)
            ll, grad = _loglik_grad(params, rows)
            value = -ll / W + c * float(params @ params)
            return value, -grad * params / W + 2 * c * params**2

        def total_gradient(params):
            return -_loglik_grad(params, rows)[1] + 2 * c * W * params

        with np.errstate(all="ignore"):
            log_params, _, n_iter, converged, message = fit_log_params(
                objective, x0=np.zeros(2), total_weight=W, tol=self.tol,
                max_iter=self.max_iter, model=_MODEL,
            )
        params = np.exp(log_params)
        check_params_finite(params, _MODEL, PARAM_NAMES)
        if not converged:
            raise FitError("error.clv_model.not_converged", model=_MODEL, iterations=n_iter,
                           message=message)
        low, high = _PARAM_RANGE
        if np.any(params < low) or np.any(params > high):
            shown = ", ".join(f"{n}={v:.3g}" for n, v in zip(PARAM_NAMES, params, strict=True))
            raise FitError("error.clv_sbg.boundary", params=shown)
        se, cov = standard_errors(total_gradient, params, model=_MODEL)
        self.params_ = dict(zip(PARAM_NAMES, params.tolist(), strict=True))
        self.se_ = dict(zip(PARAM_NAMES, se.tolist(), strict=True))
        self.covariance_ = cov
        self.log_likelihood_ = float(_loglik_grad(params, rows)[0])
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_customers_ = W
        return self

    # ------------------------------------------------------------------ predictions
    def _params(self) -> tuple[float, float]:
        check_is_fitted(self, "params_")
        return self.params_["alpha"], self.params_["beta"]

    def survival_function(self, t) -> np.ndarray:
        """``S(t) = P(T > t)``: share of a new cohort still active after ``t`` periods.

        Parameters
        ----------
        t : int or array-like of int
            Periods since the start (>= 0); ``S(0) = 1``.

        Returns
        -------
        ndarray
            Survival probabilities.
        """
        alpha, beta = self._params()
        t = _whole_periods(t, "t", 0)
        return _finite(np.exp(betaln(alpha, beta + t) - betaln(alpha, beta)),
                       "survival_function")

    def churn_probability(self, t) -> np.ndarray:
        """``P(T = t)``: probability that a new customer churns at the end of period ``t``.

        Parameters
        ----------
        t : int or array-like of int
            Period (>= 1).

        Returns
        -------
        ndarray
            Probabilities; they sum to 1 over ``t = 1, 2, ...``.
        """
        alpha, beta = self._params()
        t = _whole_periods(t, "t", 1)
        return _finite(np.exp(betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)),
                       "churn_probability")

    def retention_rate(self, t) -> np.ndarray:
        """``r(t) = S(t) / S(t-1)``: share of the customers active in period ``t`` who renew.

        Parameters
        ----------
        t : int or array-like of int
            Period (>= 1).

        Returns
        -------
        ndarray
            ``(beta + t - 1) / (alpha + beta + t - 1)``.
        """
        alpha, beta = self._params()
        t = _whole_periods(t, "t", 1)
        return _finite((beta + t - 1) / (alpha + beta + t - 1), "retention_rate")

    def conditional_survival(self, t, tenure) -> np.ndarray:
        """``P(T > tenure + t | T > tenure)`` for a customer who has survived ``tenure`` periods.

        Parameters
        ----------
        t : int or array-like of int
            Further periods (>= 0), broadcast against ``tenure``.
        tenure : int or array-like of int
            Periods survived so far (renewals made; >= 0).

        Returns
        -------
        ndarray
            Probabilities of still being active ``t`` periods from now.
        """
        alpha, beta = self._params()
        t = _whole_periods(t, "t", 0)
        tenure = _whole_periods(tenure, "tenure", 0)
        return _finite(np.exp(betaln(alpha, beta + tenure + t) - betaln(alpha, beta + tenure)),
                       "conditional_survival")

    def discounted_expected_residual_lifetime(self, tenure, *, discount_rate: float) -> np.ndarray:
        """DERL: expected discounted number of future renewals (Fader & Hardie 2010, eq. 6).

        For a customer who has survived ``tenure`` periods (made ``tenure`` renewals; ``n - 1``
        in the paper), evaluated just before the next renewal decision:
        ``sum_{k>=1} P(T > tenure + k | T > tenure) / (1 + d)^(k-1)
        = B(alpha, beta + n) / B(alpha, beta + n - 1) * 2F1(1, beta + n; alpha + beta + n;
        1 / (1 + d))`` with ``n = tenure + 1``. Times the payment per period, it is the
        customer's residual lifetime value.

        Parameters
        ----------
        tenure : int or array-like of int
            Periods survived so far (>= 0).
        discount_rate : float
            Discount rate per period (>= 0; 0 only when ``alpha > 1``, else the expected
            lifetime is infinite).

        Returns
        -------
        ndarray
            DERL in periods' worth of payments.
        """
        alpha, beta = self._params()
        tenure = _whole_periods(tenure, "tenure", 0)
        z = self._discount_factor(discount_rate, alpha)
        n = tenure + 1
        with np.errstate(all="ignore"):
            derl = np.exp(betaln(alpha, beta + n) - betaln(alpha, beta + n - 1)) * hyp2f1(
                1.0, beta + n, alpha + beta + n, z)
        return _finite(derl, "discounted_expected_residual_lifetime")

    def discounted_expected_lifetime(self, *, discount_rate: float) -> float:
        """DEL of a new customer: ``sum_{t>=0} S(t) / (1 + d)^t = 2F1(1, beta; alpha + beta;
        1 / (1 + d))``, counting the first period's payment (Fader & Hardie 2010, eq. 5).

        Parameters
        ----------
        discount_rate : float
            Discount rate per period (>= 0; 0 only when ``alpha > 1``).

        Returns
        -------
        float
            Expected discounted lifetime in periods' worth of payments.
        """
        alpha, beta = self._params()
        z = self._discount_factor(discount_rate, alpha)
        with np.errstate(all="ignore"):
            value = np.asarray(hyp2f1(1.0, beta, alpha + beta, z))
        return float(_finite(value, "discounted_expected_lifetime"))

    @staticmethod
    def _discount_factor(discount_rate: float, alpha: float) -> float:
        d = float(discount_rate)
        if not np.isfinite(d) or d < 0:
            raise InputError("error.clv_sbg.bad_discount_rate", value=discount_rate)
        # Undiscounted, the expected lifetime (alpha + beta - 1) / (alpha - 1) needs alpha > 1.
        if d == 0 and alpha <= 1:
            raise InputError("error.clv_sbg.infinite_lifetime", alpha=round(alpha, 4))
        return 1.0 / (1.0 + d)
