"""BG/BB: published donations figures, lifetimes oracle, weights, recovery, gradient, inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, comb
from scipy.special import gamma as G
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crmlens.clv._fitting import FitError
from crmlens.clv.bgbb import BetaGeoBetaBinomModel, _loglik_grad, _row_terms, _Summary
from crmlens.errors import InputError

lifetimes = pytest.importorskip("lifetimes")
from lifetimes.datasets import load_donations  # noqa: E402

NAMES = ["alpha", "beta", "gamma", "delta"]


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return load_donations()


def _rows(d):
    return d["frequency"].to_numpy(), d["recency"].to_numpy(), d["periods"].to_numpy()


@pytest.fixture(scope="module")
def fitted(donations) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(*_rows(donations), sample_weight=donations["weights"])


@pytest.fixture(scope="module")
def oracle(donations, fitted):
    """lifetimes' fitter, its own fit kept aside, then set to OUR parameters for predictions."""
    fitter = lifetimes.BetaGeoBetaBinomFitter().fit(*_rows(donations),
                                                    weights=donations["weights"])
    own = fitter.params_.copy()
    own_se = fitter.standard_errors_.copy()
    fitter.params_[:] = [fitted.params_[k] for k in NAMES]
    return fitter, own, own_se


def test_model_name():
    assert BetaGeoBetaBinomModel.model_name == "bgbb"


def test_published_donations_parameters(fitted):
    # Fader, Hardie & Shang (2010), 1995 donor cohort, 6 opportunities:
    # alpha=1.204 beta=0.750 gamma=0.657 delta=2.783, LL = -33,225.6.
    published = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
    for name, value in published.items():
        assert fitted.params_[name] == pytest.approx(value, abs=6e-4)
    assert fitted.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)
    assert fitted.converged_
    assert fitted.n_customers_ == 11104


def test_parameters_and_standard_errors_equal_lifetimes(fitted, oracle):
    _, own, own_se = oracle
    for name in NAMES:
        assert fitted.params_[name] == pytest.approx(own[name], rel=1e-3)
        assert fitted.se_[name] == pytest.approx(own_se[name], rel=1e-3)


def test_log_likelihood_is_a_probability(donations, fitted):
    # Each row's likelihood is the probability of its history: summed over every possible
    # history of n = 6 opportunities (x, t_x with x <= t_x <= 6, plus x = t_x = 0) it is 1.
    n = 6
    histories = [(0, 0)] + [(x, tx) for tx in range(1, n + 1) for x in range(1, tx + 1)]
    x = np.array([h[0] for h in histories], dtype=float)
    tx = np.array([h[1] for h in histories], dtype=float)
    # Number of purchase patterns sharing (x, t_x): C(t_x - 1, x - 1).
    patterns = np.where(x > 0, comb(tx - 1, x - 1), 1.0)
    params = np.array([fitted.params_[k] for k in NAMES])
    summary = _Summary(x, tx, np.full(len(x), n), np.ones(len(x)))
    row_ll, _, _ = _row_terms(params, summary)
    assert float(patterns @ np.exp(row_ll)) == pytest.approx(1.0, abs=1e-12)


def test_probability_alive_at_next_opportunity_equals_lifetimes(donations, fitted, oracle):
    fitter, *_ = oracle
    x, tx, n = _rows(donations)
    ours = fitted.conditional_probability_alive(x, tx, n)
    np.testing.assert_allclose(ours, fitter.conditional_probability_alive(1, x, tx, n),
                               rtol=1e-6)
    assert np.all((ours > 0) & (ours < 1))
    # A donor who gave at every opportunity is likelier alive than one silent since the first.
    assert ours[(x == 6)].min() > ours[(x == 1) & (tx == 1)].max()


@pytest.mark.parametrize("t", [1, 5, 10, 50])
def test_conditional_expected_purchases_equal_lifetimes(donations, fitted, oracle, t):
    fitter, *_ = oracle
    x, tx, n = _rows(donations)
    ours = fitted.conditional_expected_number_of_purchases_up_to_time(t, x, tx, n)
    theirs = fitter.conditional_expected_number_of_purchases_up_to_time(t, x, tx, n)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_conditional_expectation_is_sum_over_future_opportunities(fitted):
    # E[X(n, n+t)] = sum_k P(alive at n+k) E[p | history]: check against that sum directly.
    alpha, beta, gamma, delta = (fitted.params_[k] for k in NAMES)
    x, tx, n, t = 3.0, 5.0, 8.0, 7
    p_alive_next = fitted.conditional_probability_alive([x], [tx], [n])[0]
    # P(alive at n+k)/P(alive at n+1) and E[p | ...] are beta-function ratios.
    alive = [p_alive_next * np.exp(betaln(gamma, delta + n + k) - betaln(gamma, delta + n + 1))
             for k in range(1, t + 1)]
    mean_p = (alpha + x) / (alpha + beta + n)
    expected = fitted.conditional_expected_number_of_purchases_up_to_time(t, [x], [tx], [n])
    assert expected[0] == pytest.approx(mean_p * sum(alive), rel=1e-10)


@pytest.mark.parametrize("t", [1, 6, 11])
def test_probability_of_n_purchases_equals_lifetimes(fitted, oracle, t):
    fitter, *_ = oracle
    table = fitter.expected_number_of_transactions_in_first_n_periods(t)["model"]
    share = table / 11104
    ours = fitted.probability_of_n_purchases_up_to_time(t, share.index.to_numpy())
    np.testing.assert_allclose(ours, share.to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("t", [0, 1, 6, 40, 200])
def test_probability_of_n_purchases_is_a_distribution_with_the_right_mean(fitted, t):
    n = np.arange(0, t + 3)
    pmf = fitted.probability_of_n_purchases_up_to_time(t, n)
    assert np.all(pmf >= 0)
    assert np.all(pmf[n > t] == 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (n * pmf).sum() == pytest.approx(
        fitted.expected_number_of_purchases_up_to_time(t).item(), rel=1e-10, abs=1e-14
    )


def test_unconditional_expectation_matches_closed_form(fitted):
    # FHS 2010 eq. (9) in its printed form.
    alpha, beta, gamma, delta = (fitted.params_[k] for k in NAMES)
    t = np.array([0, 1, 6, 20])
    printed = (alpha / (alpha + beta) * delta / (gamma - 1)
               * (1 - G(gamma + delta) / G(gamma + delta + t) * G(1 + delta + t) / G(1 + delta)))
    np.testing.assert_allclose(fitted.expected_number_of_purchases_up_to_time(t), printed,
                               rtol=1e-10, atol=1e-15)


def test_weighted_rows_equal_all_rows(donations, fitted):
    expanded = donations.loc[donations.index.repeat(donations["weights"])]
    assert len(expanded) == 11104
    plain = BetaGeoBetaBinomModel().fit(*_rows(expanded))
    for name in NAMES:
        assert plain.params_[name] == pytest.approx(fitted.params_[name], rel=1e-6)
        assert plain.se_[name] == pytest.approx(fitted.se_[name], rel=1e-4)
    assert plain.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-9)


def test_analytic_gradient_matches_finite_differences():
    x, tx, n = simulate_bgbb(3000, 1.2, 0.75, 0.66, 2.8, seed=2)
    summary = _Summary(x, tx, n, np.ones(len(x)))
    for params in ([1.2, 0.75, 0.66, 2.8], [0.3, 4.0, 2.5, 0.4], [9.0, 0.2, 0.05, 12.0]):
        params = np.array(params)
        _, grad = _loglik_grad(params, summary)
        numeric = np.empty(4)
        for j in range(4):
            step = np.zeros(4)
            step[j] = 1e-5 * params[j]
            numeric[j] = (_loglik_grad(params + step, summary)[0]
                          - _loglik_grad(params - step, summary)[0]) / (2 * step[j])
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-5)


def simulate_bgbb(size, alpha, beta, gamma, delta, seed, *, low=5, high=30):
    """Customers drawn from BG/BB with ``n`` uniform in ``low .. high`` opportunities."""
    rng = np.random.default_rng(seed)
    p = rng.beta(alpha, beta, size)
    theta = rng.beta(gamma, delta, size)
    n = rng.integers(low, high + 1, size)
    x = np.zeros(size)
    tx = np.zeros(size)
    alive = np.ones(size, dtype=bool)
    for k in range(1, high + 1):
        alive &= (rng.random(size) > theta) & (k <= n)
        bought = alive & (rng.random(size) < p)
        x[bought] += 1
        tx[bought] = k
    return x, tx, n.astype(float)


def test_parameter_recovery_on_simulated_customers():
    truth = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}
    x, tx, n = simulate_bgbb(20_000, *truth.values(), seed=7)
    model = BetaGeoBetaBinomModel().fit(x, tx, n)
    for name, value in truth.items():
        # Within 4 standard errors and 25 % of the true value.
        assert abs(model.params_[name] - value) < 4 * model.se_[name], name
        assert model.params_[name] == pytest.approx(value, rel=0.25), name


def test_predict_before_fit_and_clone():
    model = BetaGeoBetaBinomModel(penalizer_coef=0.1, tol=1e-6, max_iter=50)
    with pytest.raises(NotFittedError):
        model.conditional_probability_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        model.expected_number_of_purchases_up_to_time(3)
    assert clone(model).get_params() == {"penalizer_coef": 0.1, "tol": 1e-6, "max_iter": 50}


def test_penalizer_shrinks_parameters(donations, fitted):
    penalized = BetaGeoBetaBinomModel(penalizer_coef=0.1).fit(
        *_rows(donations), sample_weight=donations["weights"])
    def size(m):
        return sum(v**2 for v in m.params_.values())

    assert size(penalized) < size(fitted)


def test_not_converged_is_an_error(donations):
    with pytest.raises(FitError) as info:
        BetaGeoBetaBinomModel(max_iter=1).fit(*_rows(donations),
                                              sample_weight=donations["weights"])
    assert info.value.key == "error.clv_model.not_converged"
    assert "BG/BB" in str(info.value)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "key", "fragment"),
    [
        ([1, 2], [5, 3], [4, 10], "clv_model.recency_after_T", "row 0 has recency 5.0 > T 4.0"),
        ([1, 2], [1.5, 2], [4, 10], "clv_bgbb.fractional_period", "recency in whole periods"),
        ([1, 2], [1, 2], [4, 10.5], "clv_bgbb.fractional_period", "row 1 has 10.5"),
        ([3, 2], [2, 2], [2, 10], "clv_bgbb.frequency_above_T",
         "row 0 has frequency 3.0 > T 2.0"),
        ([1, 3], [1, 2], [4, 10], "clv_bgbb.frequency_above_recency",
         "row 1 has frequency 3.0 > recency 2.0"),
        ([1, -1], [1, 0], [4, 10], "clv_model.negative_frequency", "row 1 has -1.0"),
        ([0, 2], [1, 2], [4, 10], "clv_model.recency_without_repeat", "row 0 has frequency 0"),
        ([1, 2], [1, np.nan], [4, 10], "clv_model.not_finite", "recency has 1 missing"),
        ([], [], [], "clv_model.empty", "empty"),
    ],
)
def test_hostile_inputs_are_refused_with_clear_messages(frequency, recency, T, key, fragment):
    with pytest.raises(InputError) as info:
        BetaGeoBetaBinomModel().fit(frequency, recency, T)
    assert info.value.key == f"error.{key}"
    assert fragment in info.value.message("en")
    assert info.value.message("zh") != info.value.message("en")


def test_bad_weights_horizons_and_histories_are_refused(donations, fitted):
    x, tx, n = _rows(donations)
    with pytest.raises(InputError, match="sample_weight"):
        BetaGeoBetaBinomModel().fit(x, tx, n, sample_weight=-np.ones(len(x)))
    for bad in (-1, 2.5, np.nan):
        with pytest.raises(InputError) as info:
            fitted.conditional_expected_number_of_purchases_up_to_time(bad, x, tx, n)
        assert info.value.key == "error.clv_bgbb.bad_periods"
    with pytest.raises(InputError):
        fitted.probability_of_n_purchases_up_to_time(6, 1.5)
    with pytest.raises(InputError):
        fitted.conditional_probability_alive([2], [1], [6])
