"""The planted model behind :mod:`crmlens.datasets.generator` and what it implies.

This module holds the segment parameters, the closed-form BG/NBD expectations that tests and
model checks compare against, the expected statistics of the planted co-purchase rules, and
the running tallies of what was actually generated. Time is measured in days throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TIME_UNIT = "days"

# Display name of each category, keyed by the short name used in the segment tables below.
CATEGORY_KEYS = {
    "electronics": "Electronics",
    "home": "Home & Kitchen",
    "beauty": "Beauty",
    "apparel": "Apparel",
    "sports": "Sports & Outdoors",
    "books": "Books",
    "toys": "Toys & Games",
    "grocery": "Grocery",
    "health": "Health",
    "pets": "Pet Supplies",
}
CATEGORIES = tuple(CATEGORY_KEYS.values())
# Price level of each category relative to the catalogue's median unit price.
CATEGORY_PRICE_LEVEL = (2.2, 1.3, 1.0, 1.4, 1.5, 0.8, 1.0, 0.5, 0.9, 0.9)

CHANNELS = ("web", "app", "store")
REGIONS = ("North", "Northeast", "East", "South", "Central", "Southwest", "Northwest")
REGION_WEIGHTS = (0.16, 0.08, 0.26, 0.22, 0.12, 0.1, 0.06)
# Share of orders placed in a region other than the customer's own (travel, gifts, shipping).
OTHER_REGION_SHARE = 0.1


@dataclass(frozen=True)
class Segment:
    """Parameters of one planted customer segment (rates per day)."""

    name: str
    share: float
    # BG/NBD: lambda ~ Gamma(shape r, rate alpha), p ~ Beta(a, b).
    r: float
    alpha: float
    a: float
    b: float
    # Gamma-Gamma: nu ~ Gamma(shape q, rate gamma), order value ~ Gamma(shape p, rate nu).
    p: float
    q: float
    gamma: float
    # First purchase uniform in this part of the window (fractions of its length).
    first_purchase: tuple[float, float]
    # Lines per order before de-duplication: 1 + Poisson(extra_lines).
    extra_lines: float
    category_weights: tuple[float, ...]
    channel_probs: tuple[float, float, float]
    review_prob: float  # chance that an order is followed by a review
    mean_review: float  # review score is 1 + Binomial(4, (mean_review - 1) / 4)
    opens_per_year: float
    click_prob: float  # chance that an email open is followed by a click
    tickets_per_year: float
    income_median: float


def _weights(**raw: float) -> tuple[float, ...]:
    # Unlisted categories get weight 1; normalized so a segment's preferences sum to one.
    w = np.array([raw.get(k, 1.0) for k in CATEGORY_KEYS], dtype=float)
    return tuple(float(x) for x in w / w.sum())


SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "champions", 0.10, r=3.0, alpha=40.0, a=0.6, b=12.0, p=6.0, q=4.0, gamma=80.0,
        first_purchase=(0.0, 0.7), extra_lines=2.0,
        category_weights=_weights(electronics=3, home=2, beauty=2, apparel=2, sports=1.5,
                                  grocery=1.5),
        channel_probs=(0.45, 0.40, 0.15), review_prob=0.25, mean_review=4.5,
        opens_per_year=20.0, click_prob=0.30, tickets_per_year=1.0, income_median=180_000.0,
    ),
    Segment(
        "loyal", 0.20, r=2.0, alpha=60.0, a=1.5, b=15.0, p=5.0, q=3.5, gamma=55.0,
        first_purchase=(0.0, 0.8), extra_lines=1.5,
        category_weights=_weights(home=3, grocery=3, health=2, beauty=2),
        channel_probs=(0.35, 0.35, 0.30), review_prob=0.20, mean_review=4.2,
        opens_per_year=12.0, click_prob=0.20, tickets_per_year=1.0, income_median=120_000.0,
    ),
    Segment(
        "new", 0.15, r=1.5, alpha=45.0, a=2.0, b=8.0, p=4.0, q=3.0, gamma=40.0,
        first_purchase=(0.82, 1.0), extra_lines=1.2,
        category_weights=_weights(apparel=3, beauty=2.5, toys=2, electronics=2),
        channel_probs=(0.30, 0.55, 0.15), review_prob=0.15, mean_review=3.9,
        opens_per_year=10.0, click_prob=0.15, tickets_per_year=1.5, income_median=90_000.0,
    ),
    Segment(
        "at_risk", 0.25, r=1.2, alpha=90.0, a=2.5, b=6.0, p=4.0, q=3.0, gamma=38.0,
        first_purchase=(0.0, 0.75), extra_lines=1.0,
        category_weights=_weights(books=2.5, sports=2, home=2),
        channel_probs=(0.40, 0.20, 0.40), review_prob=0.12, mean_review=3.2,
        opens_per_year=4.0, click_prob=0.08, tickets_per_year=3.0, income_median=80_000.0,
    ),
    Segment(
        "lost", 0.30, r=0.8, alpha=50.0, a=4.0, b=3.0, p=3.0, q=3.0, gamma=40.0,
        first_purchase=(0.0, 0.6), extra_lines=0.8,
        category_weights=_weights(grocery=2, toys=2, pets=2),
        channel_probs=(0.30, 0.20, 0.50), review_prob=0.10, mean_review=2.4,
        opens_per_year=2.0, click_prob=0.03, tickets_per_year=2.0, income_median=70_000.0,
    ),
)

# Popularity of products within a category: weight rank ** -ZIPF_EXPONENT.
ZIPF_EXPONENT = 1.1

SPEND_NOTE = (
    "Each order draws a target value z ~ Gamma(p, rate nu) (the Gamma-Gamma model). Unit prices "
    "are fixed per product, so the order's lines all start at quantity 1 and are scaled by "
    "s = z / (sum of the order's unit prices): each line's quantity is floor(s + U), U ~ "
    "Uniform(0, 1), at least 1. When s >= 1 the order value sum(quantity * unit_price) has "
    "expectation z exactly; when z is below the sum of the unit prices every quantity is 1 and "
    "the order is worth more than z. The realized mean order value per segment is recorded "
    "next to the Gamma-Gamma expectation p * gamma / (q - 1)."
)


# --- BG/NBD closed forms -------------------------------------------------------------------


def hyp2f1(a: float, b: float, c: float, z: np.ndarray) -> np.ndarray:
    """Gauss hypergeometric 2F1(a, b; c; z) for 0 <= z < 1 and positive a, b, c, by its series.

    Terms are summed in log space; the term count is chosen so that z**n has decayed far below
    the polynomial growth of the coefficients at the largest z.
    """
    z = np.clip(np.asarray(z, dtype=float), 1e-300, None)
    zmax = float(z.max(initial=1e-300))
    if zmax >= 1.0:
        raise ValueError("hyp2f1 series needs z < 1")
    n_terms = int(min(1_000_000, 500 + 120.0 / max(-math.log(zmax), 1e-12)))
    n = np.arange(n_terms, dtype=float)
    log_coef = np.concatenate(([0.0], np.cumsum(np.log((a + n[:-1]) * (b + n[:-1])
                                                        / ((c + n[:-1]) * (n[:-1] + 1.0))))))
    flat = z.ravel()
    out = np.empty_like(flat)
    # Batched over z to bound the (terms x points) matrix.
    for i in range(0, flat.size, 64):
        log_z = np.log(flat[i:i + 64])
        out[i:i + 64] = np.exp(log_coef[:, None] + n[:, None] * log_z[None, :]).sum(0)
    return out.reshape(z.shape)


def expected_repeat_purchases(seg: Segment, t: np.ndarray) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in (0, t] of a customer who first bought at 0.

    Fader, Hardie & Lee (2005), eq. 7. The formula holds for any a > 0 (at a = 1 the pole
    cancels); the planted parameters keep a away from 1.
    """
    t = np.asarray(t, dtype=float)
    ratio = seg.alpha / (seg.alpha + t)
    f = hyp2f1(seg.r, seg.b, seg.a + seg.b - 1.0, t / (seg.alpha + t))
    return (seg.a + seg.b - 1.0) / (seg.a - 1.0) * (1.0 - ratio**seg.r * f)


def prob_alive(seg: Segment, t: np.ndarray) -> np.ndarray:
    """P(still alive t days after the first purchase), unconditionally.

    Given lambda and p the dropout time is Exponential(lambda * p), so this is
    E[(alpha / (alpha + p t))**r] over p ~ Beta(a, b), i.e. 2F1(r, a; a + b; -t / alpha), which
    the Pfaff transformation turns into a convergent series.
    """
    t = np.asarray(t, dtype=float)
    return (seg.alpha / (seg.alpha + t)) ** seg.r * hyp2f1(seg.r, seg.b, seg.a + seg.b,
                                                            t / (seg.alpha + t))


def _horizon_grid(seg: Segment, window_days: float, n: int = 256) -> np.ndarray:
    # Midpoints of the spread of T = window - first purchase (first purchase uniform).
    lo = window_days * (1.0 - seg.first_purchase[1])
    hi = window_days * (1.0 - seg.first_purchase[0])
    return lo + (hi - lo) * (np.arange(n) + 0.5) / n


def segment_expectations(seg: Segment, window_days: float) -> dict[str, float]:
    """Population expectations of a segment, averaged over its first-purchase spread."""
    grid = _horizon_grid(seg, window_days)
    repeat = float(expected_repeat_purchases(seg, grid).mean())
    return {
        "mean_lambda": seg.r / seg.alpha,
        "mean_p": seg.a / (seg.a + seg.b),
        "mean_horizon_days": float(grid.mean()),
        "repeat_purchases": repeat,
        "orders": 1.0 + repeat,
        "share_alive_at_end": float(prob_alive(seg, grid).mean()),
        "order_value": seg.p * seg.gamma / (seg.q - 1.0),
        "review_score": seg.mean_review,
    }


def expected_orders_per_customer(segments: tuple[Segment, ...], window_days: float) -> float:
    """Mean number of orders per customer over all segments."""
    return sum(s.share * segment_expectations(s, window_days)["orders"] for s in segments)


# --- planted co-purchase rules -------------------------------------------------------------


def pair_expectations(pi_a: np.ndarray, pi_b: np.ndarray, add_prob: float,
                      extra_lines: np.ndarray, order_weights: np.ndarray) -> dict[str, float]:
    """Support, confidence and lift of A -> B implied by the basket model.

    An order of segment s draws K = 1 + Poisson(m_s) products independently, product j with
    probability pi_s(j); afterwards B is added with probability ``add_prob`` if A is present.
    With the probability generating function E[x**K] = x exp(m (x - 1)), every presence
    probability is closed-form; segments are mixed by their expected share of orders.
    """

    def none_of(pi):  # P(no draw hits a set of products with total probability pi)
        return (1.0 - pi) * np.exp(-extra_lines * pi)

    p_a = 1.0 - none_of(pi_a)
    p_b_nat = 1.0 - none_of(pi_b)
    a_not_b = none_of(pi_b) - none_of(pi_a + pi_b)
    both = p_a - a_not_b + add_prob * a_not_b
    p_b = p_b_nat + add_prob * a_not_b
    w = order_weights / order_weights.sum()
    support, pa, pb = float(w @ both), float(w @ p_a), float(w @ p_b)
    return {
        "support": support,
        "antecedent_support": pa,
        "consequent_support": pb,
        "confidence": support / pa,
        "lift": support / (pa * pb),
    }


# --- running tallies -----------------------------------------------------------------------


@dataclass
class Tally:
    """What was generated, summed block by block (so it never needs the whole data set)."""

    n_segments: int
    n_pairs: int
    customers: np.ndarray = field(init=False)
    repeat_purchases: np.ndarray = field(init=False)
    alive: np.ndarray = field(init=False)
    lam: np.ndarray = field(init=False)
    p: np.ndarray = field(init=False)
    orders: np.ndarray = field(init=False)
    rows: np.ndarray = field(init=False)  # transaction rows (messy additions included)
    order_value: np.ndarray = field(init=False)
    reviews: np.ndarray = field(init=False)
    review_score: np.ndarray = field(init=False)
    pair_a: np.ndarray = field(init=False)
    pair_b: np.ndarray = field(init=False)
    pair_ab: np.ndarray = field(init=False)
    product_lines: int = 0
    transaction_rows: int = 0
    event_rows: int = 0
    defects: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("customers", "repeat_purchases", "alive", "orders", "rows", "reviews"):
            setattr(self, name, np.zeros(self.n_segments, dtype=np.int64))
        for name in ("lam", "p", "order_value", "review_score"):
            setattr(self, name, np.zeros(self.n_segments, dtype=float))
        for name in ("pair_a", "pair_b", "pair_ab"):
            setattr(self, name, np.zeros(self.n_pairs, dtype=np.int64))

    def add(self, other: Tally) -> None:
        """Add another tally into this one."""
        for name in ("customers", "repeat_purchases", "alive", "lam", "p", "orders",
                     "rows", "order_value", "reviews", "review_score", "pair_a", "pair_b",
                     "pair_ab"):
            mine = getattr(self, name)
            mine += getattr(other, name)
        self.product_lines += other.product_lines
        self.transaction_rows += other.transaction_rows
        self.event_rows += other.event_rows
        for key, value in other.defects.items():
            self.defects[key] = self.defects.get(key, 0) + value

    def segment_realized(self, s: int) -> dict[str, float | int]:
        """Realized statistics of segment ``s``."""
        n = max(int(self.customers[s]), 1)
        return {
            "customers": int(self.customers[s]),
            "mean_lambda": float(self.lam[s] / n),
            "mean_p": float(self.p[s] / n),
            "repeat_purchases": float(self.repeat_purchases[s] / n),
            "orders": int(self.orders[s]),
            "share_alive_at_end": float(self.alive[s] / n),
            "order_value": float(self.order_value[s] / max(int(self.orders[s]), 1)),
            "reviews": int(self.reviews[s]),
            "review_score": float(self.review_score[s] / max(int(self.reviews[s]), 1)),
        }

    def pair_realized(self, k: int) -> dict[str, float | int]:
        """Realized support, confidence and lift of planted pair ``k`` over all orders."""
        n = max(int(self.orders.sum()), 1)
        a, b, ab = int(self.pair_a[k]), int(self.pair_b[k]), int(self.pair_ab[k])
        return {
            "orders": int(self.orders.sum()),
            "orders_with_antecedent": a,
            "orders_with_consequent": b,
            "orders_with_both": ab,
            "support": ab / n,
            "confidence": ab / a if a else None,
            "lift": ab * n / (a * b) if a and b else None,
        }


# Clearly separated segments, for checking that clustering recovers planted structure: tight
# purchase rates (large r, alpha, a, b), two own categories per segment (about 90 % of lines),
# a dominant channel and incomes a factor of two or more apart.
SEPARATED_SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "champions", 0.15, r=40.0, alpha=500.0, a=20.0, b=400.0, p=20.0, q=20.0, gamma=3000.0,
        first_purchase=(0.0, 0.3), extra_lines=3.0,
        category_weights=_weights(electronics=40, apparel=40),
        channel_probs=(0.05, 0.9, 0.05), review_prob=0.3, mean_review=4.6,
        opens_per_year=40.0, click_prob=0.4, tickets_per_year=0.5, income_median=320_000.0,
    ),
    Segment(
        "loyal", 0.20, r=40.0, alpha=1300.0, a=10.0, b=400.0, p=20.0, q=20.0, gamma=1500.0,
        first_purchase=(0.0, 0.3), extra_lines=3.0,
        category_weights=_weights(home=40, grocery=40),
        channel_probs=(0.9, 0.05, 0.05), review_prob=0.2, mean_review=4.2,
        opens_per_year=15.0, click_prob=0.2, tickets_per_year=1.0, income_median=150_000.0,
    ),
    Segment(
        "new", 0.15, r=40.0, alpha=800.0, a=5.0, b=200.0, p=20.0, q=20.0, gamma=800.0,
        first_purchase=(0.85, 1.0), extra_lines=3.0,
        category_weights=_weights(beauty=40, toys=40),
        channel_probs=(0.1, 0.8, 0.1), review_prob=0.15, mean_review=3.9,
        opens_per_year=10.0, click_prob=0.15, tickets_per_year=1.5, income_median=70_000.0,
    ),
    Segment(
        "at_risk", 0.25, r=40.0, alpha=2000.0, a=40.0, b=60.0, p=20.0, q=20.0, gamma=1500.0,
        first_purchase=(0.0, 0.3), extra_lines=3.0,
        category_weights=_weights(books=40, sports=40),
        channel_probs=(0.05, 0.05, 0.9), review_prob=0.12, mean_review=3.0,
        opens_per_year=4.0, click_prob=0.08, tickets_per_year=3.0, income_median=110_000.0,
    ),
    Segment(
        "lost", 0.25, r=40.0, alpha=4000.0, a=80.0, b=20.0, p=20.0, q=20.0, gamma=800.0,
        first_purchase=(0.0, 0.2), extra_lines=3.0,
        category_weights=_weights(health=40, pets=40),
        channel_probs=(0.1, 0.1, 0.8), review_prob=0.1, mean_review=2.2,
        opens_per_year=1.0, click_prob=0.03, tickets_per_year=2.0, income_median=35_000.0,
    ),
)

# Planted segment models selectable in the generator (``segment_model``).
SEGMENT_MODELS: dict[str, tuple[Segment, ...]] = {
    "default": SEGMENTS,
    "separated": SEPARATED_SEGMENTS,
}
