"""sBG churn model: published figures, projections, DERL, recovery, gradient, inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crmlens.clv._fitting import FitError
from crmlens.clv.sbg import ShiftedBetaGeometricModel, _loglik_grad, _Rows, from_survivors
from crmlens.errors import InputError

# Fader & Hardie (2007), "How to Project Customer Retention", Table 1: survivors of two
# 1000-customer cohorts over 12 years. The model is estimated on years 1-7 (the first eight
# counts) and projected over years 8-12.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]


def _fit(counts, **kwargs) -> ShiftedBetaGeometricModel:
    return ShiftedBetaGeometricModel(**kwargs).fit(*from_survivors(counts))


@pytest.fixture(scope="module")
def high_end() -> ShiftedBetaGeometricModel:
    return _fit(HIGH_END[:8])


@pytest.mark.parametrize(("counts", "alpha", "beta", "ll"), [
    # The paper: regular alpha=0.704, beta=1.182 (LL -1680.3); high end 0.668, 3.806 (-1611.2).
    (REGULAR, 0.704, 1.182, -1680.3),
    (HIGH_END, 0.668, 3.806, -1611.2),
])
def test_published_estimates_from_seven_years(counts, alpha, beta, ll):
    model = _fit(counts[:8])
    assert round(model.params_["alpha"], 3) == alpha
    assert round(model.params_["beta"], 3) == beta
    assert model.log_likelihood_ == pytest.approx(ll, abs=0.05)
    assert model.converged_ and model.n_customers_ == 1000
    assert all(0 < se < value for se, value in zip(model.se_.values(), model.params_.values()))
    assert model.covariance_.shape == (2, 2)


@pytest.mark.parametrize("counts", [REGULAR, HIGH_END])
def test_projection_of_years_8_to_12(counts):
    # The paper's point: seven years of data project the next five within a few percent
    # (regular within 2 %, high end within 4.1 %: the model slightly under-projects it).
    model = _fit(counts[:8])
    projected = 1000 * model.survival_function(np.arange(8, 13))
    np.testing.assert_allclose(projected, counts[8:], rtol=0.045)
    assert np.all(projected < counts[8:])
    fitted = 1000 * model.survival_function(np.arange(0, 8))
    np.testing.assert_allclose(fitted, counts[:8], rtol=0.05)


def test_high_end_projection_matches_an_independent_implementation(high_end):
    # jdmaturen/shifted_beta_geometric_py README: survival 0.460, 0.436, 0.414, 0.395, 0.378
    # for years 8-12 and DERL 7.530 for the survivors of year 7 at a 10 % discount rate.
    np.testing.assert_allclose(high_end.survival_function(np.arange(8, 13)),
                               [0.460, 0.436, 0.414, 0.395, 0.378], atol=5e-4)
    assert high_end.discounted_expected_residual_lifetime(7, discount_rate=0.1) == pytest.approx(
        7.530, abs=5e-4)


def test_probabilities_are_consistent(high_end):
    alpha, beta = high_end.params_["alpha"], high_end.params_["beta"]
    t = np.arange(1, 40)
    S = high_end.survival_function(np.arange(0, 40))
    assert S[0] == 1.0 and np.all(np.diff(S) < 0)
    np.testing.assert_allclose(high_end.churn_probability(t), S[:-1] - S[1:], rtol=1e-10)
    np.testing.assert_allclose(high_end.retention_rate(t), S[1:] / S[:-1], rtol=1e-10)
    np.testing.assert_allclose(high_end.retention_rate(t), (beta + t - 1) / (alpha + beta + t - 1))
    assert np.all(np.diff(high_end.retention_rate(t)) > 0)  # rises with tenure
    assert high_end.churn_probability(np.arange(1, 200_000)).sum() == pytest.approx(
        1 - high_end.survival_function(199_999).item(), rel=1e-9)
    # First-year churn is the mean of the churn probabilities, alpha / (alpha + beta).
    assert high_end.churn_probability(1) == pytest.approx(alpha / (alpha + beta))
    np.testing.assert_allclose(high_end.conditional_survival(np.arange(0, 6), 7),
                               high_end.survival_function(np.arange(7, 13)) / S[7], rtol=1e-10)
    assert high_end.conditional_survival(1, 4) == pytest.approx(high_end.retention_rate(5).item())


@pytest.mark.parametrize("tenure", [0, 1, 7, 50, 1000])
@pytest.mark.parametrize("d", [0.01, 0.1, 0.5])
def test_derl_equals_the_discounted_sum(high_end, tenure, d):
    k = np.arange(1, 20_000)
    discount = np.exp(-(k - 1) * np.log1p(d))
    direct = float(np.sum(high_end.conditional_survival(k, tenure) * discount))
    derl = high_end.discounted_expected_residual_lifetime(tenure, discount_rate=d)
    assert derl == pytest.approx(direct, rel=1e-9)


def test_lifetime_identities():
    model = _fit(HIGH_END[:8])
    d = 0.1
    de_life = model.discounted_expected_lifetime(discount_rate=d)
    assert de_life == pytest.approx(
        1 + model.discounted_expected_residual_lifetime(0, discount_rate=d).item() / (1 + d))
    # Undiscounted, with alpha > 1: E[T] = E[1/theta] = (alpha + beta - 1) / (alpha - 1).
    model.params_ = {"alpha": 2.5, "beta": 4.0}
    assert model.discounted_expected_lifetime(discount_rate=0.0) == pytest.approx(5.5 / 1.5)
    derl = model.discounted_expected_residual_lifetime(np.array([0, 3]), discount_rate=0.0)
    # E[T - n | T > n], the undiscounted residual lifetime, is the plain sum.
    k = np.arange(1, 400_000)
    for value, n in zip(derl, [0, 3], strict=True):
        assert value == pytest.approx(model.conditional_survival(k, n).sum(), rel=1e-5)


def test_undiscounted_lifetime_with_alpha_below_one_is_refused(high_end):
    with pytest.raises(InputError) as info:
        high_end.discounted_expected_residual_lifetime(3, discount_rate=0.0)
    assert info.value.key == "error.clv_sbg.infinite_lifetime"
    with pytest.raises(InputError, match="discount_rate"):
        high_end.discounted_expected_lifetime(discount_rate=-0.1)


def test_weighted_rows_equal_one_row_per_customer():
    duration, churned, weights = from_survivors([200, 130, 90, 70, 61])
    expanded = ShiftedBetaGeometricModel().fit(np.repeat(duration, weights.astype(int)),
                                               np.repeat(churned, weights.astype(int)))
    weighted = ShiftedBetaGeometricModel().fit(duration, churned, sample_weight=weights)
    for name in ("alpha", "beta"):
        assert weighted.params_[name] == pytest.approx(expanded.params_[name], rel=1e-6)
        assert weighted.se_[name] == pytest.approx(expanded.se_[name], rel=1e-4)
    assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-10)


def test_analytic_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    duration = rng.integers(1, 30, 500).astype(float)
    churned = rng.random(500) < 0.6
    rows = _Rows(duration, churned, rng.uniform(0.5, 3, 500))
    for params in ([0.7, 1.2], [0.05, 30.0], [12.0, 0.3]):
        params = np.array(params)
        _, grad = _loglik_grad(params, rows)
        numeric = np.empty(2)
        for j in range(2):
            step = np.zeros(2)
            step[j] = 1e-6 * params[j]
            numeric[j] = (_loglik_grad(params + step, rows)[0]
                          - _loglik_grad(params - step, rows)[0]) / (2 * step[j])
        np.testing.assert_allclose(grad, numeric, rtol=1e-6)


def test_parameter_recovery_on_simulated_subscribers():
    # Subscribers joined at different times, so they are observed for 1 to 12 periods.
    rng = np.random.default_rng(11)
    alpha, beta, n = 1.3, 4.0, 20_000
    lifetime = rng.geometric(rng.beta(alpha, beta, n))
    observed = rng.integers(1, 13, n)
    churned = lifetime <= observed
    duration = np.where(churned, lifetime, observed)
    model = ShiftedBetaGeometricModel().fit(duration, churned)
    for name, value in {"alpha": alpha, "beta": beta}.items():
        assert abs(model.params_[name] - value) < 4 * model.se_[name], name
        assert model.params_[name] == pytest.approx(value, rel=0.15), name


@pytest.mark.parametrize(("call", "key"), [
    (lambda: from_survivors([1000]), "survivors_too_short"),
    (lambda: from_survivors([1000, 600, 700]), "survivors_increasing"),
    (lambda: from_survivors([0, 0, 0]), "survivors_not_positive"),
    (lambda: from_survivors([1000, np.nan, 500]), None),
    (lambda: _fit([1000, 1000, 1000]), "no_churn"),
    (lambda: _fit([1000, 600]), "single_period"),
    (lambda: ShiftedBetaGeometricModel().fit([1, 2.5], [True, False]), "bad_duration"),
    (lambda: ShiftedBetaGeometricModel().fit([1, -2], [True, False]), "bad_duration"),
    (lambda: ShiftedBetaGeometricModel().fit([1, 2], [1, 2]), "churned_not_boolean"),
    (lambda: ShiftedBetaGeometricModel().fit([0, 2], [True, True]), "churn_at_zero"),
    (lambda: ShiftedBetaGeometricModel().fit([1, 2, 3], [True, False]), None),
    (lambda: ShiftedBetaGeometricModel().fit([], []), None),
])
def test_hostile_inputs_are_refused_with_clear_messages(call, key):
    with pytest.raises(InputError) as info:
        call()
    if key is not None:
        assert info.value.key == f"error.clv_sbg.{key}"
    assert info.value.message("zh") != info.value.message("en")


@pytest.mark.parametrize("counts", [
    [1000, 400, 400, 400],          # churn only in period 1: alpha, beta -> 0
    [1000, 500, 250, 125, 62],      # constant churn: no heterogeneity, alpha, beta -> infinity
])
def test_unidentified_data_raise_fit_error_not_nan(counts):
    with pytest.raises(FitError):
        _fit(counts)


def test_not_converged_is_an_error():
    with pytest.raises(FitError) as info:
        _fit(REGULAR[:8], max_iter=1)
    assert info.value.key == "error.clv_model.not_converged"


def test_bad_periods_are_refused(high_end):
    for call in (lambda: high_end.survival_function(-1), lambda: high_end.churn_probability(0),
                 lambda: high_end.retention_rate(1.5),
                 lambda: high_end.conditional_survival(1, np.inf)):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.key == "error.clv_sbg.bad_period"


def test_predict_before_fit_clone_and_penalizer():
    model = ShiftedBetaGeometricModel(penalizer_coef=0.5, tol=1e-6, max_iter=50)
    with pytest.raises(NotFittedError):
        model.survival_function(3)
    assert clone(model).get_params() == {"penalizer_coef": 0.5, "tol": 1e-6, "max_iter": 50}
    plain = _fit(HIGH_END[:8])
    shrunk = _fit(HIGH_END[:8], penalizer_coef=0.5)
    assert shrunk.params_["beta"] < plain.params_["beta"]
    assert ShiftedBetaGeometricModel.model_name == "sbg"
