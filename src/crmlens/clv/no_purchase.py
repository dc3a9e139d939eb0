"""Probability that a customer makes no purchase in the next ``t`` units, given the history.

``P(X(T, T+t] = 0 | x, t_x, T)`` is the per-customer "probability of n purchases" for n = 0
(its complement is the probability of buying again within the horizon). It splits on whether
the customer is still alive at the end of the history::

    P0 = (1 - P(alive)) + P(alive) * P(no purchase in the window | alive)

and given alive the posterior of the purchase rate (and dropout rate) has a closed form in every
model, so the second factor is an expectation over independent Gamma (or Beta) posteriors:

* BG/NBD and MBG/NBD: a living customer can only drop out right after a purchase, so no
  purchase in the window means no purchase event: ``E[exp(-lambda t)]`` with
  ``lambda ~ Gamma(r+x, alpha+T)``, i.e. ``((alpha+T) / (alpha+T+t))^(r+x)``.
* Pareto/NBD: the customer may die at ``u`` inside the window without buying first::

      E[exp(-(lambda+mu) t)] + int_0^t E[mu exp(-mu u)] E[exp(-lambda u)] du

  with ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)``; the integral is smooth
  and is taken by Gauss-Legendre quadrature.
* BG/BB (``t`` whole opportunities): alive at opportunity ``n+1`` (the model's P(alive)), with
  ``p ~ Beta(alpha+x, beta+n-x)`` and ``theta ~ Beta(gamma, delta+n+1)``; the customer either
  dies at the start of opportunity ``n+j`` (``j >= 2``) after ``j-1`` opportunities without a
  purchase, or survives all ``t`` without buying.

Computed once per distinct history and gathered (so 10M customers cost their distinct rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import betaln

from crmlens.errors import InputError

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


def probability_no_purchase(model: Any, t: float, frequency, recency, T) -> np.ndarray:
    """``P(no purchase in (T, T+t] | history)`` for a fitted purchase model.

    Parameters
    ----------
    model : BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel or BetaGeoBetaBinomModel
        A fitted purchase model without covariates.
    t : float
        Horizon in the model's time unit (whole opportunities for BG/BB).
    frequency, recency, T : array-like of shape (n_customers,)
        Customer histories in the model's time unit.

    Returns
    -------
    ndarray of shape (n_customers,)
        Probabilities in ``[0, 1]``.

    Raises
    ------
    InputError
        A negative horizon, or a model this function does not know.
    """
    name = getattr(model, "model_name", None)
    if name not in _FORMULAS:
        raise InputError("error.clv_unknown_model", model=str(name), known=", ".join(_FORMULAS))
    if getattr(model, "purchase_covariate_names_", ()) or getattr(
            model, "dropout_covariate_names_", ()):
        raise InputError("error.clv_no_purchase_covariates")
    t = float(t)
    if not np.isfinite(t) or t < 0:
        raise InputError("error.clv_model.bad_horizon", name="t")
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    T = np.asarray(T, dtype=float)
    p_alive = model.conditional_probability_alive(x, tx, T)
    if t == 0:
        return np.ones_like(p_alive)
    # One evaluation per distinct history.
    keys, index = np.unique(np.column_stack([x, T]), axis=0, return_inverse=True)
    survive = _FORMULAS[name](model.params_, t, keys[:, 0], keys[:, 1])[index.ravel()]
    return np.clip((1.0 - p_alive) + p_alive * survive, 0.0, 1.0)


def _bg(params, t, x, T):
    r, alpha = params["r"], params["alpha"]
    return np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))


def _pareto(params, t, x, T):
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    shape, ay, by = r + x, alpha + T, beta + T
    both = np.exp(shape * (np.log(ay) - np.log(ay + t)) + s * (np.log(by) - np.log(by + t)))
    u = (t / 2) * (_NODES + 1.0)                                  # nodes on [0, t]
    log_f = (np.log(s) - np.log(by)[:, None] - (s + 1) * np.log1p(u / by[:, None])
             - shape[:, None] * np.log1p(u / ay[:, None]))
    died = (t / 2) * (np.exp(log_f) @ _WEIGHTS)
    return both + died


def _bgbb(params, t, x, n):
    # The model's P(alive) is "alive at opportunity n+1" (past its dropout draw): then the
    # customer buys at n+1 with p, and at each later opportunity n+j first survives theta.
    # Given alive at n+1, p ~ Beta(alpha+x, beta+n-x) and theta ~ Beta(gamma, delta+n+1).
    if t != np.round(t):
        raise InputError("error.clv_model.bad_horizon", name="t")
    a, b, g, d = params["alpha"], params["beta"], params["gamma"], params["delta"]
    steps = int(t)
    x, n = x[:, None], n[:, None]
    j = np.arange(2, steps + 1)[None, :]
    no_buy = betaln(a + x, b + n - x + j - 1) - betaln(a + x, b + n - x)   # E[(1-p)^(j-1)]
    die = betaln(g + 1, d + n + j - 1) - betaln(g, d + n + 1)             # E[th (1-th)^(j-2)]
    died = np.exp(no_buy + die).sum(axis=1)
    survived = np.exp(betaln(a + x, b + n - x + steps) - betaln(a + x, b + n - x)
                      + betaln(g, d + n + steps) - betaln(g, d + n + 1))[:, 0]
    return died + survived


_FORMULAS = {"bgnbd": _bg, "mbgnbd": _bg, "pareto_nbd": _pareto, "bgbb": _bgbb}
