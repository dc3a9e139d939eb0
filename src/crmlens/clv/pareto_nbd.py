"""Pareto/NBD purchase and dropout model (Schmittlein, Morrison & Colombo 1987), fitted by MLE.

The likelihood (Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model", eq. 18) is

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [E1 + s * int_{t_x}^{T} f(tau) dtau]

with ``E1 = (alpha+T)^-(r+x) (beta+T)^-s`` and ``f = (alpha+tau)^-(r+x) (beta+tau)^-(s+1)``.
Writing ``E1`` as an integral over ``(T, inf)`` turns the bracket into a sum of two *positive*
tails, ``(r+x) H(T) + s G(t_x)``, so the usual difference of two hypergeometric terms (and its
cancellation, lifetimes issues #132, #262, #419, #442) disappears. Each tail is
``(max+y)^-(r+s+x) / (r+s+x) * 2F1(r+s+x, b; r+s+x+1; z)`` with the Fader-Hardie case split on
``alpha >= beta`` (``z = |alpha-beta| / (max(alpha, beta) + y)``); after Euler's transform it is
a power factor times ``2F1(1, e; c; z)``, whose series has positive terms with ratios below ``z``
and is summed here directly in blocks, together with its derivatives in ``e``, ``c`` and ``z``
(analytic gradient). That series needs ~1/(1-z) terms: where ``z`` is close to 1 (a fit heading
to the no-dropout boundary ``beta -> inf``) the tails are integrated instead, by the
trapezoidal rule in ``log(tau - y)`` with double-exponential ends (``_log_tail_quadrature``),
derivatives included. Everything else is in log space.

Time-invariant covariates (Fader & Hardie 2007) scale the rates per customer:
``alpha_i = alpha * exp(-gamma1 . x_i)`` and ``beta_i = beta * exp(-gamma2 . x_i)``.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from scipy.integrate import quad
from scipy.special import digamma, expit, gammaln, xlogy
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
from crmlens.errors import InputError

PARAM_NAMES = ("r", "alpha", "s", "beta")
_MODEL = "Pareto/NBD"
# Series blocks: points are processed in groups (bounded memory), terms in blocks that double
# for the points not yet converged; past _MAX_TERMS the tail is closed geometrically (a
# backstop: with the quadrature below taking z > 0.98, a few thousand terms suffice).
_POINT_BLOCK = 1 << 15
_FIRST_TERMS = 16
_MAX_TERMS = 1 << 17
# Where the series would need many terms (about 40 / (1 - z), 1 - z below _QUADRATURE_BELOW)
# the tails are integrated instead (see _log_tail_quadrature): 100-150 nodes per point,
# whatever z. _QUADRATURE_STEP 0.25 keeps the trapezoidal error near 1e-14 also for large
# frequencies (0.5 gives only ~1e-7 there: the integrand's poles come closer in effect).
_QUADRATURE_BELOW = 0.02
_QUADRATURE_STEP = 0.25
_QUADRATURE_NODES = 1 << 20
_LOG2 = float(np.log(2.0))


# ---------------------------------------------------------------- hypergeometric series
def log_hyp2f1_1ec(e, c, z) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``log 2F1(1, e; c; z)`` and its derivatives in ``e``, ``c`` and ``z``.

    Valid for ``0 < e < c`` and ``0 <= z < 1`` (the only case the Pareto/NBD needs): the terms
    ``(e)_k / (c)_k z^k`` are positive and decrease by a ratio below ``z``, so the sum is
    accurate to rounding, never overflows (terms are at most 1) and needs no cancellation.

    Parameters
    ----------
    e, c, z : array-like
        Broadcast to a common 1-d shape.

    Returns
    -------
    value, d_e, d_c, d_z : ndarray
        ``log S`` and ``d log S / d e``, ``d log S / d c``, ``d log S / d z``.
    """
    e, c, z = (np.ravel(v).astype(float) for v in np.broadcast_arrays(e, c, z))
    out = [np.empty_like(z) for _ in range(4)]
    for start in range(0, len(z), _POINT_BLOCK):
        part = slice(start, start + _POINT_BLOCK)
        for o, v in zip(out, _series_block(e[part], c[part], z[part]), strict=True):
            o[part] = v
    return tuple(out)


def _series_block(e, c, z):
    n = len(z)
    total = np.ones(n)      # sum of terms t_k (t_0 = 1)
    sum_e = np.zeros(n)     # sum of t_k * d log t_k / de
    sum_c = np.zeros(n)     # sum of t_k * d log t_k / dc
    sum_z = np.zeros(n)     # sum of d t_k / dz = k t_{k-1} (e+k-1)/(c+k-1)
    term = np.ones(n)       # last term summed
    log_e = np.zeros(n)     # d log t_k / de of the last term
    log_c = np.zeros(n)
    active = np.arange(n)
    k0, width = 0, _FIRST_TERMS
    while active.size:
        j = k0 + np.arange(width)
        ea, ca, za = e[active, None], c[active, None], z[active, None]
        u = (ea + j) / (ca + j)
        terms = term[active, None] * np.cumprod(u * za, axis=1)
        prev = np.concatenate([term[active, None], terms[:, :-1]], axis=1)
        de = log_e[active, None] + np.cumsum(1.0 / (ea + j), axis=1)
        dc = log_c[active, None] - np.cumsum(1.0 / (ca + j), axis=1)
        total[active] += terms.sum(axis=1)
        sum_e[active] += (terms * de).sum(axis=1)
        sum_c[active] += (terms * dc).sum(axis=1)
        sum_z[active] += (prev * u * (j + 1)).sum(axis=1)
        term[active], log_e[active], log_c[active] = terms[:, -1], de[:, -1], dc[:, -1]
        k0 += width
        zz = z[active]
        # The ratios grow towards z, so the tail after term k is below t_k z / (1 - z), and the
        # tail of the z-derivative below (k+1) t_k / (1 - z)^2: stop at rounding level for the
        # value and 1e-13 (relative to S) for the derivatives.
        t_k, one_z = term[active], 1.0 - zz
        done = ((t_k * zz <= 1e-17 * one_z * total[active])
                & (t_k * (k0 + 1) <= 1e-13 * one_z**2 * total[active]))
        if k0 >= _MAX_TERMS:
            # Extreme z (min(alpha, beta) / max(alpha, beta) below ~1e-4): close the tail as a
            # geometric series with the last ratio, approximate to O(1/k).
            q = (e[active] + k0) / (c[active] + k0) * zz
            rest = term[active] * q / (1.0 - q)
            total[active] += rest
            sum_e[active] += rest * log_e[active]
            sum_c[active] += rest * log_c[active]
            sum_z[active] += rest * (k0 + 1) / np.maximum(zz, 1e-300)
            done[:] = True
        active = active[~done]
        width = min(width * 2, 4096)
    return np.log(total), sum_e / total, sum_c / total, sum_z / total


# ---------------------------------------------------------------- likelihood
def _log_tail(kind: str, r, s, x, y, alpha, beta):
    """``log G(y)`` (kind "G") or ``log H(y)`` (kind "H") and their partial derivatives.

    ``G(y) = int_y^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau`` and
    ``H(y) = int_y^inf (alpha+tau)^-(r+x+1) (beta+tau)^-s dtau``. Returns the value and its
    derivatives in ``r``, ``s``, ``alpha`` and ``beta`` (``alpha``, ``beta`` may be per point).
    Points with ``1 - z = (min(alpha, beta) + y) / (max(alpha, beta) + y)`` below
    ``_QUADRATURE_BELOW`` are integrated by quadrature, the others summed as a series.
    """
    x, y, alpha, beta = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                                            alpha, beta)
    one_minus_z = (np.minimum(alpha, beta) + y) / (np.maximum(alpha, beta) + y)
    near = one_minus_z < _QUADRATURE_BELOW
    if not near.any():
        return _log_tail_series(kind, r, s, x, y, alpha, beta)
    out = [np.empty(x.shape) for _ in range(5)]
    far = ~near
    if far.any():
        for o, v in zip(out, _log_tail_series(kind, r, s, x[far], y[far], alpha[far],
                                              beta[far]), strict=True):
            o[far] = v
    # G: powers r+x on alpha, s+1 on beta; H: r+x+1 and s (d/dr = d/dp, d/ds = d/dq).
    p = r + x[near] + (kind == "H")
    q = np.full(p.shape, s + (kind == "G"))
    for o, v in zip(out, _log_tail_quadrature(p, q, alpha[near], beta[near], y[near]),
                    strict=True):
        o[near] = v
    return tuple(out)


def _log_tail_quadrature(p, q, alpha, beta, y):
    """``log int_y^inf (alpha+tau)^-p (beta+tau)^-q dtau`` and its derivatives in p, q, alpha, beta.

    For ``p + q > 1`` (all 1-d arrays of one length). With ``tau = y + exp(v)`` the integrand
    ``exp(v) (A + e^v)^-p (B + e^v)^-q`` (``A = alpha + y``, ``B = beta + y``) is analytic in a
    strip around the real axis (poles at ``Im v = +-pi`` over ``log A`` and ``log B``) and
    decays at both ends, so the trapezoidal rule converges exponentially in the step. The
    decay is slow, though: like ``exp(v)`` below ``log min(A, B)`` and like
    ``exp(-(p+q-1) v)`` above ``log max(A, B)``. The map
    ``v = t + exp(t - t_hi) - exp(t_lo - t)`` (``t_lo`` a little below ``log min``, ``t_hi`` a
    little above ``log max``, nearly the identity in between) makes both ends decay double
    exponentially, so about 100-150 nodes suffice for any ``alpha / beta``, frequency and
    ``p + q``. The derivatives are integrals of the same weights times ``-log(alpha+tau)``,
    ``-log(beta+tau)``, ``-p / (alpha+tau)`` and ``-q / (beta+tau)``: the gradient stays
    analytic. Everything is in logs (``logaddexp``), so nothing overflows.
    """
    log_a, log_b = np.log(alpha + y), np.log(beta + y)
    a = p + q - 1.0
    top = np.maximum(log_a, log_b)
    # Where the integrand stops being ~exp(v) resp. ~exp(-a v), with a margin of e^3.
    t_lo = np.minimum(log_a, log_b) - np.log1p(a) - 3.0
    t_hi = top + 3.0
    # Ends: v(first) <= t_lo - 37 leaves out < e^-37 of the integral below; above, v must
    # reach `needed`, past which less than e^-40 of it lies.
    first = t_lo - np.log(38.0)
    needed = top + (40.0 + _LOG2) / a + _LOG2
    last = t_hi + np.log1p(np.maximum(needed - t_hi, 0.0))
    counts = np.ceil((last - first) / _QUADRATURE_STEP).astype(np.intp) + 1
    ends = np.cumsum(counts)
    out = [np.empty(len(p)) for _ in range(5)]
    start = 0
    while start < len(p):
        # Points in groups of about _QUADRATURE_NODES nodes (bounded memory).
        base = ends[start] - counts[start]
        stop = max(start + 1, int(np.searchsorted(ends, base + _QUADRATURE_NODES, side="right")))
        part = slice(start, stop)
        for o, v in zip(out, _quadrature_block(p[part], q[part], log_a[part], log_b[part],
                                               first[part], t_lo[part], t_hi[part],
                                               counts[part]), strict=True):
            o[part] = v
        start = stop
    return tuple(out)


def _quadrature_block(p, q, log_a, log_b, first, t_lo, t_hi, counts):
    starts = np.cumsum(counts) - counts
    point = np.repeat(np.arange(len(counts)), counts)
    t = first[point] + _QUADRATURE_STEP * (np.arange(int(counts.sum())) - starts[point])
    up, down = np.exp(t - t_hi[point]), np.exp(t_lo[point] - t)
    v = t + up - down                            # dv/dt = 1 + up + down
    la = np.logaddexp(log_a[point], v)           # log(alpha + tau)
    lb = np.logaddexp(log_b[point], v)           # log(beta + tau)
    log_f = v - p[point] * la - q[point] * lb + np.log1p(up + down)
    peak = np.maximum.reduceat(log_f, starts)
    f = np.exp(log_f - peak[point])
    total = np.add.reduceat(f, starts)
    value = peak + np.log(_QUADRATURE_STEP * total)
    d_p = -np.add.reduceat(f * la, starts) / total
    d_q = -np.add.reduceat(f * lb, starts) / total
    d_alpha = -p * np.add.reduceat(f * np.exp(-la), starts) / total
    d_beta = -q * np.add.reduceat(f * np.exp(-lb), starts) / total
    return value, d_p, d_q, d_alpha, d_beta


def _log_tail_series(kind: str, r, s, x, y, alpha, beta):
    """:func:`_log_tail` by the hypergeometric series (``z`` not too close to 1)."""
    ge = alpha >= beta
    big = np.where(ge, alpha, beta)
    small = np.where(ge, beta, alpha)
    z = (big - small) / (big + y)
    a = r + s + x
    if kind == "G":
        e = np.where(ge, r + x, s + 1)
    else:
        e = np.where(ge, r + x + 1, s)
    log_s, s_e, s_c, s_z = log_hyp2f1_1ec(e, a + 1, z)
    ay, by = alpha + y, beta + y
    la, lb = np.log(ay), np.log(by)
    # Euler's transform leaves (1-z)^(1-b) = ((small+y)/(big+y))^(1-b): one power of the ratio.
    if kind == "G":
        extra = np.where(ge, 0.0, la - lb)
        extra_a, extra_b = np.where(ge, 0.0, 1 / ay), np.where(ge, 0.0, -1 / by)
    else:
        extra = np.where(ge, lb - la, 0.0)
        extra_a, extra_b = np.where(ge, -1 / ay, 0.0), np.where(ge, 1 / by, 0.0)
    value = -(r + x) * la - s * lb - np.log(a) + log_s + extra
    d_r = -la - 1 / a + s_c + np.where(ge, s_e, 0.0)
    d_s = -lb - 1 / a + s_c + np.where(ge, 0.0, s_e)
    dz_da = np.where(ge, by / ay**2, -1 / by)
    dz_db = np.where(ge, -1 / ay, ay / by**2)
    d_alpha = -(r + x) / ay + s_z * dz_da + extra_a
    d_beta = -s / by + s_z * dz_db + extra_b
    return value, d_r, d_s, d_alpha, d_beta


def _points(x, y, pattern, n_patterns):
    """Distinct ``(x, y, pattern)`` points and each row's index into them."""
    # x is a whole number, so (x * n_patterns + pattern) is an exact float key; complex
    # numbers sort by (real, imag), which makes one np.unique call do a 3-column unique.
    unique, index = np.unique((x * n_patterns + pattern) + 1j * y, return_inverse=True)
    key = unique.real
    return key // n_patterns, unique.imag, (key % n_patterns).astype(np.intp), index.ravel()


class _Rows:
    """Weighted rows prepared once for repeated likelihood evaluations (time already scaled).

    Rows share their rates when they share a covariate *pattern* (all rows, without
    covariates), so the tails are evaluated once per distinct ``(x, t_x, pattern)`` (G) and
    ``(x, T, pattern)`` (H) and gradient sums are aggregated onto those points: per row there
    are only two gathers and a softplus. Frequency-only terms are summed per distinct frequency.
    """

    def __init__(self, frequency, recency, T, weights, X1=None, X2=None):
        keep = weights > 0
        x, tx, T, w = frequency[keep], recency[keep], T[keep], weights[keep]
        self.w = w
        self.total_weight = float(w.sum())
        n = len(x)
        self.X1 = np.empty((n, 0)) if X1 is None else X1[keep]
        self.X2 = np.empty((n, 0)) if X2 is None else X2[keep]
        both = np.hstack([self.X1, self.X2])
        if both.shape[1]:
            patterns, pattern = np.unique(both, axis=0, return_inverse=True)
            pattern = pattern.ravel()
        else:
            patterns, pattern = np.empty((1, 0)), np.zeros(n, dtype=np.intp)
        k1 = self.X1.shape[1]
        self.P1, self.P2 = patterns[:, :k1], patterns[:, k1:]
        n_patterns = len(patterns)
        self.w_pattern = np.bincount(pattern, weights=w, minlength=n_patterns)
        self.gx, self.gy, self.g_pattern, self.g_index = _points(x, tx, pattern, n_patterns)
        self.hx, self.hy, self.h_pattern, self.h_index = _points(x, T, pattern, n_patterns)
        self.x_unique, x_index = np.unique(x, return_inverse=True)
        self.w_unique = np.bincount(x_index.ravel(), weights=w)


def _loglik_grad(theta: np.ndarray, rows: _Rows) -> tuple[float, np.ndarray]:
    """Total weighted log-likelihood and gradient in ``(r, alpha, s, beta, gamma1, gamma2)``."""
    r, alpha0, s, beta0 = theta[:4]
    k1 = rows.P1.shape[1]
    # Rates per covariate pattern: alpha_p = alpha0 exp(-gamma1 . x_p), likewise beta_p.
    alpha = alpha0 * np.exp(-(rows.P1 @ theta[4:4 + k1]))
    beta = beta0 * np.exp(-(rows.P2 @ theta[4 + k1:]))
    g = _log_tail("G", r, s, rows.gx, rows.gy, alpha[rows.g_pattern], beta[rows.g_pattern])
    h = _log_tail("H", r, s, rows.hx, rows.hy, alpha[rows.h_pattern], beta[rows.h_pattern])
    u_g = np.log(s) + g[0]
    u_h = np.log(r + rows.hx) + h[0]
    ug, uh = u_g[rows.g_index], u_h[rows.h_index]
    w = rows.w
    p = expit(ug - uh)          # share of the "died between t_x and T" branch, per row
    wp_g = np.bincount(rows.g_index, weights=w * p, minlength=len(u_g))
    wp_h = np.bincount(rows.h_index, weights=w - w * p, minlength=len(u_h))
    xu, wu, wpat = rows.x_unique, rows.w_unique, rows.w_pattern
    log_a, log_b = np.log(alpha), np.log(beta)
    ll = (float(wu @ (gammaln(r + xu) - gammaln(r))) + r * (wpat @ log_a) + s * (wpat @ log_b)
          + float(w @ np.logaddexp(ug, uh)))
    d_r = (float(wu @ (digamma(r + xu) - digamma(r))) + wpat @ log_a + wp_g @ g[1]
           + wp_h @ (h[1] + 1 / (r + rows.hx)))
    d_s = wpat @ log_b + wp_g @ (g[2] + 1 / s) + wp_h @ h[2]
    n_patterns = len(wpat)
    # d LL / d log(alpha_p), d LL / d log(beta_p), per pattern.
    d_log_a = wpat * r + alpha * (
        np.bincount(rows.g_pattern, weights=wp_g * g[3], minlength=n_patterns)
        + np.bincount(rows.h_pattern, weights=wp_h * h[3], minlength=n_patterns))
    d_log_b = wpat * s + beta * (
        np.bincount(rows.g_pattern, weights=wp_g * g[4], minlength=n_patterns)
        + np.bincount(rows.h_pattern, weights=wp_h * h[4], minlength=n_patterns))
    grad = np.concatenate([[d_r, d_log_a.sum() / alpha0, d_s, d_log_b.sum() / beta0],
                           -(rows.P1.T @ d_log_a), -(rows.P2.T @ d_log_b)])
    return ll, grad


# ---------------------------------------------------------------- input checks
def _check_history(frequency, recency, T):
    frequency = as_float_array(frequency, "frequency")
    recency = as_float_array(recency, "recency")
    T = as_float_array(T, "T")
    check_same_length(frequency=frequency, recency=recency, T=T)
    check_frequency(frequency)
    check_recency_T(frequency, recency, T)
    return frequency, recency, T


def _covariate_matrix(values, name: str, n: int):
    """``values`` as a finite (n, k) float matrix and its column names."""
    if isinstance(values, pd.DataFrame):
        names = [str(c) for c in values.columns]
        matrix = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        try:
            matrix = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise InputError("error.clv_model.not_numeric", column=name) from None
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        if matrix.ndim != 2:
            raise InputError("error.clv_model.not_1d", column=name, ndim=matrix.ndim)
        names = [f"x{j}" for j in range(matrix.shape[1])]
    if matrix.shape[0] != n:
        raise InputError("error.clv_pareto.covariate_rows", name=name, rows=matrix.shape[0],
                         expected=n)
    if matrix.shape[1] == 0:
        raise InputError("error.clv_pareto.covariate_empty", name=name)
    bad = ~np.isfinite(matrix)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        raise InputError("error.clv_model.not_finite", column=name, count=int(bad.sum()),
                         row=row)
    return matrix, names


def _nonnegative_time(t, name: str = "t") -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InputError("error.clv_model.bad_horizon", name=name)
    return t


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise FitError("error.clv_model.prediction_not_finite", what=what,
                       count=int((~np.isfinite(values)).sum()))
    return values


def _growth(s, log_ratio):
    """``(1 - exp(-(s-1) L)) / (s-1)``, with its limit ``L`` at ``s = 1``."""
    k = s - 1.0
    safe = np.where(np.abs(k) < 1e-10, 1.0, k)
    return np.where(np.abs(k) < 1e-10, log_ratio, -np.expm1(-k * log_ratio) / safe)


def _standardized(values, name: str, n: int, weights: np.ndarray):
    """Covariates centred and scaled (weighted), with names, centres and spreads.

    ``None`` gives no matrix and empty names. A constant column cannot be told apart from the
    baseline rate and is refused.
    """
    if values is None:
        return None, [], np.empty(0), np.empty(0)
    matrix, names = _covariate_matrix(values, name, n)
    total = weights.sum()
    centre = weights @ matrix / total
    spread = np.sqrt(weights @ (matrix - centre) ** 2 / total)
    constant = ~(spread > 1e-12 * np.maximum(1.0, np.abs(centre)))
    if constant.any():
        raise InputError("error.clv_pareto.covariate_constant", name=name,
                         column=names[int(np.argmax(constant))])
    return (matrix - centre) / spread, names, centre, spread


def _unstandardize(theta, centre1, spread1, centre2, spread2, scale):
    """Parameters in the caller's units (time and covariates) and the Jacobian of the map.

    With standardized covariates ``alpha0' exp(-g' . (x - m) / sd)`` equals
    ``alpha0 exp(-g . x)`` for ``g = g' / sd`` and ``alpha0 = alpha0' exp(g' . m / sd)``.
    """
    k1 = len(centre1)
    params = theta.astype(float).copy()
    jacobian = np.eye(len(theta))
    for base, start, centre, spread in ((1, 4, centre1, spread1), (3, 4 + k1, centre2, spread2)):
        block = slice(start, start + len(centre))
        shift = centre / spread
        factor = np.exp(theta[block] @ shift)
        params[base] = theta[base] * factor / scale
        params[block] = theta[block] / spread
        jacobian[base, base] = factor / scale
        jacobian[base, block] = params[base] * shift
        jacobian[block, block] = np.diag(1.0 / spread)
    return params, jacobian


class ParetoNBDModel(MaximumLikelihoodModel):
    """Pareto/NBD model of repeat purchases and dropout (Schmittlein, Morrison & Colombo 1987).

    While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
    their lifetime is exponential with rate ``mu ~ Gamma(s, beta)``, independent of ``lambda``.
    Optional time-invariant covariates scale ``alpha`` and ``beta`` per customer (Fader &
    Hardie 2007): ``alpha_i = alpha exp(-gamma1 . x_i)``, ``beta_i = beta exp(-gamma2 . x_i)``,
    so a positive coefficient raises the purchase (dropout) rate.

    Parameters
    ----------
    penalizer_coef : float, default=0.0
        L2 penalty on the parameters (with time scaled so the oldest customer has ``T = 1``)
        and on the covariate coefficients; 0 gives the plain maximum-likelihood estimate.
    tol : float, default=1e-8
        Convergence tolerance on the gradient of the mean log-likelihood (log-parameters).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict of str to float
        ``r``, ``alpha``, ``s``, ``beta`` (``alpha`` and ``beta`` in the time unit of
        ``recency`` and ``T``; with covariates, the values for ``x = 0``).
    se_ : dict of str to float
        Standard errors from the inverse Hessian of the log-likelihood.
    purchase_coefficients_, dropout_coefficients_ : dict of str to float
        Covariate coefficients ``gamma1`` / ``gamma2`` by covariate name (empty without).
    purchase_coefficient_se_, dropout_coefficient_se_ : dict of str to float
        Their standard errors.
    covariance_ : ndarray of shape (4 + k1 + k2, 4 + k1 + k2)
        Covariance of ``(r, alpha, s, beta, gamma1..., gamma2...)``.
    log_likelihood_ : float
        Maximised total (weighted) log-likelihood.
    n_iter_ : int
        Optimiser iterations.
    converged_ : bool
        Whether the optimiser met its tolerance (a fit that did not converge raises).
    n_customers_ : float
        Total weight (number of customers) fitted.
    """

    model_name = "pareto_nbd"

    def fit(self, frequency, recency, T, sample_weight=None, *, purchase_covariates=None,
            dropout_covariates=None) -> ParetoNBDModel:
        """Estimate ``r, alpha, s, beta`` (and covariate coefficients) by maximum likelihood.

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
        purchase_covariates : array-like of shape (n_rows, k1) or DataFrame, default=None
            Time-invariant covariates of the purchase rate (names from the DataFrame columns,
            else ``x0, x1, ...``).
        dropout_covariates : array-like of shape (n_rows, k2) or DataFrame, default=None
            Time-invariant covariates of the dropout rate.

        Returns
        -------
        self : ParetoNBDModel
            The fitted model.
        """
        self._validate_params()
        frequency, recency, T = _check_history(frequency, recency, T)
        n = len(frequency)
        weights = check_weights(sample_weight, n)
        X1, names1, centre1, spread1 = _standardized(purchase_covariates, "purchase_covariates",
                                                     n, weights)
        X2, names2, centre2, spread2 = _standardized(dropout_covariates, "dropout_covariates",
                                                     n, weights)
        k1, k2 = len(names1), len(names2)
        k = 4 + k1 + k2

        # Time scaled so the oldest customer has T = 1, covariates centred and scaled: parameters
        # of similar magnitude help the optimiser; everything is mapped back at the end.
        t_max = float(T.max())
        scale = 1.0 / t_max if t_max > 0 else 1.0
        rows = _Rows(frequency, recency * scale, T * scale, weights, X1, X2)
        W = rows.total_weight
        c = self.penalizer_coef
        positive = np.arange(k) < 4

        def natural(phi):
            theta = phi.copy()
            theta[positive] = np.exp(phi[positive])
            return theta

        def objective_on(data: _Rows):
            def objective(phi):
                theta = natural(phi)
                ll, grad = _loglik_grad(theta, data)
                value = -ll / data.total_weight + c * float(theta @ theta)
                grad = -grad / data.total_weight + 2 * c * theta
                return value, np.where(positive, grad * theta, grad)
            return objective

        with np.errstate(all="ignore"):
            x0 = np.where(positive, 0.1, 0.0)
            # Many distinct rows: start from the optimum of a weighted sample (as BG/NBD does);
            # the full fit still decides convergence.
            sample = warm_start_weights(weights)
            if sample is not None:
                part = _Rows(frequency, recency * scale, T * scale, sample, X1, X2)
                x0 = fit_log_params(objective_on(part), x0=x0, total_weight=part.total_weight,
                                    tol=max(self.tol, 1e-6), max_iter=self.max_iter,
                                    model=_MODEL)[0]
            phi, _, n_iter, converged, message = fit_log_params(
                objective_on(rows), x0=x0, total_weight=W, tol=self.tol,
                max_iter=self.max_iter, model=_MODEL,
            )
        theta = natural(phi)
        check_params_finite(theta[:4], _MODEL, PARAM_NAMES)
        if not converged:
            raise FitError("error.clv_model.not_converged", model=_MODEL, iterations=n_iter,
                           message=message)

        # Standard errors through positive coordinates (_fitting.standard_errors steps
        # relative to the value): coefficients enter as v = exp(gamma); the delta method maps
        # back, exactly at the optimum, where the gradient vanishes.
        def total_gradient(v):
            th = v.copy()
            th[~positive] = np.log(v[~positive])
            grad = -_loglik_grad(th, rows)[1] + 2 * c * W * th
            grad[~positive] /= v[~positive]
            return grad

        v = theta.copy()
        v[~positive] = np.exp(theta[~positive])
        with np.errstate(all="ignore"):
            _, cov = standard_errors(total_gradient, v, model=_MODEL)
        to_gamma = np.ones(k)
        to_gamma[~positive] = 1.0 / v[~positive]
        cov = cov * np.outer(to_gamma, to_gamma)
        params, jacobian = _unstandardize(theta, centre1, spread1, centre2, spread2, scale)
        cov = jacobian @ cov @ jacobian.T
        variances = np.diag(cov)
        se = np.sqrt(np.where(variances > 0, variances, np.nan))

        self.params_ = dict(zip(PARAM_NAMES, params[:4].tolist(), strict=True))
        self.se_ = dict(zip(PARAM_NAMES, se[:4].tolist(), strict=True))
        self.purchase_coefficients_ = dict(zip(names1, params[4:4 + k1].tolist(), strict=True))
        self.dropout_coefficients_ = dict(zip(names2, params[4 + k1:].tolist(), strict=True))
        self.purchase_coefficient_se_ = dict(zip(names1, se[4:4 + k1].tolist(), strict=True))
        self.dropout_coefficient_se_ = dict(zip(names2, se[4 + k1:].tolist(), strict=True))
        self.covariance_ = cov
        raw1 = None if X1 is None else X1 * spread1 + centre1
        raw2 = None if X2 is None else X2 * spread2 + centre2
        with np.errstate(all="ignore"):
            ll = _loglik_grad(params, _Rows(frequency, recency, T, weights, raw1, raw2))[0]
        if not np.isfinite(ll):
            raise FitError("error.clv_model.non_finite_fit", model=_MODEL)
        self.log_likelihood_ = float(ll)
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_customers_ = W
        return self

    # ------------------------------------------------------------------ predictions
    def _customer_rates(self, n, purchase_covariates, dropout_covariates):
        """``r, alpha_i, s, beta_i`` for ``n`` customers (scalars without covariates)."""
        check_is_fitted(self, "params_")
        p = self.params_
        alpha, beta = p["alpha"], p["beta"]
        for coefs, values, name in ((self.purchase_coefficients_, purchase_covariates,
                                     "purchase_covariates"),
                                    (self.dropout_coefficients_, dropout_covariates,
                                     "dropout_covariates")):
            if not coefs:
                if values is not None:
                    raise InputError("error.clv_pareto.covariates_not_fitted", name=name)
                continue
            if values is None:
                raise InputError("error.clv_pareto.covariates_missing", name=name,
                                 columns=", ".join(coefs))
            if isinstance(values, pd.DataFrame):
                values = _by_name(values, list(coefs), name)
            matrix, _ = _covariate_matrix(values, name, n)
            if matrix.shape[1] != len(coefs):
                raise InputError("error.clv_pareto.covariate_columns", name=name,
                                 count=matrix.shape[1], expected=len(coefs))
            factor = np.exp(-(matrix @ np.array(list(coefs.values()))))
            if name == "purchase_covariates":
                alpha = alpha * factor
            else:
                beta = beta * factor
        return p["r"], alpha, p["s"], beta

    def conditional_probability_alive(self, frequency, recency, T, *, purchase_covariates=None,
                                      dropout_covariates=None) -> np.ndarray:
        """Probability that a customer with history ``(frequency, recency, T)`` is alive.

        Parameters
        ----------
        frequency, recency, T : array-like of shape (n_customers,)
            Customer histories, in the time unit used for fitting.
        purchase_covariates, dropout_covariates : array-like or DataFrame, default=None
            The customers' covariates (required when the model was fitted with them).

        Returns
        -------
        ndarray of shape (n_customers,)
            ``P(alive at T)``.
        """
        x, tx, T = _check_history(frequency, recency, T)
        r, alpha, s, beta = self._customer_rates(len(x), purchase_covariates, dropout_covariates)
        with np.errstate(all="ignore"):
            p_alive = _p_alive(r, alpha, s, beta, x, tx, T)
        return _finite(p_alive, "conditional_probability_alive")

    def conditional_expected_number_of_purchases_up_to_time(
        self, t, frequency, recency, T, *, purchase_covariates=None, dropout_covariates=None
    ) -> np.ndarray:
        """Expected repeat purchases in ``(T, T + t]`` given the history (Fader & Hardie, eq. 41).

        Parameters
        ----------
        t : float or array-like
            Horizon length(s), broadcast against the histories.
        frequency, recency, T : array-like of shape (n_customers,)
            Customer histories, in the time unit used for fitting.
        purchase_covariates, dropout_covariates : array-like or DataFrame, default=None
            The customers' covariates (required when the model was fitted with them).

        Returns
        -------
        ndarray
            Expected number of purchases per customer.
        """
        x, tx, T = _check_history(frequency, recency, T)
        r, alpha, s, beta = self._customer_rates(len(x), purchase_covariates, dropout_covariates)
        t = _nonnegative_time(t)
        with np.errstate(all="ignore"):
            p_alive = _p_alive(r, alpha, s, beta, x, tx, T)
            rate = (r + x) * (beta + T) / (alpha + T)
            expected = rate * _growth(s, np.log1p(t / (beta + T))) * p_alive
        return _finite(expected, "conditional_expected_number_of_purchases_up_to_time")

    def expected_number_of_purchases_up_to_time(self, t, *, purchase_covariates=None,
                                                dropout_covariates=None) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a new customer (Fader & Hardie, eq. 27).

        Parameters
        ----------
        t : float or array-like
            Time(s) since the first purchase.
        purchase_covariates, dropout_covariates : array-like or DataFrame, default=None
            Covariates of one customer each (broadcast against ``t``), required when the
            model was fitted with them.

        Returns
        -------
        ndarray
            Expected number of repeat purchases.
        """
        t = _nonnegative_time(t)
        r, alpha, s, beta = self._new_customer_rates(purchase_covariates, dropout_covariates)
        with np.errstate(all="ignore"):
            expected = r * beta / alpha * _growth(s, np.log1p(t / beta))
        return _finite(np.asarray(expected, dtype=float), "expected_number_of_purchases_up_to_time")

    def _new_customer_rates(self, purchase_covariates, dropout_covariates):
        """Rates of new customers: scalars, or one per covariate row (broadcast against t)."""
        purchase_covariates, dropout_covariates = (_as_rows(v) for v in (purchase_covariates,
                                                                         dropout_covariates))
        given = [v for v in (purchase_covariates, dropout_covariates) if v is not None]
        n = len(given[0]) if given else 1
        return self._customer_rates(n, purchase_covariates, dropout_covariates)

    def probability_of_n_purchases_up_to_time(self, t, n, *, purchase_covariates=None,
                                              dropout_covariates=None) -> np.ndarray:
        """``P(X(t) = n)``: probability of ``n`` repeat purchases in ``(0, t]`` for a new customer.

        Alive throughout ``(0, t]`` the count is negative binomial; a customer who dies at
        ``tau < t`` contributes ``int_0^t s beta^s (beta+tau)^-(s+1) NB(n; r, alpha, tau) dtau``
        (Fader & Hardie's note on ``P(X(t) = x)``), integrated numerically in a variable where
        the integrand is smooth.

        Parameters
        ----------
        t : float or array-like
            Time(s) since the first purchase.
        n : int or array-like of int
            Number(s) of repeat purchases, broadcast against ``t``.
        purchase_covariates, dropout_covariates : array-like or DataFrame, default=None
            Covariates of one customer each (broadcast), required when fitted with them.

        Returns
        -------
        ndarray
            The probabilities.
        """
        t = _nonnegative_time(t)
        n = np.asarray(n, dtype=float)
        if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.round(n)):
            raise InputError("error.clv_model.bad_horizon", name="n")
        r, alpha, s, beta = self._new_customer_rates(purchase_covariates, dropout_covariates)
        t, n, alpha, beta = np.broadcast_arrays(t, n, alpha, beta)
        pmf = np.vectorize(_pmf_new_customer, otypes=[float])(r, alpha, s, beta, t, n)
        return _finite(pmf, "probability_of_n_purchases_up_to_time")


def _by_name(frame: pd.DataFrame, fitted: list[str], name: str) -> pd.DataFrame:
    """The fitted columns of ``frame``, by name (by position when fitted from an array)."""
    columns = [str(c) for c in frame.columns]
    missing = [c for c in fitted if c not in columns]
    if not missing:
        return frame.set_axis(columns, axis=1)[fitted]
    if fitted == [f"x{j}" for j in range(len(fitted))]:
        return frame
    raise InputError("error.clv_pareto.covariate_names", name=name, column=missing[0],
                     columns=", ".join(fitted))


def _as_rows(values):
    """One customer's covariates given as a flat vector become a one-row matrix."""
    if values is None or isinstance(values, pd.DataFrame):
        return values
    array = np.asarray(values, dtype=float)
    return array[None, :] if array.ndim == 1 else array


def _p_alive(r, alpha, s, beta, x, tx, T):
    """``E1 / (E1 + E2)`` with the bracket written as ``(r+x) H(T) + s G(t_x)``."""
    if np.ndim(alpha) == 0 and np.ndim(beta) == 0:
        # Same rates for everyone: one tail evaluation per distinct (x, t_x) and (x, T).
        zero = np.zeros(len(x), dtype=np.intp)
        gx, gy, _, g_index = _points(x, tx, zero, 1)
        hx, hy, _, h_index = _points(x, T, zero, 1)
        log_g = _log_tail("G", r, s, gx, gy, alpha, beta)[0][g_index]
        log_h = _log_tail("H", r, s, hx, hy, alpha, beta)[0][h_index]
    else:
        log_g = _log_tail("G", r, s, x, tx, alpha, beta)[0]
        log_h = _log_tail("H", r, s, x, T, alpha, beta)[0]
    log_q = np.logaddexp(np.log(s) + log_g, np.log(r + x) + log_h)
    log_e1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return np.exp(np.minimum(log_e1 - log_q, 0.0))


def _pmf_new_customer(r, alpha, s, beta, t, n):
    """``P(X(t) = n)`` for one ``(t, n)``: alive-throughout term plus died-at-tau integral."""
    if t == 0:
        return float(n == 0)
    p = t / (alpha + t)
    log_nb = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log1p(-p) + xlogy(n, p)
    alive = np.exp(log_nb - s * np.log1p(t / beta))
    # int_0^t tau^n (alpha+tau)^-(r+n) (beta+tau)^-(s+1) dtau, with u = tau / (alpha+tau)
    # = p w^(1/(n+1)), is alpha^(1-r) p^(n+1) / (n+1) times
    # int_0^1 (1-u)^(r+s-1) (beta + (alpha-beta) u)^-(s+1) dw: smooth, no underflow in n.
    def integrand(w):
        u = p * w ** (1.0 / (n + 1))
        return np.exp((r + s - 1) * np.log1p(-u) - (s + 1) * np.log((beta + (alpha - beta) * u)
                                                                     / beta))

    integral, _ = quad(integrand, 0.0, 1.0, epsabs=0.0, epsrel=1e-12, limit=200)
    log_dead = (np.log(s) + s * np.log(beta) + np.log(alpha) + gammaln(r + n) - gammaln(r)
                - gammaln(n + 1) + (n + 1) * np.log(p) - np.log(n + 1)
                - (s + 1) * np.log(beta) + np.log(integral))
    return alive + np.exp(log_dead)
