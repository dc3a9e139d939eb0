"""BG/NBD with time-invariant covariates: reduction, recovery, predictions, SEs, inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmlens.clv.bgnbd import BetaGeoModel
from crmlens.clv.bgnbd_covariates import _Design, _loglik_grad
from crmlens.errors import InputError


def simulate(n, r, alpha, a, b, seed):
    """BG/NBD customers (``alpha``, ``a``, ``b`` may be per customer), ages uniform in [20, 80]."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / np.broadcast_to(alpha, n), n)
    p = rng.beta(a, b, n)
    T = rng.uniform(20, 80, n)
    x, tx, now = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        now[alive] += rng.exponential(1 / lam[alive])
        bought = alive & (now <= T)
        x[bought] += 1
        tx[bought] = now[bought]
        alive = bought & (rng.random(n) > p)
    return x, tx, T


@pytest.fixture(scope="module")
def vip_data():
    """20k customers; a binary 'vip' covariate doubles the purchase rate (alpha halves)."""
    rng = np.random.default_rng(1)
    vip = (rng.random(20_000) < 0.5).astype(float)
    x, tx, T = simulate(20_000, 0.8, 6.0 * np.exp(-np.log(2) * vip), 0.6, 2.5, seed=5)
    return x, tx, T, pd.DataFrame({"vip": vip})


@pytest.fixture(scope="module")
def vip_model(vip_data):
    x, tx, T, cov = vip_data
    return BetaGeoModel().fit(x, tx, T, purchase_covariates=cov, dropout_covariates=cov)


def test_recovers_a_purchase_rate_doubling(vip_model):
    gamma, se = vip_model.purchase_coefficients_["vip"], vip_model.purchase_coefficient_se_["vip"]
    assert abs(gamma - np.log(2)) < 4 * se and se < 0.05
    assert vip_model.params_["alpha"] == pytest.approx(6.0, rel=0.1)
    assert vip_model.params_["r"] == pytest.approx(0.8, rel=0.1)
    # No dropout effect was planted: both dropout coefficients are within noise of 0.
    for key in ("a:vip", "b:vip"):
        se = vip_model.dropout_coefficient_se_[key]
        assert abs(vip_model.dropout_coefficients_[key]) < 4 * se
    assert vip_model.covariance_.shape == (7, 7)
    assert vip_model.converged_ and vip_model.n_customers_ == 20_000


def test_covariates_improve_the_likelihood(vip_data, vip_model):
    x, tx, T, _ = vip_data
    plain = BetaGeoModel().fit(x, tx, T)
    assert vip_model.log_likelihood_ > plain.log_likelihood_ + 50
    assert plain.purchase_coefficients_ == {} and plain.dropout_coefficients_ == {}


def test_all_zero_covariates_give_the_plain_fit(vip_data):
    x, tx, T, _ = vip_data
    plain = BetaGeoModel().fit(x, tx, T)
    zero = BetaGeoModel().fit(x, tx, T, purchase_covariates=np.zeros((len(x), 2)),
                              dropout_covariates=np.zeros((len(x), 1)))
    for name in ("r", "alpha", "a", "b"):
        assert zero.params_[name] == pytest.approx(plain.params_[name], rel=1e-6)
        assert zero.se_[name] == pytest.approx(plain.se_[name], rel=1e-4)
    assert zero.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-10)
    assert zero.purchase_coefficients_ == {"x0": 0.0, "x1": 0.0}
    assert zero.dropout_coefficients_ == {"a:x0": 0.0, "b:x0": 0.0}
    assert np.isnan(zero.purchase_coefficient_se_["x0"])  # not estimable: confounded


def test_predictions_equal_the_plain_formula_at_customer_parameters(vip_data, vip_model):
    x, tx, T, cov = vip_data
    m = vip_model
    rows = [0, 1, 2, 3, 10, 11]
    X = cov.iloc[rows]
    kw = {"purchase_covariates": X, "dropout_covariates": X}
    p_alive = m.conditional_probability_alive(x[rows], tx[rows], T[rows], **kw)
    expected = m.conditional_expected_number_of_purchases_up_to_time(
        26.0, x[rows], tx[rows], T[rows], **kw)
    new = m.expected_number_of_purchases_up_to_time(52.0, **kw)
    pmf = m.probability_of_n_purchases_up_to_time(52.0, 2, **kw)
    for j, i in enumerate(rows):
        v = cov["vip"].iloc[i]
        single = BetaGeoModel()
        single.params_ = {
            "r": m.params_["r"],
            "alpha": m.params_["alpha"] * np.exp(-m.purchase_coefficients_["vip"] * v),
            "a": m.params_["a"] * np.exp(m.dropout_coefficients_["a:vip"] * v),
            "b": m.params_["b"] * np.exp(m.dropout_coefficients_["b:vip"] * v),
        }
        assert p_alive[j] == pytest.approx(
            single.conditional_probability_alive([x[i]], [tx[i]], [T[i]])[0], rel=1e-12)
        assert expected[j] == pytest.approx(
            single.conditional_expected_number_of_purchases_up_to_time(
                26.0, [x[i]], [tx[i]], [T[i]])[0], rel=1e-12)
        assert new[j] == pytest.approx(single.expected_number_of_purchases_up_to_time(52.0).item(),
                                       rel=1e-12)
        assert pmf[j] == pytest.approx(single.probability_of_n_purchases_up_to_time(52.0, 2).item(),
                                       rel=1e-12)
    # vip customers (rate doubled) are expected to buy more.
    assert new[cov["vip"].iloc[rows].to_numpy() == 1].min() > new[
        cov["vip"].iloc[rows].to_numpy() == 0].max()


def _small(seed=2, n=3000):
    rng = np.random.default_rng(seed)
    income = rng.normal(40.0, 10.0, n)  # far from 0: exercises the centring
    region = (rng.random(n) < 0.3).astype(float)
    alpha = 5.0 * np.exp(-0.02 * (income - 40))
    x, tx, T = simulate(n, 0.9, alpha, 0.7, 3.0 * np.exp(0.5 * region), seed=seed)
    return x, tx, T, pd.DataFrame({"income": income}), pd.DataFrame({"region": region})


def test_analytic_gradient_matches_finite_differences():
    x, tx, T, inc, reg = _small(n=400)
    X1 = (inc.to_numpy() - 40) / 10
    design = _Design(x, tx / 80, T / 80, np.random.default_rng(0).uniform(0.5, 2, len(x)), X1,
                     np.hstack([reg.to_numpy(), X1]))
    for u in ([-0.2, -2.5, -0.3, 1.1, 0.2, 0.5, -0.3, 0.4, 0.1],
              [0.5, 0.3, 1.0, -1.0, -0.4, 0.0, 0.2, -0.7, 0.9]):
        u = np.array(u)
        _, grad = _loglik_grad(u, design)
        numeric = np.empty(len(u))
        for j in range(len(u)):
            step = np.zeros(len(u))
            step[j] = 1e-6
            numeric[j] = (_loglik_grad(u + step, design)[0]
                          - _loglik_grad(u - step, design)[0]) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


def test_standard_errors_equal_a_direct_hessian_in_natural_parameters():
    # Independent of the standardisation and time scaling used in the fit: the Hessian of the
    # log-likelihood on the raw covariates and raw time, in (log r, log alpha0, log a0,
    # log b0, gamma), by central differences.
    x, tx, T, inc, reg = _small()
    m = BetaGeoModel().fit(x, tx, T, purchase_covariates=inc, dropout_covariates=reg)
    p = m.params_
    u = np.array([np.log(p["r"]), np.log(p["alpha"]), np.log(p["a"]), np.log(p["b"]),
                  m.purchase_coefficients_["income"], m.dropout_coefficients_["a:region"],
                  m.dropout_coefficients_["b:region"]])
    design = _Design(x, tx, T, np.ones(len(x)), inc.to_numpy(), reg.to_numpy())
    ll, grad = _loglik_grad(u, design)
    assert ll == pytest.approx(m.log_likelihood_, rel=1e-10)
    assert np.max(np.abs(grad)) < 1e-2  # the optimum in the caller's units
    k = len(u)
    hessian = np.empty((k, k))
    for j in range(k):
        step = np.zeros(k)
        step[j] = 1e-5
        hessian[:, j] = (_loglik_grad(u + step, design)[1]
                         - _loglik_grad(u - step, design)[1]) / 2e-5
    cov_u = np.linalg.inv(-(hessian + hessian.T) / 2)
    jac = np.diag([p["r"], p["alpha"], p["a"], p["b"], 1, 1, 1])
    np.testing.assert_allclose(m.covariance_, jac @ cov_u @ jac.T, rtol=2e-3, atol=1e-10)
    assert m.purchase_coefficient_se_["income"] == pytest.approx(np.sqrt(cov_u[4, 4]), rel=1e-3)


def test_covariate_units_do_not_change_the_model():
    x, tx, T, inc, reg = _small()
    m1 = BetaGeoModel().fit(x, tx, T, purchase_covariates=inc, dropout_covariates=reg)
    m2 = BetaGeoModel().fit(x, tx, T, purchase_covariates=inc * 1000 + 7,
                            dropout_covariates=reg)
    assert m2.log_likelihood_ == pytest.approx(m1.log_likelihood_, rel=1e-9)
    assert m2.purchase_coefficients_["income"] * 1000 == pytest.approx(
        m1.purchase_coefficients_["income"], rel=1e-5)
    np.testing.assert_allclose(
        m2.conditional_probability_alive(x, tx, T, purchase_covariates=inc * 1000 + 7,
                                         dropout_covariates=reg),
        m1.conditional_probability_alive(x, tx, T, purchase_covariates=inc,
                                         dropout_covariates=reg), rtol=1e-5)


def test_dataframes_are_matched_by_column_name(vip_model, vip_data):
    x, tx, T, cov = vip_data
    model = BetaGeoModel().fit(x[:3000], tx[:3000], T[:3000],
                               purchase_covariates=cov.assign(other=T)[:3000])
    assert list(model.purchase_coefficients_) == ["vip", "other"]
    swapped = cov.assign(other=T)[["other", "vip"]][:50]
    np.testing.assert_array_equal(
        model.conditional_probability_alive(x[:50], tx[:50], T[:50], purchase_covariates=swapped),
        model.conditional_probability_alive(x[:50], tx[:50], T[:50],
                                            purchase_covariates=swapped[["vip", "other"]]))


@pytest.fixture(scope="module")
def tiny():
    x, tx, T = simulate(800, 0.8, 5.0, 0.6, 2.5, seed=3)
    return x, tx, T


@pytest.mark.parametrize(("covariates", "key", "fragment"), [
    (np.ones((799, 1)), "rows_mismatch", "799 rows but there are 800"),
    (np.ones((800, 1, 2)), "not_2d", "3 dimensions"),
    (np.where(np.arange(800) == 7, np.nan, 1.0), "not_finite", "row 7, column x0"),
    (pd.DataFrame({"g": ["u"] * 800}), "not_numeric", "purchase_covariates"),
    (pd.DataFrame([[1.0, 2.0]] * 800, columns=["g", "g"]), "duplicate_names", "g"),
])
def test_bad_covariates_are_refused_at_fit(tiny, covariates, key, fragment):
    with pytest.raises(InputError) as info:
        BetaGeoModel().fit(*tiny, purchase_covariates=covariates)
    assert info.value.key == f"error.clv_bgnbd_cov.{key}"
    assert fragment in info.value.message("en")
    assert info.value.message("zh") != info.value.message("en")


def test_prediction_covariates_must_match_the_fit(tiny):
    x, tx, T = tiny
    g = (np.arange(len(x)) % 2).astype(float)
    model = BetaGeoModel().fit(x, tx, T, purchase_covariates=pd.DataFrame({"g": g}))
    plain = BetaGeoModel().fit(x, tx, T)
    cases = [
        (lambda: model.conditional_probability_alive(x, tx, T), "missing"),
        (lambda: model.expected_number_of_purchases_up_to_time(5.0), "missing"),
        (lambda: plain.conditional_probability_alive(
            x, tx, T, purchase_covariates=g), "unexpected"),
        (lambda: model.conditional_probability_alive(
            x, tx, T, purchase_covariates=g, dropout_covariates=g), "unexpected"),
        (lambda: model.conditional_probability_alive(
            x, tx, T, purchase_covariates=pd.DataFrame({"h": g})), "columns_mismatch"),
        (lambda: model.conditional_probability_alive(
            x, tx, T, purchase_covariates=np.ones((len(x), 2))), "columns_mismatch"),
        (lambda: model.conditional_expected_number_of_purchases_up_to_time(
            4.0, x, tx, T, purchase_covariates=g[:10]), "rows_mismatch"),
        (lambda: model.probability_of_n_purchases_up_to_time(
            4.0, 1, purchase_covariates=[np.inf]), "not_finite"),
    ]
    for call, key in cases:
        with pytest.raises(InputError) as info:
            call()
        assert info.value.key == f"error.clv_bgnbd_cov.{key}"
    # Positional arrays work when the column count matches; refitting plain clears the state.
    assert model.conditional_probability_alive(x, tx, T, purchase_covariates=g).shape == x.shape
    model.fit(x, tx, T)
    assert model.purchase_coefficients_ == {}
    assert model.conditional_probability_alive(x, tx, T).shape == x.shape
