"""BG/NBD: published CDNOW figures, lifetimes as an oracle, weights, recovery, gradient, inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crmlens.clv._fitting import FitError
from crmlens.clv.bgnbd import BetaGeoModel, _loglik_grad, _Summary
from crmlens.errors import InputError

lifetimes = pytest.importorskip("lifetimes")
from lifetimes.datasets import load_cdnow_summary  # noqa: E402

NAMES = ["r", "alpha", "a", "b"]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def fitted(cdnow) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="module")
def oracle(cdnow, fitted):
    """lifetimes' fitter, its own fit kept aside, then set to OUR parameters for predictions."""
    fitter = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    own = fitter.params_.copy()
    own_se = fitter.standard_errors_.copy()
    fitter.params_[:] = [fitted.params_[k] for k in NAMES]
    return fitter, own, own_se


def _history(cdnow):
    return cdnow["frequency"].to_numpy(), cdnow["recency"].to_numpy(), cdnow["T"].to_numpy()


def test_published_cdnow_parameters(fitted):
    # Fader, Hardie & Lee (2005), CDNOW 1/10th sample: r=0.243 alpha=4.414 a=0.793 b=2.426,
    # LL = -9582.4.
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert fitted.params_[name] == pytest.approx(value, abs=6e-4)
    assert fitted.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert fitted.converged_


def test_parameters_and_standard_errors_equal_lifetimes(fitted, oracle):
    _, own, own_se = oracle
    for name in NAMES:
        assert fitted.params_[name] == pytest.approx(own[name], rel=1e-3)
        assert fitted.se_[name] == pytest.approx(own_se[name], rel=1e-3)


@pytest.mark.parametrize("t", [0.5, 1.0, 10.0, 39.0, 150.0])
def test_conditional_expected_purchases_equal_lifetimes(cdnow, fitted, oracle, t):
    fitter, *_ = oracle
    x, tx, T = _history(cdnow)
    ours = fitted.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    theirs = fitter.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_probability_alive_equals_lifetimes(cdnow, fitted, oracle):
    fitter, *_ = oracle
    x, tx, T = _history(cdnow)
    np.testing.assert_allclose(
        fitted.conditional_probability_alive(x, tx, T),
        fitter.conditional_probability_alive(x, tx, T),
        rtol=1e-6,
    )
    assert np.all(fitted.conditional_probability_alive(x, tx, T)[x == 0] == 1.0)


def test_unconditional_expectation_equals_lifetimes(fitted, oracle):
    fitter, *_ = oracle
    t = np.array([0.1, 1.0, 13.0, 52.0, 78.0, 500.0])
    np.testing.assert_allclose(
        fitted.expected_number_of_purchases_up_to_time(t),
        fitter.expected_number_of_purchases_up_to_time(t),
        rtol=1e-6,
    )
    assert fitted.expected_number_of_purchases_up_to_time(0.0) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("t", [1.0, 30.0, 78.0])
def test_probability_of_n_purchases_equals_lifetimes(fitted, oracle, t):
    fitter, *_ = oracle
    for n in range(0, 12):
        assert fitted.probability_of_n_purchases_up_to_time(t, n) == pytest.approx(
            fitter.probability_of_n_purchases_up_to_time(t, n), rel=1e-6
        )


def test_probability_of_n_purchases_is_a_distribution_with_the_right_mean(fitted):
    n = np.arange(0, 3000)
    pmf = fitted.probability_of_n_purchases_up_to_time(40.0, n)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (n * pmf).sum() == pytest.approx(
        fitted.expected_number_of_purchases_up_to_time(40.0).item(), rel=1e-7
    )


def _hyp2f1_series(a, b, c, z, terms=40000):
    """Reference 2F1 by summing its power series in log space (valid for |z| < 1)."""
    k = np.arange(terms)
    log_terms = (gammaln(a + k) - gammaln(a) + gammaln(b + k) - gammaln(b) - gammaln(c + k)
                 + gammaln(c) - gammaln(k + 1) + k * np.log(z))
    top = log_terms.max()
    return top + np.log(np.exp(log_terms - top).sum())


@pytest.mark.parametrize(("x", "T", "t"), [(300, 400.0, 52.0), (1500, 2000.0, 200.0),
                                             (60, 70.0, 30.0)])
def test_conditional_expectation_stable_for_large_frequency_and_age(fitted, x, T, t):
    # Direct form of eq. (10): hyp2f1(r+x, b+x; a+b+x-1; z) overflows in scipy for large x.
    r, alpha, a, b = (fitted.params_[k] for k in NAMES)
    tx = 0.9 * T
    z = t / (alpha + T + t)
    log_hyp = _hyp2f1_series(r + x, b + x, a + b + x - 1, z) + (r + x) * np.log(
        (alpha + T) / (alpha + T + t))
    p_alive = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))
    expected = (a + b + x - 1) / (a - 1) * -np.expm1(log_hyp) * p_alive
    ours = fitted.conditional_expected_number_of_purchases_up_to_time(t, [x], [tx], [T])
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, [expected], rtol=1e-7)


def test_weighted_unique_rows_equal_all_rows(cdnow, fitted):
    unique = cdnow.groupby(["frequency", "recency", "T"], as_index=False).size()
    assert len(unique) < len(cdnow)
    compressed = BetaGeoModel().fit(unique["frequency"], unique["recency"], unique["T"],
                                    sample_weight=unique["size"])
    for name in NAMES:
        assert compressed.params_[name] == pytest.approx(fitted.params_[name], rel=1e-6)
        assert compressed.se_[name] == pytest.approx(fitted.se_[name], rel=1e-4)
    assert compressed.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-9)
    assert compressed.n_customers_ == len(cdnow)


def test_analytic_gradient_matches_finite_differences(cdnow):
    x, tx, T = _history(cdnow)
    summary = _Summary(x.astype(float), tx / T.max(), T / T.max(), np.ones(len(x)))
    for params in ([0.24, 0.11, 0.79, 2.4], [1.7, 3.0, 0.3, 9.0], [0.05, 0.02, 4.0, 0.6]):
        params = np.array(params)
        _, grad = _loglik_grad(params, summary)
        numeric = np.empty(4)
        for j in range(4):
            step = np.zeros(4)
            step[j] = 1e-5 * params[j]
            numeric[j] = (_loglik_grad(params + step, summary)[0]
                          - _loglik_grad(params - step, summary)[0]) / (2 * step[j])
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def simulate_bgnbd(n, r, alpha, a, b, seed):
    """Customers drawn from BG/NBD with ages uniform in [20, 80] time units."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(20, 80, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    now = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        now[alive] += rng.exponential(1 / lam[alive])
        bought = alive & (now <= T)
        x[bought] += 1
        tx[bought] = now[bought]
        alive = bought & (rng.random(n) > p)
    return x, tx, T


@pytest.mark.slow
def test_parameter_recovery_on_simulated_customers():
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 2.5}
    x, tx, T = simulate_bgnbd(40_000, *truth.values(), seed=7)
    model = BetaGeoModel().fit(x, tx, T)
    for name, value in truth.items():
        # Tolerance: within 4 standard errors and 20 % of the true value.
        assert abs(model.params_[name] - value) < 4 * model.se_[name], name
        assert model.params_[name] == pytest.approx(value, rel=0.2), name


def test_predict_before_fit_and_clone():
    model = BetaGeoModel(penalizer_coef=0.1, tol=1e-6, max_iter=50)
    with pytest.raises(NotFittedError):
        model.conditional_probability_alive([1], [1], [2])
    assert clone(model).get_params() == {"penalizer_coef": 0.1, "tol": 1e-6, "max_iter": 50}


def test_penalizer_shrinks_parameters(cdnow, fitted):
    penalized = BetaGeoModel(penalizer_coef=0.1).fit(*_history(cdnow))
    scaled = lambda m: np.array([m.params_["r"], m.params_["alpha"] / cdnow["T"].max(),  # noqa: E731
                                 m.params_["a"], m.params_["b"]])
    assert np.sum(scaled(penalized) ** 2) < np.sum(scaled(fitted) ** 2)


def test_not_converged_is_an_error(cdnow):
    with pytest.raises(FitError) as info:
        BetaGeoModel(max_iter=1).fit(*_history(cdnow))
    assert info.value.key == "error.clv_model.not_converged"
    assert "did not converge" in str(info.value)


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
        BetaGeoModel().fit(frequency, recency, T)
    assert info.value.key == f"error.clv_model.{key}"
    assert fragment in info.value.message("en")
    assert info.value.message("zh") != info.value.message("en")


def test_bad_weights_and_horizons_are_refused(cdnow, fitted):
    x, tx, T = _history(cdnow)
    with pytest.raises(InputError, match="sample_weight"):
        BetaGeoModel().fit(x, tx, T, sample_weight=-np.ones(len(x)))
    with pytest.raises(InputError):
        fitted.conditional_expected_number_of_purchases_up_to_time(-1.0, x, tx, T)
    with pytest.raises(InputError):
        fitted.probability_of_n_purchases_up_to_time(10.0, 1.5)


def test_warm_start_on_a_sample_reaches_the_same_optimum(cdnow, fitted, monkeypatch):
    # Above WARM_START_ROWS rows the fit starts from the optimum of a customer sample; the
    # full fit decides convergence, so the estimate is the same maximum likelihood.
    import crmlens.clv._fitting as fitting
    import crmlens.clv.bgnbd as bgnbd

    monkeypatch.setattr(fitting, "WARM_START_ROWS", 500)
    sample = fitting.warm_start_weights(np.ones(len(cdnow)))
    assert sample is not None and sample.sum() == pytest.approx(len(cdnow))
    assert 0 < np.count_nonzero(sample) <= 500
    calls = []
    real = bgnbd.warm_start_weights
    monkeypatch.setattr(bgnbd, "warm_start_weights",
                        lambda w: calls.append(1) or real(w))
    warm = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert calls
    for name in NAMES:
        assert warm.params_[name] == pytest.approx(fitted.params_[name], rel=1e-5)
    assert warm.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-10)


@pytest.mark.parametrize("values", [[3.0, 0.0, 3.0, 7.0, 1.0], [0.5, 2.0, 0.5], [2e7, 1.0]])
def test_distinct_values_equal_numpy_unique(values):
    from crmlens.clv.bgnbd import _distinct

    values = np.array(values)
    got, index = _distinct(values)
    want, want_index = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(index, want_index)


@pytest.mark.parametrize("T", [5.0, 40.0, 150.0])
def test_conditional_expectation_when_a_plus_b_is_below_one(T):
    # For x = 0 and a + b < 1 the 2F1's third parameter a + b - 1 is negative and the 2F1 is
    # negative: the expectation is still finite (found with a penalised fit on real data).
    r, alpha, a, b, t = 0.6955, 4.2214, 0.2831, 0.4953, 52.0
    model = BetaGeoModel()
    model.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
    c, z = a + b - 1, t / (alpha + T + t)
    k = np.arange(20000)
    # Power series of 2F1(r, b; c; z) with signed terms (c < 0 makes the first terms negative).
    ratio = (r + k) * (b + k) / ((c + k) * (k + 1)) * z
    hyp = 1 + np.cumprod(ratio).sum()
    expected = c / (a - 1) * (1 - hyp * ((alpha + T) / (alpha + T + t)) ** r)
    ours = model.conditional_expected_number_of_purchases_up_to_time(t, [0], [0], [T])
    assert expected > 0 and (hyp < 0 or T > 5)
    np.testing.assert_allclose(ours, [expected], rtol=1e-9)
