"""MBG/NBD: lifetimes as an oracle on CDNOW, weights, P(X(t)=n), recovery, gradient, inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crmlens.clv._fitting import FitError
from crmlens.clv.bgnbd import BetaGeoModel
from crmlens.clv.mbgnbd import ModifiedBetaGeoModel, _loglik_grad, _Summary
from crmlens.errors import InputError

lifetimes = pytest.importorskip("lifetimes")
from lifetimes.datasets import load_cdnow_summary  # noqa: E402

NAMES = ["r", "alpha", "a", "b"]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def fitted(cdnow) -> ModifiedBetaGeoModel:
    return ModifiedBetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="module")
def oracle(cdnow, fitted):
    """lifetimes' fitter, its own fit kept aside, then set to OUR parameters for predictions."""
    fitter = lifetimes.ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"],
                                                   cdnow["T"])
    own = fitter.params_.copy()
    own_se = fitter.standard_errors_.copy()
    own_ll = -fitter._negative_log_likelihood_ * len(cdnow)
    fitter.params_[:] = [fitted.params_[k] for k in NAMES]
    return fitter, own, own_se, own_ll


def _history(cdnow):
    return cdnow["frequency"].to_numpy(), cdnow["recency"].to_numpy(), cdnow["T"].to_numpy()


def test_model_name():
    assert ModifiedBetaGeoModel.model_name == "mbgnbd"


def test_cdnow_parameters_and_standard_errors_equal_lifetimes(fitted, oracle):
    # No MBG/NBD CDNOW estimates are published with this summary; lifetimes 0.11.3 gives
    # r=0.525, alpha=6.183, a=0.891, b=1.614.
    _, own, own_se, _ = oracle
    for name in NAMES:
        assert fitted.params_[name] == pytest.approx(own[name], rel=1e-3)
        assert fitted.se_[name] == pytest.approx(own_se[name], rel=1e-3)
    assert fitted.converged_
    assert fitted.n_customers_ == 2357


def test_log_likelihood_is_the_density_of_the_data(cdnow, fitted, oracle):
    # lifetimes reports the NLL in time scaled by its own internal factor; recompute its
    # objective in the caller's unit at our parameters.
    fitter, *_ = oracle
    x, tx, T = _history(cdnow)
    log_params = np.log([fitted.params_[k] for k in NAMES])
    theirs = -fitter._negative_log_likelihood(log_params, x, tx, T, np.ones(len(x)), 0.0)
    assert fitted.log_likelihood_ == pytest.approx(theirs * len(x), rel=1e-10)
    # Better than BG/NBD's published -9582.4 (one more way to drop out, same parameter count).
    assert fitted.log_likelihood_ > -9582.4


@pytest.mark.parametrize("t", [0.5, 1.0, 10.0, 39.0, 150.0])
def test_conditional_expected_purchases_equal_lifetimes(cdnow, fitted, oracle, t):
    fitter, *_ = oracle
    x, tx, T = _history(cdnow)
    ours = fitted.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    theirs = fitter.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_probability_alive_equals_lifetimes_and_is_below_one_for_one_time_buyers(
    cdnow, fitted, oracle
):
    fitter, *_ = oracle
    x, tx, T = _history(cdnow)
    ours = fitted.conditional_probability_alive(x, tx, T)
    np.testing.assert_allclose(ours, fitter.conditional_probability_alive(x, tx, T), rtol=1e-6)
    assert np.all(ours[x == 0] < 1.0)
    # Among one-time buyers, the longer silent the less likely alive.
    one = fitted.conditional_probability_alive([0, 0, 0], [0, 0, 0], [1.0, 20.0, 80.0])
    assert one[0] > one[1] > one[2]


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


@pytest.mark.parametrize("t", [0.0, 5.0, 40.0, 300.0])
def test_probability_of_n_purchases_is_a_distribution_with_the_right_mean(fitted, t):
    n = np.arange(0, 5000)
    pmf = fitted.probability_of_n_purchases_up_to_time(t, n)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (n * pmf).sum() == pytest.approx(
        fitted.expected_number_of_purchases_up_to_time(t).item(), rel=1e-7, abs=1e-12
    )


def test_probability_of_n_purchases_matches_simulation(fitted):
    # Independent check of the derivation: simulate the MBG/NBD story directly.
    r, alpha, a, b = (fitted.params_[k] for k in NAMES)
    rng = np.random.default_rng(3)
    n, t = 200_000, 30.0
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    dropped_after = rng.geometric(p) - 1            # purchases after which the customer leaves
    bought = np.minimum(rng.poisson(lam * t), dropped_after)
    for k in range(4):
        share = np.mean(bought == k)
        expected = fitted.probability_of_n_purchases_up_to_time(t, k).item()
        assert share == pytest.approx(expected, abs=4 * np.sqrt(expected / n) + 1e-4)


def test_conditional_expectation_stable_for_large_frequency_and_age(fitted, oracle):
    fitter, *_ = oracle
    x, T, t = np.array([60, 300, 1500]), np.array([70.0, 400.0, 2000.0]), 52.0
    ours = fitted.conditional_expected_number_of_purchases_up_to_time(t, x, 0.9 * T, T)
    assert np.isfinite(ours).all() and np.all(ours > 0)
    with np.errstate(all="ignore"):
        theirs = fitter.conditional_expected_number_of_purchases_up_to_time(t, x, 0.9 * T, T)
    # scipy's direct 2F1 is still fine at x = 60: the transformed form agrees there.
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-7)


def test_weighted_unique_rows_equal_all_rows(cdnow, fitted):
    unique = cdnow.groupby(["frequency", "recency", "T"], as_index=False).size()
    assert len(unique) < len(cdnow)
    compressed = ModifiedBetaGeoModel().fit(unique["frequency"], unique["recency"], unique["T"],
                                            sample_weight=unique["size"])
    for name in NAMES:
        assert compressed.params_[name] == pytest.approx(fitted.params_[name], rel=1e-6)
        assert compressed.se_[name] == pytest.approx(fitted.se_[name], rel=1e-4)
    assert compressed.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-9)
    assert compressed.n_customers_ == len(cdnow)


def test_analytic_gradient_matches_finite_differences(cdnow):
    x, tx, T = _history(cdnow)
    summary = _Summary(x.astype(float), tx / T.max(), T / T.max(), np.ones(len(x)))
    for params in ([0.5, 0.16, 0.89, 1.6], [1.7, 3.0, 0.3, 9.0], [0.05, 0.02, 4.0, 0.6]):
        params = np.array(params)
        _, grad = _loglik_grad(params, summary)
        numeric = np.empty(4)
        for j in range(4):
            step = np.zeros(4)
            step[j] = 1e-5 * params[j]
            numeric[j] = (_loglik_grad(params + step, summary)[0]
                          - _loglik_grad(params - step, summary)[0]) / (2 * step[j])
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def simulate_mbgnbd(n, r, alpha, a, b, seed, *, low=20.0, high=80.0):
    """Customers drawn from MBG/NBD (dropout also right after the first purchase)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(low, high, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    now = np.zeros(n)
    alive = rng.random(n) > p
    while alive.any():
        now[alive] += rng.exponential(1 / lam[alive])
        bought = alive & (now <= T)
        x[bought] += 1
        tx[bought] = now[bought]
        alive = bought & (rng.random(n) > p)
    return x, tx, T


def test_parameter_recovery_on_simulated_customers():
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 2.5}
    x, tx, T = simulate_mbgnbd(20_000, *truth.values(), seed=7)
    model = ModifiedBetaGeoModel().fit(x, tx, T)
    for name, value in truth.items():
        # Within 4 standard errors and 25 % of the true value.
        assert abs(model.params_[name] - value) < 4 * model.se_[name], name
        assert model.params_[name] == pytest.approx(value, rel=0.25), name


def test_one_time_buyers_are_not_assumed_alive_where_bgnbd_collapses():
    # 60 % drop out right after their first purchase; the rest never drop out. BG/NBD can only
    # explain the silent majority by slow buying, so a -> 0 and every P(alive) is 1; MBG/NBD
    # sees the dropout at time 0.
    rng = np.random.default_rng(5)
    n = 20_000
    T = rng.uniform(40, 80, n)
    x = rng.poisson(rng.gamma(2.0, 1 / 4.0, n) * T).astype(float)
    tx = np.where(x > 0, T * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    gone = rng.random(n) < 0.6
    x[gone], tx[gone] = 0.0, 0.0

    bg = BetaGeoModel().fit(x, tx, T)
    assert bg.params_["a"] < 1e-4
    assert bg.conditional_probability_alive(x, tx, T).min() > 0.9999

    mbg = ModifiedBetaGeoModel().fit(x, tx, T)
    assert mbg.log_likelihood_ > bg.log_likelihood_ + 100
    p_alive = mbg.conditional_probability_alive(x, tx, T)
    one_time = x == 0
    assert p_alive[one_time].max() < 0.05
    # Repeat buyers who bought recently stay alive.
    recent = (x >= 3) & (tx > 0.9 * T)
    assert p_alive[recent].min() > 0.95
    # Expected future purchases of silent one-time buyers shrink accordingly.
    assert np.all(mbg.conditional_expected_number_of_purchases_up_to_time(
        52.0, x[one_time], tx[one_time], T[one_time]) < 0.05 * 2.0 / 4.0 * 52.0)


def test_predict_before_fit_and_clone():
    model = ModifiedBetaGeoModel(penalizer_coef=0.1, tol=1e-6, max_iter=50)
    with pytest.raises(NotFittedError):
        model.conditional_probability_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        model.expected_number_of_purchases_up_to_time(1.0)
    assert clone(model).get_params() == {"penalizer_coef": 0.1, "tol": 1e-6, "max_iter": 50}


def test_penalizer_shrinks_parameters(cdnow, fitted):
    penalized = ModifiedBetaGeoModel(penalizer_coef=0.1).fit(*_history(cdnow))
    def scaled(m):
        return np.array([m.params_["r"], m.params_["alpha"] / cdnow["T"].max(), m.params_["a"],
                         m.params_["b"]])

    assert np.sum(scaled(penalized) ** 2) < np.sum(scaled(fitted) ** 2)


def test_not_converged_is_an_error(cdnow):
    with pytest.raises(FitError) as info:
        ModifiedBetaGeoModel(max_iter=1).fit(*_history(cdnow))
    assert info.value.key == "error.clv_model.not_converged"
    assert "MBG/NBD" in str(info.value)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "key", "fragment"),
    [
        ([1, 2], [5.0, 9.0], [4.0, 10.0], "recency_after_T", "row 0 has recency 5.0 > T 4.0"),
        ([1, -1], [1.0, 0.0], [4.0, 10.0], "negative_frequency", "row 1 has -1.0"),
        ([1, 2], [1.0, np.inf], [4.0, 10.0], "not_finite", "recency has 1 missing"),
        ([1.5, 2], [1.0, 2.0], [4.0, 10.0], "fractional_frequency", "row 0 has 1.5"),
        ([0, 2], [1.0, 2.0], [4.0, 10.0], "recency_without_repeat", "row 0 has frequency 0"),
        ([1, 2, 3], [1.0, 2.0], [4.0, 10.0], "length_mismatch", "frequency=3, recency=2"),
        ([], [], [], "empty", "empty"),
        (["a", 2], [1.0, 2.0], [4.0, 10.0], "not_numeric", "frequency"),
    ],
)
def test_hostile_inputs_are_refused_with_clear_messages(frequency, recency, T, key, fragment):
    with pytest.raises(InputError) as info:
        ModifiedBetaGeoModel().fit(frequency, recency, T)
    assert info.value.key == f"error.clv_model.{key}"
    assert fragment in info.value.message("en")
    assert info.value.message("zh") != info.value.message("en")


def test_bad_weights_horizons_and_histories_are_refused(cdnow, fitted):
    x, tx, T = _history(cdnow)
    with pytest.raises(InputError, match="sample_weight"):
        ModifiedBetaGeoModel().fit(x, tx, T, sample_weight=-np.ones(len(x)))
    with pytest.raises(InputError):
        ModifiedBetaGeoModel().fit(x, tx, T, sample_weight=np.zeros(len(x)))
    with pytest.raises(InputError):
        fitted.conditional_expected_number_of_purchases_up_to_time(-1.0, x, tx, T)
    with pytest.raises(InputError):
        fitted.probability_of_n_purchases_up_to_time(10.0, 1.5)
    with pytest.raises(InputError):
        fitted.conditional_probability_alive([1], [3.0], [2.0])


def test_warm_start_on_large_data_reaches_the_same_optimum(monkeypatch):
    import crmlens.clv.mbgnbd as mbgnbd

    x, tx, T = simulate_mbgnbd(120_000, 0.8, 6.0, 0.6, 2.5, seed=9)
    assert mbgnbd.warm_start_weights(np.ones(len(x))) is not None
    warm = ModifiedBetaGeoModel().fit(x, tx, T)
    monkeypatch.setattr(mbgnbd, "warm_start_weights", lambda weights: None)
    cold = ModifiedBetaGeoModel().fit(x, tx, T)
    for name in NAMES:
        assert warm.params_[name] == pytest.approx(cold.params_[name], rel=1e-5)
    assert warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-10)
