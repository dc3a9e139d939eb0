"""Pareto/NBD: published CDNOW figures, lifetimes as an oracle, weights, gradient, stability of
the hypergeometric terms, recovery (with covariates), inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crmlens.clv import pareto_nbd as pn
from crmlens.clv._fitting import FitError
from crmlens.clv.pareto_nbd import ParetoNBDModel, _loglik_grad, _Rows, log_hyp2f1_1ec
from crmlens.errors import InputError

lifetimes = pytest.importorskip("lifetimes")
from lifetimes.datasets import load_cdnow_summary  # noqa: E402

NAMES = ["r", "alpha", "s", "beta"]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary()


def _history(cdnow):
    return cdnow["frequency"].to_numpy(), cdnow["recency"].to_numpy(), cdnow["T"].to_numpy()


@pytest.fixture(scope="module")
def fitted(cdnow) -> ParetoNBDModel:
    return ParetoNBDModel().fit(*_history(cdnow))


@pytest.fixture(scope="module")
def oracle(cdnow, fitted):
    """lifetimes' fitter, its own fit kept aside, then set to OUR parameters for predictions."""
    np.random.seed(0)  # lifetimes draws its starting point from the global generator
    fitter = lifetimes.ParetoNBDFitter().fit(*_history(cdnow))
    own = fitter.params_.copy()
    fitter.params_[:] = [fitted.params_[k] for k in NAMES]
    return fitter, own


def _total_loglik(params, x, tx, T):
    """Our total log-likelihood at natural parameters, in the data's time unit."""
    rows = _Rows(np.asarray(x, float), np.asarray(tx, float), np.asarray(T, float),
                 np.ones(len(x)))
    return _loglik_grad(np.asarray(params, dtype=float), rows)[0]


# ----------------------------------------------------------------------- published, oracle
def test_published_cdnow_parameters(fitted):
    # Fader & Hardie, "A Note on Implementing the Pareto/NBD Model in MATLAB" (2005), CDNOW
    # 1/10th sample in weeks: r=0.55, alpha=10.58, s=0.61, beta=11.67, LL = -9595.0.
    published = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    for name, value in published.items():
        assert fitted.params_[name] == pytest.approx(value, abs=0.005 + 1e-3 * value), name
    assert fitted.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    assert fitted.converged_
    assert fitted.n_customers_ == 2357
    assert all(np.isfinite(v) and v > 0 for v in fitted.se_.values())
    assert fitted.covariance_.shape == (4, 4)


def test_parameters_equal_lifetimes_and_our_optimum_is_not_worse(cdnow, fitted, oracle):
    _, own = oracle
    for name in NAMES:
        assert fitted.params_[name] == pytest.approx(own[name], rel=1e-3), name
    # lifetimes stops Nelder-Mead at tol=1e-4: its optimum is at best as good as ours.
    theirs = _total_loglik([own[k] for k in NAMES], *_history(cdnow))
    assert fitted.log_likelihood_ >= theirs - 1e-9


def test_probability_alive_equals_lifetimes(cdnow, fitted, oracle):
    fitter, _ = oracle
    x, tx, T = _history(cdnow)
    ours = fitted.conditional_probability_alive(x, tx, T)
    np.testing.assert_allclose(ours, fitter.conditional_probability_alive(x, tx, T), rtol=1e-6)
    assert np.all((ours > 0) & (ours <= 1))


@pytest.mark.parametrize("t", [0.5, 1.0, 10.0, 39.0, 150.0])
def test_conditional_expected_purchases_equal_lifetimes(cdnow, fitted, oracle, t):
    fitter, _ = oracle
    x, tx, T = _history(cdnow)
    np.testing.assert_allclose(
        fitted.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T),
        fitter.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T),
        rtol=1e-6,
    )


def test_unconditional_expectation_equals_lifetimes(fitted, oracle):
    fitter, _ = oracle
    t = np.array([0.1, 1.0, 13.0, 52.0, 78.0, 500.0])
    np.testing.assert_allclose(fitted.expected_number_of_purchases_up_to_time(t),
                               fitter.expected_number_of_purchases_up_to_time(t), rtol=1e-6)
    assert fitted.expected_number_of_purchases_up_to_time(0.0) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("t", [1.0, 30.0, 78.0])
def test_probability_of_n_purchases_equals_lifetimes(fitted, oracle, t):
    # lifetimes' conditional PMF (Fader & Hardie note 028) for a customer with no history
    # (x = t_x = T = 0) is the unconditional P(X(t) = n).
    fitter, _ = oracle
    ours = fitted.probability_of_n_purchases_up_to_time(t, np.arange(8))
    theirs = [fitter.conditional_probability_of_n_purchases_up_to_time(n, t, 0, 0, 0)
              for n in range(8)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_probability_of_n_purchases_is_a_distribution_with_the_right_mean(fitted):
    n = np.arange(0, 400)
    pmf = fitted.probability_of_n_purchases_up_to_time(20.0, n)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-8)
    assert (n * pmf).sum() == pytest.approx(
        fitted.expected_number_of_purchases_up_to_time(20.0).item(), rel=1e-6)
    assert fitted.probability_of_n_purchases_up_to_time(0.0, [0, 3]).tolist() == [1.0, 0.0]


# ----------------------------------------------------------------------- numerical core
def _log_series(log_term_k, terms):
    """log of sum_k exp(log_term_k(k)) over ``terms`` terms (long float series)."""
    k = np.arange(terms, dtype=float)
    logs = log_term_k(k)
    top = logs.max()
    return top + np.log(np.exp(logs - top).sum())


def _log_hyp2f1_reference(a, b, c, z, terms=200_000):
    """Reference 2F1(a, b; c; z), 0 <= z < 1, by its plain power series in log space."""
    if z == 0:
        return 0.0
    return _log_series(lambda k: (gammaln(a + k) - gammaln(a) + gammaln(b + k) - gammaln(b)
                                  - gammaln(c + k) + gammaln(c) - gammaln(k + 1)
                                  + k * np.log(z)), terms)


@pytest.mark.parametrize(("e", "c", "z"), [(0.5, 1.7, 0.3), (300.6, 302.2, 0.9),
                                           (1.6, 1500.2, 0.99), (0.05, 0.2, 0.999),
                                           (2000.5, 2001.1, 0.97), (3.0, 4.0, 0.0)])
def test_hypergeometric_series_matches_a_long_reference_and_its_derivatives(e, c, z):
    value, d_e, d_c, d_z = (v.item() for v in log_hyp2f1_1ec(e, c, z))
    assert value == pytest.approx(_log_hyp2f1_reference(1.0, e, c, z), rel=1e-12, abs=1e-14)
    h = 1e-6
    for got, (de, dc, dz) in ((d_e, (h, 0, 0)), (d_c, (0, h, 0)), (d_z, (0, 0, h))):
        up = log_hyp2f1_1ec(e + de, c + dc, z + dz)[0].item()
        down = log_hyp2f1_1ec(e - de, c - dc, max(z - dz, 0.0))[0].item()
        numeric = (up - down) / ((2 if z > 0 or not dz else 1) * h)
        assert got == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def _loglik_reference(r, alpha, s, beta, x, tx, T):
    """Fader-Hardie eq. (18)-(22) with the untransformed 2F1 terms as long log-space series."""
    a = r + s + x
    if alpha >= beta:
        big, b = alpha, s + 1
    else:
        big, b = beta, r + x
    d = abs(alpha - beta)

    def log_f(y):
        return _log_hyp2f1_reference(a, b, a + 1, d / (big + y)) - a * np.log(big + y)

    f_tx, f_T = log_f(tx), log_f(T)
    with np.errstate(divide="ignore"):   # t_x = T: A0 = 0
        log_a0 = f_tx + np.log1p(-np.exp(f_T - f_tx))
    log_e1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
            + np.logaddexp(log_e1, np.log(s) - np.log(a) + log_a0))


def _p_alive_reference(params, x, tx, T):
    """P(alive) = (alive-at-T part of the likelihood) / likelihood, from the reference."""
    r, alpha, s, beta = params
    log_e1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return np.exp(gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_e1
                  - _loglik_reference(*params, x, tx, T))


@pytest.mark.parametrize("params", [(0.55, 10.58, 0.61, 11.67), (0.55, 30.0, 0.61, 2.0),
                                    (2.0, 5.0, 1.5, 5.0 + 1e-9)])
@pytest.mark.parametrize(("x", "tx", "T"), [(300, 350.0, 400.0), (1500, 1500.0, 2000.0),
                                            (60, 30.0, 70.0), (2, 0.5, 800.0), (0, 0.0, 3.0)])
def test_likelihood_and_p_alive_stable_for_large_frequency_and_age(params, x, tx, T):
    ours = _total_loglik(params, [x], [tx], [T])
    assert np.isfinite(ours)
    assert ours == pytest.approx(_loglik_reference(*params, x, tx, T), rel=1e-10)
    model = ParetoNBDModel()
    model.params_ = dict(zip(NAMES, params, strict=True))
    model.purchase_coefficients_ = model.dropout_coefficients_ = {}
    p_alive = model.conditional_probability_alive([x], [tx], [T])
    np.testing.assert_allclose(p_alive, [_p_alive_reference(params, x, tx, T)], rtol=1e-9)
    assert np.isfinite(model.conditional_expected_number_of_purchases_up_to_time(
        52.0, [x], [tx], [T])).all()


@pytest.mark.parametrize(("params", "x", "tx", "T"), [
    ((0.55, 10.58, 0.61, 11.67), 300, 50.0, 50.0),
    ((0.55, 10.58, 0.61, 11.67), 1000, 5.0, 5.0),
    ((0.55, 2.0, 0.61, 30.0), 300, 0.5, 1000.0),
    ((0.55, 2.0, 0.61, 30.0), 3000, 50.0, 1000.0),
])
def test_lifetimes_gives_nan_where_we_match_the_reference(params, x, tx, T):
    # lifetimes issues #132/#262/#419/#442: scipy's hyp2f1 and a logsumexp of two equal terms
    # give NaN for heavy buyers (and whenever t_x = T); ours is finite and matches the series.
    fitter = lifetimes.ParetoNBDFitter()
    fitter.params_ = pd.Series(params, index=NAMES)
    with np.errstate(all="ignore"):
        assert not np.isfinite(fitter.conditional_probability_alive(x, tx, T))
    assert _total_loglik(params, [x], [tx], [T]) == pytest.approx(
        _loglik_reference(*params, x, tx, T), rel=1e-10)
    model = ParetoNBDModel()
    model.params_ = dict(zip(NAMES, params, strict=True))
    model.purchase_coefficients_ = model.dropout_coefficients_ = {}
    p_alive = model.conditional_probability_alive([x], [tx], [T])
    np.testing.assert_allclose(p_alive, [_p_alive_reference(params, x, tx, T)], rtol=1e-9)


def test_analytic_gradient_matches_finite_differences(cdnow):
    x, tx, T = _history(cdnow)
    rows = _Rows(x.astype(float), tx / T.max(), T / T.max(), np.ones(len(x)))
    for params in ([0.55, 0.27, 0.61, 0.30], [1.7, 3.0, 0.3, 0.05], [0.05, 0.02, 4.0, 0.6],
                   [0.8, 0.4, 1.2, 0.4 + 1e-7], [0.9, 0.2, 1e-5, 1e5],
                   [0.6, 300.0, 0.4, 0.01]):     # the last two by quadrature (z near 1)
        params = np.array(params)
        _, grad = _loglik_grad(params, rows)
        numeric = np.empty(4)
        for j in range(4):
            step = np.zeros(4)
            step[j] = 1e-6 * params[j]
            numeric[j] = (_loglik_grad(params + step, rows)[0]
                          - _loglik_grad(params - step, rows)[0]) / (2 * step[j])
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_covariate_gradient_matches_finite_differences(cdnow):
    x, tx, T = _history(cdnow)
    rng = np.random.default_rng(3)
    X1 = np.column_stack([rng.integers(0, 2, len(x)), rng.normal(size=len(x))])
    X2 = rng.normal(size=(len(x), 1))
    rows = _Rows(x.astype(float), tx / T.max(), T / T.max(), np.ones(len(x)), X1, X2)
    theta = np.array([0.55, 0.27, 0.61, 0.30, 0.4, -0.2, 0.3])
    _, grad = _loglik_grad(theta, rows)
    numeric = np.empty(len(theta))
    for j in range(len(theta)):
        step = np.zeros(len(theta))
        step[j] = 1e-6
        numeric[j] = (_loglik_grad(theta + step, rows)[0]
                      - _loglik_grad(theta - step, rows)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_weighted_unique_rows_equal_all_rows(cdnow, fitted):
    unique = cdnow.groupby(["frequency", "recency", "T"], as_index=False).size()
    assert len(unique) < len(cdnow)
    compressed = ParetoNBDModel().fit(unique["frequency"], unique["recency"], unique["T"],
                                      sample_weight=unique["size"])
    for name in NAMES:
        assert compressed.params_[name] == pytest.approx(fitted.params_[name], rel=1e-6)
        assert compressed.se_[name] == pytest.approx(fitted.se_[name], rel=1e-4)
    assert compressed.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-9)
    assert compressed.n_customers_ == len(cdnow)


# ----------------------------------------------------------------------- simulated truth
def simulate_pareto_nbd(n, r, alpha, s, beta, seed, purchase_factor=None):
    """Customers drawn from the Pareto/NBD with ages uniform in [20, 80] time units.

    ``purchase_factor`` (per customer) multiplies the purchase rate.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n) * (1.0 if purchase_factor is None else purchase_factor)
    mu = rng.gamma(s, 1 / beta, n)
    T = rng.uniform(20, 80, n)
    alive_for = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * alive_for).astype(float)
    # Given x purchases on (0, L], the last is the maximum of x uniforms: L * U^(1/x).
    tx = np.where(x > 0, alive_for * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    return x, tx, T


@pytest.mark.slow
def test_parameter_recovery_on_simulated_customers():
    truth = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 12.0}
    x, tx, T = simulate_pareto_nbd(20_000, *truth.values(), seed=11)
    model = ParetoNBDModel().fit(x, tx, T)
    for name, value in truth.items():
        # Within 4 standard errors and 25 % of the true value.
        assert abs(model.params_[name] - value) < 4 * model.se_[name], name
        assert model.params_[name] == pytest.approx(value, rel=0.25), name


@pytest.fixture(scope="module")
def covariate_data():
    """A binary covariate that doubles the purchase rate (gamma1 = log 2), not the dropout rate."""
    n = 20_000
    rng = np.random.default_rng(5)
    group = rng.integers(0, 2, n).astype(float)
    x, tx, T = simulate_pareto_nbd(n, 0.8, 6.0, 0.7, 12.0, seed=6,
                                   purchase_factor=np.where(group == 1, 2.0, 1.0))
    return x, tx, T, pd.DataFrame({"vip": group}), pd.DataFrame({"vip_dropout": group})


@pytest.mark.slow
def test_covariate_coefficient_recovery(covariate_data):
    x, tx, T, purchase, dropout = covariate_data
    model = ParetoNBDModel().fit(x, tx, T, purchase_covariates=purchase,
                                 dropout_covariates=dropout)
    gamma, se = model.purchase_coefficients_["vip"], model.purchase_coefficient_se_["vip"]
    assert abs(gamma - np.log(2)) < 4 * se
    assert gamma == pytest.approx(np.log(2), abs=0.1)
    # The covariate does not change the dropout rate: its dropout coefficient is 0 within noise.
    assert abs(model.dropout_coefficients_["vip_dropout"]) < 4 * model.dropout_coefficient_se_[
        "vip_dropout"]
    for name, value in {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 12.0}.items():
        assert model.params_[name] == pytest.approx(value, rel=0.25), name
    assert model.covariance_.shape == (6, 6)

    # Predictions use each customer's own rates: the VIP group behaves like a plain model with
    # alpha / exp(gamma).
    plain = ParetoNBDModel()
    plain.params_ = dict(model.params_, alpha=model.params_["alpha"] * np.exp(-gamma))
    plain.purchase_coefficients_ = plain.dropout_coefficients_ = {}
    hist = ([3, 0], [20.0, 0.0], [40.0, 30.0])
    vip = pd.DataFrame({"vip": [1.0, 1.0]})
    zero = pd.DataFrame({"vip_dropout": [0.0, 0.0]})
    np.testing.assert_allclose(
        model.conditional_expected_number_of_purchases_up_to_time(
            10.0, *hist, purchase_covariates=vip, dropout_covariates=zero),
        plain.conditional_expected_number_of_purchases_up_to_time(10.0, *hist), rtol=1e-12)
    np.testing.assert_allclose(
        model.conditional_probability_alive(*hist, purchase_covariates=vip,
                                            dropout_covariates=zero),
        plain.conditional_probability_alive(*hist), rtol=1e-12)
    np.testing.assert_allclose(
        model.expected_number_of_purchases_up_to_time(
            [5.0, 50.0], purchase_covariates=[1.0], dropout_covariates=[0.0]),
        plain.expected_number_of_purchases_up_to_time([5.0, 50.0]), rtol=1e-12)
    np.testing.assert_allclose(
        model.probability_of_n_purchases_up_to_time(
            30.0, [0, 2], purchase_covariates=[1.0], dropout_covariates=[0.0]),
        plain.probability_of_n_purchases_up_to_time(30.0, [0, 2]), rtol=1e-10)


def test_covariates_on_weighted_distinct_rows_equal_per_customer_rows(covariate_data):
    x, tx, T, purchase, _ = covariate_data
    frame = pd.DataFrame({"x": x[:3000].round(), "tx": tx[:3000].round(),
                          "T": T[:3000].round(), "vip": purchase["vip"][:3000]})
    frame.loc[frame.x == 0, "tx"] = 0.0
    per_customer = ParetoNBDModel().fit(frame.x, frame.tx, frame["T"],
                                        purchase_covariates=frame[["vip"]])
    unique = frame.groupby(["x", "tx", "T", "vip"], as_index=False).size()
    assert len(unique) < len(frame)
    weighted = ParetoNBDModel().fit(unique.x, unique.tx, unique["T"],
                                    sample_weight=unique["size"],
                                    purchase_covariates=unique[["vip"]])
    for name in NAMES:
        assert weighted.params_[name] == pytest.approx(per_customer.params_[name], rel=1e-5)
    assert weighted.purchase_coefficients_["vip"] == pytest.approx(
        per_customer.purchase_coefficients_["vip"], rel=1e-5)
    assert weighted.log_likelihood_ == pytest.approx(per_customer.log_likelihood_, rel=1e-9)


# ----------------------------------------------------------------------- contract, inputs
def test_predict_before_fit_and_clone():
    model = ParetoNBDModel(penalizer_coef=0.1, tol=1e-6, max_iter=50)
    with pytest.raises(NotFittedError):
        model.conditional_probability_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        model.expected_number_of_purchases_up_to_time(1.0)
    assert clone(model).get_params() == {"penalizer_coef": 0.1, "tol": 1e-6, "max_iter": 50}
    assert ParetoNBDModel.model_name == "pareto_nbd"


def test_penalizer_shrinks_parameters(cdnow, fitted):
    penalized = ParetoNBDModel(penalizer_coef=0.1).fit(*_history(cdnow))
    t_max = cdnow["T"].max()

    def scaled(m):
        p = m.params_
        return np.array([p["r"], p["alpha"] / t_max, p["s"], p["beta"] / t_max])

    assert np.sum(scaled(penalized) ** 2) < np.sum(scaled(fitted) ** 2)


def test_not_converged_is_an_error(cdnow):
    with pytest.raises(FitError) as info:
        ParetoNBDModel(max_iter=1).fit(*_history(cdnow))
    assert info.value.key == "error.clv_model.not_converged"
    assert "Pareto/NBD" in str(info.value)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "key", "fragment"),
    [
        ([1, 2], [5.0, 9.0], [4.0, 10.0], "recency_after_T", "row 0 has recency 5.0 > T 4.0"),
        ([1, -1], [1.0, 0.0], [4.0, 10.0], "negative_frequency", "row 1 has -1.0"),
        ([1, 2], [1.0, np.nan], [4.0, 10.0], "not_finite", "recency has 1 missing"),
        ([1.5, 2], [1.0, 2.0], [4.0, 10.0], "fractional_frequency", "row 0 has 1.5"),
        ([0, 2], [1.0, 2.0], [4.0, 10.0], "recency_without_repeat", "row 0 has frequency 0"),
        ([1, 2], [1.0, -2.0], [4.0, 10.0], "negative_recency", "row 1 has -2.0"),
        ([1, 2, 3], [1.0, 2.0], [4.0, 10.0], "length_mismatch", "frequency=3, recency=2"),
        ([], [], [], "empty", "empty"),
    ],
)
def test_hostile_inputs_are_refused_with_clear_messages(frequency, recency, T, key, fragment):
    with pytest.raises(InputError) as info:
        ParetoNBDModel().fit(frequency, recency, T)
    assert info.value.key == f"error.clv_model.{key}"
    assert fragment in info.value.message("en")
    assert info.value.message("zh") != info.value.message("en")


def test_bad_covariates_weights_and_horizons_are_refused(cdnow, fitted):
    x, tx, T = _history(cdnow)
    with pytest.raises(InputError, match="sample_weight"):
        ParetoNBDModel().fit(x, tx, T, sample_weight=-np.ones(len(x)))
    with pytest.raises(InputError) as info:
        ParetoNBDModel().fit(x, tx, T, purchase_covariates=np.ones((len(x) - 1, 1)))
    assert info.value.key == "error.clv_pareto.covariate_rows"
    assert "purchase_covariates has 2356 rows" in info.value.message("en")
    bad = np.ones(len(x))
    bad[7] = np.nan
    with pytest.raises(InputError) as info:
        ParetoNBDModel().fit(x, tx, T, dropout_covariates=bad)
    assert info.value.key == "error.clv_model.not_finite"
    assert "first at row 7" in info.value.message("en")
    with pytest.raises(InputError) as info:
        fitted.conditional_probability_alive(x, tx, T, purchase_covariates=np.ones(len(x)))
    assert info.value.key == "error.clv_pareto.covariates_not_fitted"
    with pytest.raises(InputError):
        fitted.conditional_expected_number_of_purchases_up_to_time(-1.0, x, tx, T)
    with pytest.raises(InputError):
        fitted.probability_of_n_purchases_up_to_time(10.0, 1.5)


def test_covariates_are_required_at_prediction_when_fitted_with_them(cdnow):
    x, tx, T = _history(cdnow)
    group = pd.DataFrame({"vip": (np.arange(len(x)) % 2).astype(float)})
    model = ParetoNBDModel().fit(x, tx, T, purchase_covariates=group)
    assert set(model.purchase_coefficients_) == {"vip"} and model.dropout_coefficients_ == {}
    with pytest.raises(InputError) as info:
        model.conditional_probability_alive(x, tx, T)
    assert info.value.key == "error.clv_pareto.covariates_missing"
    assert "vip" in info.value.message("en") and "vip" in info.value.message("zh")
    with pytest.raises(InputError) as info:
        model.conditional_probability_alive(x, tx, T, purchase_covariates=np.ones((len(x), 2)))
    assert info.value.key == "error.clv_pareto.covariate_columns"
    p_alive = model.conditional_probability_alive(x, tx, T, purchase_covariates=group)
    assert p_alive.shape == x.shape and np.all((p_alive > 0) & (p_alive <= 1))


def test_covariates_in_caller_units_and_matched_by_name(cdnow):
    # Covariates are standardized inside the fit: an affine change of a covariate changes
    # only its coefficient (and the baseline), not the fit; DataFrames are matched by name.
    x, tx, T = _history(cdnow)
    rng = np.random.default_rng(8)
    age = rng.uniform(20, 70, len(x))
    vip = (np.arange(len(x)) % 3 == 0).astype(float)
    years = ParetoNBDModel().fit(x, tx, T, purchase_covariates=pd.DataFrame({"age": age,
                                                                               "vip": vip}))
    decades = ParetoNBDModel().fit(x, tx, T, purchase_covariates=pd.DataFrame(
        {"age": (age - 20) / 10, "vip": vip}))
    assert decades.log_likelihood_ == pytest.approx(years.log_likelihood_, rel=1e-9)
    assert decades.purchase_coefficients_["age"] == pytest.approx(
        10 * years.purchase_coefficients_["age"], rel=1e-4)
    assert decades.purchase_coefficient_se_["age"] == pytest.approx(
        10 * years.purchase_coefficient_se_["age"], rel=1e-3)
    assert decades.params_["alpha"] == pytest.approx(
        years.params_["alpha"] * np.exp(-20 * years.purchase_coefficients_["age"]), rel=1e-4)
    assert decades.purchase_coefficient_se_["vip"] == pytest.approx(
        years.purchase_coefficient_se_["vip"], rel=1e-3)
    swapped = pd.DataFrame({"vip": vip, "age": age})
    np.testing.assert_allclose(
        years.conditional_probability_alive(x, tx, T, purchase_covariates=swapped),
        years.conditional_probability_alive(x, tx, T, purchase_covariates=swapped[["age",
                                                                                   "vip"]]))
    renamed = swapped.rename(columns={"age": "a"})
    with pytest.raises(InputError) as info:
        years.conditional_probability_alive(x, tx, T, purchase_covariates=renamed)
    assert info.value.key == "error.clv_pareto.covariate_names"
    with pytest.raises(InputError) as info:
        ParetoNBDModel().fit(x, tx, T, dropout_covariates=pd.DataFrame({"one": np.ones(len(x))}))
    assert info.value.key == "error.clv_pareto.covariate_constant"
    assert "one" in info.value.message("en")


# ----------------------------------------------------------------------- z near 1: quadrature
def _ratio_params(one_minus_z, y, small, alpha_is_small):
    """``(alpha, beta)`` with ``(min + y) / (max + y)`` equal to ``one_minus_z``."""
    big = (small + y) / one_minus_z - y
    return (small, big) if alpha_is_small else (big, small)


@pytest.mark.parametrize("kind", ["G", "H"])
@pytest.mark.parametrize("alpha_is_small", [True, False])
@pytest.mark.parametrize("one_minus_z", [1e-2, 3e-3, 1e-3])
@pytest.mark.parametrize(("r", "s"), [(0.55, 0.61), (2.0, 0.05), (0.05, 3.0)])
def test_quadrature_equals_the_series_where_both_apply(kind, alpha_is_small, one_minus_z, r, s):
    # 1 - z from 1e-2 to 1e-3: the series still converges (in up to ~40,000 terms), the
    # quadrature path takes over below 1 - z = 0.02. Value and all four derivatives agree.
    x = np.array([0.0, 1.0, 7.0, 60.0, 400.0])
    for y in (0.0, 2.5, 40.0):
        alpha, beta = _ratio_params(one_minus_z, y, 3.0, alpha_is_small)
        series = pn._log_tail_series(kind, r, s, x, np.full(5, y), alpha, beta)
        p = r + x + (kind == "H")
        q = np.full(5, s + (kind == "G"))
        quadrature = pn._log_tail_quadrature(p, q, np.full(5, alpha), np.full(5, beta),
                                             np.full(5, y))
        np.testing.assert_allclose(quadrature[0], series[0], rtol=1e-12, atol=1e-12)
        # Derivative scales: log terms for r, s; rates over (rate + y) for alpha, beta.
        scales = (np.log(max(alpha, beta) + y), np.log(max(alpha, beta) + y),
                  (r + x + 1) / (alpha + y), (s + 1) / (beta + y))
        for got, want, scale in zip(quadrature[1:], series[1:], scales, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.max(scale))


@pytest.mark.parametrize("params", [[0.55, 0.27, 0.61, 100.0], [0.8, 50.0, 0.3, 0.1]])
def test_likelihood_and_gradient_equal_by_series_and_by_quadrature(cdnow, monkeypatch, params):
    # Rates 400-500x apart: every tail has 1 - z between 2e-3 and 2e-2, where both paths are
    # valid. Forcing either path everywhere gives the same total log-likelihood and gradient.
    x, tx, T = _history(cdnow)
    rows = _Rows(x.astype(float), tx / T.max(), T / T.max(), np.ones(len(x)))
    theta = np.array(params)
    results = {}
    for path, below in (("series", 0.0), ("quadrature", 1.0)):
        monkeypatch.setattr(pn, "_QUADRATURE_BELOW", below)
        results[path] = _loglik_grad(theta, rows)
    assert results["quadrature"][0] == pytest.approx(results["series"][0], rel=1e-12)
    np.testing.assert_allclose(results["quadrature"][1], results["series"][1], rtol=1e-10)


def _loglik_by_finite_integral(params, x, tx, T):
    """Fader-Hardie eq. (18) with the integral over (t_x, T) by adaptive quadrature (scipy).

    Independent of both of our paths (no tail to infinity, no hypergeometric function); the
    integrand is scaled by its value at t_x so that nothing underflows.
    """
    r, alpha, s, beta = params

    def log_f(tau):
        return -(r + x) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau)

    scale = log_f(tx)
    integral = quad(lambda tau: np.exp(log_f(tau) - scale), tx, T, epsabs=0.0, epsrel=1e-13,
                    limit=200)[0]
    log_e1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_dead = np.log(s) + scale + np.log(integral) if T > tx else -np.inf
    log_bracket = np.logaddexp(log_e1, log_dead)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_bracket
    # 1 - P(alive) as its own ratio (~1e-12 at the no-dropout boundary).
    return ll, np.exp(log_dead - log_bracket)


@pytest.mark.parametrize("params", [
    (0.918, 11.72, 1.05e-6, 5.59e6),    # the Online Retail fit (weeks): no dropout
    (0.55, 10.58, 0.02, 3.0e4),         # heavy-tailed dropout, rates 3,000x apart
    (0.4, 2.0e4, 0.61, 2.0),            # purchase rate scale far above the dropout one
])
@pytest.mark.parametrize(("x", "tx", "T"), [(0, 0.0, 53.0), (1, 3.0, 40.0), (12, 50.0, 53.0),
                                            (40, 20.0, 53.0), (300, 52.0, 53.0)])
def test_likelihood_and_p_alive_near_the_boundary_equal_an_independent_integral(params, x, tx, T):
    ll, dead_share = _loglik_by_finite_integral(params, x, tx, T)
    assert _total_loglik(params, [x], [tx], [T]) == pytest.approx(ll, rel=1e-11)
    model = ParetoNBDModel()
    model.params_ = dict(zip(NAMES, params, strict=True))
    model.purchase_coefficients_ = model.dropout_coefficients_ = {}
    p_alive = model.conditional_probability_alive([x], [tx], [T])
    # P(alive) comes from a difference of logs of size (r+x) log(alpha+T): absolute ~1e-13.
    assert 1.0 - p_alive[0] == pytest.approx(dead_share, rel=1e-6, abs=1e-12)
    expected = model.conditional_expected_number_of_purchases_up_to_time(13.0, [x], [tx], [T])
    assert np.isfinite(expected).all() and expected[0] > 0


def simulate_nbd_weeks(n, r, alpha, seed):
    """Customers who never drop out (NBD), ages 1-53 whole weeks, recency in whole weeks."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    T = rng.integers(1, 54, n).astype(float)
    x = rng.poisson(lam * T).astype(float)
    last = T * rng.random(n) ** (1 / np.maximum(x, 1))
    return x, np.where(x > 0, np.minimum(np.ceil(last), T), 0.0), T


def _nbd_fit(x, T):
    """Maximum log-likelihood of the NBD (the Pareto/NBD's beta -> infinity limit)."""

    def nll(phi):
        r, alpha = np.exp(phi)
        return -np.sum(gammaln(r + x) - gammaln(r) + r * np.log(alpha)
                       - (r + x) * np.log(alpha + T))

    result = minimize(nll, [0.0, 0.0], method="Nelder-Mead",
                      options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 4000})
    return -result.fun, np.exp(result.x)


@pytest.fixture(scope="module")
def no_dropout():
    """Online Retail-like data (no dropout, weekly whole numbers), the fit and its spies."""
    x, tx, T = simulate_nbd_weeks(5000, 0.9, 12.0, seed=1)
    largest_z, quadrature_points = [], []
    series, quadrature = pn.log_hyp2f1_1ec, pn._log_tail_quadrature

    def series_spy(e, c, z):
        largest_z.append(float(np.max(z, initial=0.0)))
        return series(e, c, z)

    def quadrature_spy(p, *rest):
        quadrature_points.append(len(p))
        return quadrature(p, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pn, "log_hyp2f1_1ec", series_spy)
        patch.setattr(pn, "_log_tail_quadrature", quadrature_spy)
        model = ParetoNBDModel().fit(x, tx, T)
    return x, tx, T, model, max(largest_z), sum(quadrature_points)


def test_no_dropout_boundary_is_fitted_without_long_series(no_dropout):
    # The fit heads to beta -> infinity; there z -> 1 and the series would need ~1/(1-z)
    # terms (up to 131,072 per point before). The series now only sees z <= 0.98 (at most a
    # few thousand terms); the rest went through the quadrature.
    x, tx, T, model, largest_z, quadrature_points = no_dropout
    assert largest_z <= 1.0 - pn._QUADRATURE_BELOW
    assert quadrature_points > 0
    assert model.converged_ and model.n_iter_ < 100
    p = model.params_
    assert p["s"] / p["beta"] < 1e-6          # mean dropout rate: none to speak of
    nbd_ll, (r, alpha) = _nbd_fit(x, T)
    assert p["r"] == pytest.approx(r, rel=1e-4) and p["alpha"] == pytest.approx(alpha, rel=1e-4)
    # The NBD is the supremum along the boundary; the fit reaches it to optimiser precision.
    assert model.log_likelihood_ >= nbd_ll - 1e-9 * abs(nbd_ll)


def test_predictions_at_the_no_dropout_boundary_are_the_nbd_ones(no_dropout):
    x, tx, T, model, _, _ = no_dropout
    p_alive = model.conditional_probability_alive(x, tx, T)
    assert np.all(p_alive > 1 - 1e-4) and np.all(p_alive <= 1.0)
    r, alpha = model.params_["r"], model.params_["alpha"]
    # Alive for sure, the NBD posterior rate (r+x)/(alpha+T) gives the expectation.
    np.testing.assert_allclose(
        model.conditional_expected_number_of_purchases_up_to_time(26.0, x, tx, T),
        26.0 * (r + x) / (alpha + T), rtol=1e-4)
    np.testing.assert_allclose(model.expected_number_of_purchases_up_to_time([1.0, 52.0]),
                               r / alpha * np.array([1.0, 52.0]), rtol=1e-4)
    n = np.arange(6)
    nbd_pmf = np.exp(gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log(alpha / (alpha + 52))
                     + n * np.log(52 / (alpha + 52)))
    np.testing.assert_allclose(model.probability_of_n_purchases_up_to_time(52.0, n), nbd_pmf,
                               rtol=1e-4)
