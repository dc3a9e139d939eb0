"""P(no purchase in the next t | history): against simulated customers and direct integration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from crmlens.clv import (BetaGeoBetaBinomModel, BetaGeoModel, ModifiedBetaGeoModel,
                         ParetoNBDModel)
from crmlens.clv.no_purchase import probability_no_purchase
from crmlens.errors import InputError

N = 40_000
HORIZON = 30.0


def _continuous(rng, lam, alive_after_purchase, life, T, t):
    """Purchase times on (0, T + t] of customers who buy at rate lam while alive.

    ``alive_after_purchase(idx)`` draws whether customers survive a purchase (BG models);
    ``life`` is a continuous lifetime (Pareto/NBD, inf otherwise). Returns (x, t_x, holdout).
    """
    n = len(lam)
    x, tx, hold = np.zeros(n), np.zeros(n), np.zeros(n)
    now = np.zeros(n)
    alive = alive_after_purchase(np.arange(n))            # the first purchase at time 0
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / lam[idx])
        gone = (now[idx] > T[idx] + t) | (now[idx] > life[idx])
        alive[idx[gone]] = False
        buy = idx[~gone]
        cal = now[buy] <= T[buy]
        x[buy[cal]] += 1
        tx[buy[cal]] = now[buy[cal]]
        hold[buy[~cal]] += 1
        alive[buy] = alive_after_purchase(buy)
    return x, tx, hold


def _check(model, x, tx, T, hold, t):
    p0 = probability_no_purchase(model, t, x, tx, T)
    assert ((p0 >= 0) & (p0 <= 1)).all()
    zero = hold == 0
    # Overall and per calibration-frequency group, within 4 binomial standard errors.
    for group in (np.ones_like(zero), x == 0, x == 1, (x >= 2) & (x < 5), x >= 5):
        if group.sum() < 500:
            continue
        expected, actual = p0[group].sum(), zero[group].sum()
        sd = np.sqrt((p0[group] * (1 - p0[group])).sum())
        assert abs(expected - actual) < 4 * sd + 1, (expected, actual, sd)


def _model(cls, **params):
    model = cls()
    model.params_ = params
    model.purchase_coefficients_, model.dropout_coefficients_ = {}, {}
    return model


@pytest.mark.parametrize("modified", [False, True])
def test_bg_models_match_simulated_customers(modified):
    rng = np.random.default_rng(7)
    r, alpha, a, b = 0.8, 20.0, 0.9, 3.0
    lam = rng.gamma(r, 1 / alpha, N)
    p = rng.beta(a, b, N)
    T = rng.uniform(20, 200, N)
    first = np.ones(N, dtype=bool)

    def survive(idx):
        # BG/NBD: no dropout at the first purchase (time 0); MBG/NBD: dropout there too.
        out = rng.random(len(idx)) >= p[idx]
        if not modified:
            out |= first[idx]
            first[idx] = False
        return out

    x, tx, hold = _continuous(rng, lam, survive, np.full(N, np.inf), T, HORIZON)
    cls = ModifiedBetaGeoModel if modified else BetaGeoModel
    _check(_model(cls, r=r, alpha=alpha, a=a, b=b), x, tx, T, hold, HORIZON)


def test_pareto_nbd_matches_simulated_customers():
    rng = np.random.default_rng(8)
    r, alpha, s, beta = 0.7, 15.0, 0.6, 40.0
    lam = rng.gamma(r, 1 / alpha, N)
    life = rng.exponential(1 / rng.gamma(s, 1 / beta, N))
    T = rng.uniform(20, 200, N)
    x, tx, hold = _continuous(rng, lam, lambda idx: np.ones(len(idx), dtype=bool), life, T,
                              HORIZON)
    _check(_model(ParetoNBDModel, r=r, alpha=alpha, s=s, beta=beta), x, tx, T, hold, HORIZON)


def test_pareto_nbd_quadrature_equals_direct_integration():
    r, alpha, s, beta, x, T, t = 0.55, 10.6, 0.61, 11.7, 3.0, 30.0, 52.0
    ay, by = alpha + T, beta + T

    def f(u):  # E[mu e^(-mu u)] E[e^(-lambda u)] under the posteriors given alive
        return s / by * (by / (by + u)) ** (s + 1) * (ay / (ay + u)) ** (r + x)

    given_alive = (ay / (ay + t)) ** (r + x) * (by / (by + t)) ** s + quad(f, 0, t,
                                                                          epsabs=1e-14)[0]
    model = _model(ParetoNBDModel, r=r, alpha=alpha, s=s, beta=beta)
    p_alive = model.conditional_probability_alive([x], [20.0], [T])
    ours = probability_no_purchase(model, t, [x], [20.0], [T])
    np.testing.assert_allclose(ours, 1 - p_alive + p_alive * given_alive, rtol=1e-10)


def test_bgbb_matches_simulated_customers():
    rng = np.random.default_rng(9)
    alpha, beta, gamma, delta = 1.2, 0.75, 0.66, 2.8
    p = rng.beta(alpha, beta, N)
    theta = rng.beta(gamma, delta, N)
    n = rng.integers(3, 12, N)
    t = 5
    x, tx, hold = np.zeros(N), np.zeros(N), np.zeros(N)
    alive = np.ones(N, dtype=bool)
    for k in range(1, n.max() + t + 1):
        alive &= rng.random(N) >= theta          # dropout at the start of opportunity k
        bought = alive & (rng.random(N) < p)
        cal = k <= n
        x += bought & cal
        tx = np.where(bought & cal, k, tx)
        hold += bought & ~cal & (k <= n + t)
    model = _model(BetaGeoBetaBinomModel, alpha=alpha, beta=beta, gamma=gamma, delta=delta)
    _check(model, x, tx, n.astype(float), hold, t)


def test_edge_cases():
    model = _model(BetaGeoModel, r=0.24, alpha=4.4, a=0.79, b=2.4)
    np.testing.assert_array_equal(probability_no_purchase(model, 0, [0, 2], [0, 5], [10, 10]),
                                  [1, 1])
    far = probability_no_purchase(model, 1e9, [2], [5], [10])
    alive = model.conditional_probability_alive([2], [5], [10])
    np.testing.assert_allclose(far, 1 - alive, atol=1e-6)
    with pytest.raises(InputError):
        probability_no_purchase(model, -1, [0], [0], [1])
    with pytest.raises(InputError):
        probability_no_purchase(object(), 1, [0], [0], [1])
    bgbb = _model(BetaGeoBetaBinomModel, alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
    with pytest.raises(InputError):
        probability_no_purchase(bgbb, 2.5, [1], [1], [3])
