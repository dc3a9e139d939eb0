"""Synthetic CRM data with a known ground truth.

:func:`generate_dataset` writes transactions, customers and events as a CRM export might hold
them, drawn from a planted model: customer segments that purchase by the BG/NBD model, spend by
the Gamma-Gamma model, prefer some categories, and buy planted product pairs together. Next to
the data it writes ``truth.json`` (the model and what was realized) and
``truth_customers.parquet`` (every customer's latent parameters), so analyses can be checked
against the truth. With ``messy=True`` it also injects the defects real exports have, at known
rates, and records the exact number of each.

Generation streams. Customers are simulated in blocks of ``_BLOCK`` customers, each with its own
random streams derived from the seed, so the output does not depend on the chunk size; each chunk
of blocks is appended to the output files before the next one is made, so memory stays bounded
for any size of data set.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmlens.datasets import _truth as tr
from crmlens.errors import InputError

__all__ = ["HEADERS", "GeneratedDataset", "generate_dataset"]

log = logging.getLogger(__name__)

# Column names of each output table, English and Chinese.
HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "transactions": {
        "en": ("order_id", "customer_id", "order_date", "product_id", "product_name", "category",
               "quantity", "unit_price", "channel", "region"),
        "zh": ("订单号", "客户编号", "下单时间", "商品编号", "商品名称", "类别", "数量", "单价",
               "渠道", "地区"),
    },
    "customers": {
        "en": ("customer_id", "name", "email", "phone", "gender", "birth_date", "income",
               "region", "signup_date"),
        "zh": ("客户编号", "姓名", "邮箱", "手机", "性别", "出生日期", "收入", "地区", "注册日期"),
    },
    "events": {
        "en": ("customer_id", "event_time", "event_type", "value"),
        "zh": ("客户编号", "时间", "类型", "分值"),
    },
}

_BLOCK = 2048  # customers per random-stream block; chunks are whole numbers of blocks
_PILOT_BLOCKS = 8  # blocks simulated to calibrate rows per order for n_transactions
_N_PAIRS = 10
_STREAM_CATALOGUE, _STREAM_BLOCKS, _STREAM_PILOT = 0, 1, 2
_PART_CUSTOMERS, _PART_ORDERS, _PART_LINES, _PART_EVENTS, _PART_MESSY = range(5)
_DAY = 1440  # minutes; all times are whole minutes so every date format can show them exactly

# Line kinds (messy mode adds the last three).
_PRODUCT, _POSTAGE, _DISCOUNT, _CANCEL = range(4)
EVENT_TYPES = ("review", "email_open", "email_click", "support_ticket")

# Defect rates of messy mode: per order, per product line or per row as named.
MESSY_RATES: dict[str, float] = {
    "anonymous_order": 0.03,   # per order: the whole order loses its customer id
    "cancellation": 0.02,      # per product line: a later C-prefixed line returning some of it
    "postage_order": 0.05,     # per order: a POST / POSTAGE line
    "discount_order": 0.01,    # per order: a D / Discount line (quantity -1)
    "zero_price": 0.003,       # per product line: unit price 0
    "name_whitespace": 0.02,   # per row: leading and/or trailing spaces around the name
    "name_fullwidth": 0.01,    # per row: letters and digits of the name in full width
    "bad_date": 0.0002,        # per product line: 'not a date'
    "bad_quantity": 0.0002,    # per product line: quantity 'abc'
    "duplicate_row": 0.005,    # per row: an exact copy right after it
}
# (name, share of rows, example); only day-first is used for d/m/y so the column stays decidable.
DATE_FORMATS = (
    ("iso", 0.6, "2011-12-09 12:50:00"),
    ("ymd_slash", 0.1, "2011/12/9 12:50"),
    ("day_first", 0.1, "9/12/2011 12:50"),
    ("chinese", 0.1, "2011年12月9日 12:50"),
    ("epoch_seconds", 0.1, "1323435000"),
)
MONEY_FORMATS = (
    ("plain", 0.7, "1234.50"),
    ("yen", 0.075, "¥1,234.50"),
    ("dollar", 0.075, "$1,234.50"),
    ("euro", 0.075, "1.234,50 €"),
    ("fullwidth", 0.075, "１２３４.５０"),
)
_BAD_DATE = len(DATE_FORMATS)  # date-format code of an unparseable date
_POSTAGE_CENTS = np.array([500, 800, 1200, 1800])
_NAME_VARIANTS = ("plain", "fullwidth", "leading_space", "trailing_space", "both_spaces")

_ADJECTIVES = ("Classic", "Smart", "Deluxe", "Eco", "Compact", "Premium", "Everyday", "Pro",
               "Soft", "Ultra", "Mini", "Vintage", "Fresh", "Organic", "Travel", "Family")
_NOUNS = (
    ("Headphones", "Charger", "Speaker", "Keyboard", "Mouse", "Power Bank", "Webcam", "Cable"),
    ("Mug", "Pan", "Knife Set", "Kettle", "Towel", "Lamp", "Cutting Board", "Storage Box"),
    ("Lipstick", "Face Cream", "Shampoo", "Perfume", "Serum", "Hand Lotion", "Mascara", "Mask"),
    ("T-Shirt", "Jeans", "Jacket", "Scarf", "Sneakers", "Dress", "Socks", "Hoodie"),
    ("Yoga Mat", "Water Bottle", "Tent", "Backpack", "Dumbbell", "Bike Light", "Cap", "Gloves"),
    ("Novel", "Cookbook", "Notebook", "Atlas", "Comic", "Planner", "Dictionary", "Guide"),
    ("Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite", "Toy Car", "Doll", "Yo-Yo"),
    ("Green Tea", "Coffee Beans", "Rice", "Olive Oil", "Chocolate", "Noodles", "Honey", "Nuts"),
    ("Vitamin C", "Thermometer", "Bandages", "Toothbrush", "Fish Oil", "Sunscreen",
     "Hand Gel", "Eye Drops"),
    ("Dog Food", "Cat Litter", "Pet Bed", "Leash", "Chew Toy", "Cat Tree", "Bowl", "Treats"),
)
_ZH_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹")
_ZH_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
             "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "晨", "欣怡", "子涵", "浩然",
             "梓萱", "宇轩", "思远")
_EN_FIRST = ("Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Mia", "Lucas", "Sophia", "Ethan",
             "Grace", "Daniel", "Chloe", "Henry", "Lily", "Jack", "Zoe", "Ryan", "Anna", "David")
_EN_LAST = ("Smith", "Brown", "Wilson", "Taylor", "Lee", "Martin", "Clark", "Walker", "Young",
            "King", "Wright", "Scott", "Green", "Baker", "Adams", "Hill", "Chen", "Wong")
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.cn")


@dataclass(frozen=True)
class GeneratedDataset:
    """What :func:`generate_dataset` wrote.

    Attributes
    ----------
    out_dir, transactions, customers, events, truth_json, truth_customers : Path
        The output folder and the files in it.
    n_customers, n_transactions, n_orders, n_events, n_products : int
        Customers generated, rows of the transactions file (every line, including messy-mode
        additions), clean orders, rows of the events file, products in the catalogue.
    """

    out_dir: Path
    transactions: Path
    customers: Path
    events: Path
    truth_json: Path
    truth_customers: Path
    n_customers: int
    n_transactions: int
    n_orders: int
    n_events: int
    n_products: int


# --- setup: catalogue and per-segment parameter tables --------------------------------------


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class _Catalogue:
    n: int  # regular products; entries n and n + 1 are POST and D
    ids: pa.Array
    names: pa.Array  # len(_NAME_VARIANTS) blocks of n + 2 names
    category: np.ndarray  # category index; len(CATEGORIES) (no category) for POST and D
    category_names: pa.Array
    cents: np.ndarray  # unit price of each regular product, in cents
    popularity: np.ndarray  # probability of each product within its category
    pick_cum: np.ndarray  # cumulative popularity per category, plus the category index
    pick_product: np.ndarray  # product at each position of pick_cum
    pairs: tuple[tuple[int, int, float], ...]  # (antecedent, consequent, add probability)
    pair_of_a: np.ndarray  # pair index of products that are an antecedent, else -1
    pair_of_b: np.ndarray


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else ch for ch in text)


def _grouped_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group of ``counts`` consecutive values."""
    cs = np.cumsum(values)
    before = np.concatenate(([0.0], cs))[np.cumsum(counts) - counts]
    return cs - np.repeat(before, counts)


def _build_catalogue(seed: int, n_products: int) -> _Catalogue:
    rng = _rng(seed, _STREAM_CATALOGUE)
    n_cat = len(tr.CATEGORIES)
    category = rng.permutation(np.arange(n_products) % n_cat)
    # Popularity rank within the category is random, so popular ids are spread out.
    order = np.lexsort((rng.random(n_products), category))
    counts = np.bincount(category, minlength=n_cat)
    rank = np.empty(n_products, dtype=np.int64)
    rank[order] = np.arange(n_products) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    weight = rank.astype(float) ** -tr.ZIPF_EXPONENT
    popularity = weight / np.bincount(category, weight)[category]
    pick_cum = _grouped_cumsum(popularity[order], counts) + category[order]
    pick_cum[np.cumsum(counts) - 1] = np.arange(n_cat) + 1.0  # exact ends: no draw spills over

    level = np.asarray(tr.CATEGORY_PRICE_LEVEL)[category]
    price = np.exp(rng.normal(math.log(5.0), 0.6, n_products)) * level
    cents = np.maximum(np.round(price * 100), 50).astype(np.int64)

    adjective = rng.integers(len(_ADJECTIVES), size=n_products)
    noun = rng.integers(len(_NOUNS[0]), size=n_products)
    names = [f"{_ADJECTIVES[adjective[j]]} {_NOUNS[category[j]][noun[j]]} "
             f"{'ABCDEFGHJKLMNPRSTUVWXZ'[j % 22]}{100 + j}" for j in range(n_products)]
    names += ["POSTAGE", "Discount"]
    variants = (names, [_fullwidth(s) for s in names], [" " + s for s in names],
                [s + " " for s in names], ["  " + s + "  " for s in names])
    ids = [f"P{j + 1:05d}" for j in range(n_products)] + ["POST", "D"]

    pairs, used = [], set()
    for k in range(min(_N_PAIRS, n_products // 4)):
        cat_a = k % n_cat
        cat_b = (cat_a + 1 + int(rng.integers(n_cat - 1))) % n_cat
        chosen = []
        for cat in (cat_a, cat_b):
            # Moderately popular products: frequent enough to measure, not the top seller.
            pool = [j for j in np.flatnonzero((category == cat) & (rank >= 2) & (rank <= 12))
                    if j not in used] or [j for j in np.flatnonzero(category == cat)
                                          if j not in used]
            chosen.append(int(rng.choice(pool)))
            used.add(chosen[-1])
        pairs.append((chosen[0], chosen[1], round(float(rng.uniform(0.25, 0.6)), 2)))
    pair_of_a = np.full(n_products + 2, -1, dtype=np.int64)
    pair_of_b = np.full(n_products + 2, -1, dtype=np.int64)
    for k, (a, b, _) in enumerate(pairs):
        pair_of_a[a], pair_of_b[b] = k, k

    return _Catalogue(
        n=n_products, ids=pa.array(ids), names=pa.array([s for v in variants for s in v]),
        category=np.concatenate((category, [n_cat, n_cat])),
        category_names=pa.array([*tr.CATEGORIES, None]), cents=cents, popularity=popularity,
        pick_cum=pick_cum, pick_product=order, pairs=tuple(pairs), pair_of_a=pair_of_a,
        pair_of_b=pair_of_b,
    )


@dataclass(frozen=True)
class _Setup:
    seed: int
    messy: bool
    start_min: int  # window start, minutes since 1970-01-01 (naive local time)
    end_min: int  # exclusive end of the window
    window_days: float
    segments: tuple[tr.Segment, ...]  # the planted segment model (see tr.SEGMENT_MODELS)
    cat: _Catalogue
    seg: dict[str, np.ndarray]  # Segment field -> value per segment
    seg_cum: np.ndarray
    cat_cum: np.ndarray  # per segment: cumulative category weights + segment index
    chan_cum: np.ndarray  # per segment: cumulative channel probabilities + segment index
    region_cum: np.ndarray
    date_cum: np.ndarray
    money_cum: np.ndarray


def _flat_cum(rows: list[tuple[float, ...]]) -> np.ndarray:
    # Row i's cumulative weights shifted by i, so one searchsorted serves every row.
    out = np.concatenate([np.cumsum(np.asarray(r) / sum(r)) + i for i, r in enumerate(rows)])
    out[len(rows[0]) - 1::len(rows[0])] = np.arange(len(rows)) + 1.0
    return out


def _make_setup(seed: int, n_products: int, start_day: int, end_day: int, messy: bool,
                segments: tuple[tr.Segment, ...] = tr.SEGMENTS) -> _Setup:
    fields = ("share", "r", "alpha", "a", "b", "p", "q", "gamma", "extra_lines", "review_prob",
              "mean_review", "opens_per_year", "click_prob", "tickets_per_year", "income_median")
    seg = {f: np.array([getattr(s, f) for s in segments]) for f in fields}
    seg["fp_lo"] = np.array([s.first_purchase[0] for s in segments])
    seg["fp_hi"] = np.array([s.first_purchase[1] for s in segments])
    return _Setup(
        seed=seed, messy=messy, start_min=start_day * _DAY, end_min=(end_day + 1) * _DAY,
        window_days=float(end_day + 1 - start_day), segments=segments,
        cat=_build_catalogue(seed, n_products),
        seg=seg, seg_cum=_flat_cum([tuple(seg["share"])]),
        cat_cum=_flat_cum([s.category_weights for s in segments]),
        chan_cum=_flat_cum([s.channel_probs for s in segments]),
        region_cum=_flat_cum([tr.REGION_WEIGHTS]),
        date_cum=_flat_cum([tuple(f[1] for f in DATE_FORMATS)]),
        money_cum=_flat_cum([tuple(f[1] for f in MONEY_FORMATS)]),
    )


def _pick(cum: np.ndarray, group: np.ndarray | int, u: np.ndarray, width: int) -> np.ndarray:
    """Categorical draws: row ``group`` of a :func:`_flat_cum` table, from uniforms ``u``."""
    return np.searchsorted(cum, group + u, side="right") - np.asarray(group) * width


# --- simulation of one block of customers ---------------------------------------------------


@dataclass
class _Block:
    customers: dict[str, np.ndarray]
    lines: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    tally: tr.Tally
    orders_used: int  # order numbers consumed


def _simulate_block(st: _Setup, block: int, first: int, n: int, order_base: int,
                    stream: int = _STREAM_BLOCKS) -> _Block:
    rngs = [_rng(st.seed, stream, block, part) for part in range(5)]
    tally = tr.Tally(len(st.segments), len(st.cat.pairs))
    cust = _simulate_customers(st, rngs[_PART_CUSTOMERS], first, n)
    orders = _simulate_orders(st, rngs[_PART_ORDERS], cust, order_base)
    cust["first_minute"], cust["last_minute"] = orders["first_minute"], orders["last_minute"]
    cust["signup_day"] = orders["first_minute"] // _DAY - cust["signup_lag"]
    lines = _simulate_lines(st, rngs[_PART_LINES], orders, tally)
    events = _simulate_events(st, rngs[_PART_EVENTS], cust, orders, tally)
    if st.messy:
        lines = _inject_defects(st, rngs[_PART_MESSY], lines, orders, tally)
    _tally_customers(tally, cust, orders)
    del lines["line_order"]
    tally.rows += np.bincount(cust["seg"][lines["cust"] - first], minlength=len(st.segments))
    tally.transaction_rows += lines["cust"].size
    tally.event_rows += events["cust"].size
    return _Block(cust, lines, events, tally, orders["n"])


def _simulate_customers(st: _Setup, rng: np.random.Generator, first: int,
                        n: int) -> dict[str, np.ndarray]:
    """Latent parameters and purchase history of ``n`` customers (BG/NBD, exactly)."""
    s = st.seg
    seg = np.minimum(_pick(st.seg_cum, 0, rng.random(n), 0), len(st.segments) - 1)
    lam = rng.gamma(s["r"][seg], 1.0 / s["alpha"][seg])
    p = np.maximum(rng.beta(s["a"][seg], s["b"][seg]), 1e-12)
    nu = rng.gamma(s["q"][seg], 1.0 / s["gamma"][seg])
    t0 = st.window_days * (s["fp_lo"][seg] + (s["fp_hi"][seg] - s["fp_lo"][seg]) * rng.random(n))
    horizon = st.window_days - t0
    # Without dropout the repeat purchases in (0, horizon] are Poisson(lambda * horizon); the
    # customer dies right after purchase number `death` ~ Geometric(p), so they make
    # min(n_window, death) of them and are alive at the end iff death > n_window.
    n_window = rng.poisson(lam * horizon)
    death = rng.geometric(p)
    repeats = np.minimum(n_window, death)
    return {
        "idx": np.arange(first, first + n), "seg": seg, "lam": lam, "p": p, "nu": nu,
        "t0": t0, "horizon": horizon, "n_window": n_window, "repeats": repeats,
        "alive": death > n_window,
        "region": _pick(st.region_cum, 0, rng.random(n), 0),
        "gender": rng.random(n) < 0.52,
        "name": rng.integers(len(_ZH_SURNAMES) * len(_ZH_GIVEN)
                             + len(_EN_FIRST) * len(_EN_LAST), size=n),
        "domain": rng.integers(len(_EMAIL_DOMAINS), size=n),
        "phone": rng.choice(np.array([3, 5, 7, 8, 9]), size=n) * 1_000_000_000
        + rng.integers(1_000_000_000, size=n),
        "birth_day": (st.start_min // _DAY - rng.uniform(18, 75, n) * 365.25).astype(np.int64),
        "income": np.round(rng.lognormal(np.log(s["income_median"][seg]), 0.5) / 100) * 100,
        "signup_lag": rng.integers(0, 31, size=n),
    }


def _simulate_orders(st: _Setup, rng: np.random.Generator, cust: dict[str, np.ndarray],
                     order_base: int) -> dict:
    """Order times, values and channels; first order at t0, then the repeat purchases."""
    n, repeats = cust["idx"].size, cust["repeats"]
    # The first k arrival times of a Poisson process with N events on (0, T] are the first k
    # order statistics of N uniforms: T * S_j / S_{N+1} with S partial sums of Exp(1), and
    # S_{N+1} = S_k + Gamma(N - k + 1). So only the purchases actually made are drawn.
    owner = np.repeat(np.arange(n), repeats)
    partial = _grouped_cumsum(rng.exponential(size=int(repeats.sum())), repeats)
    last = np.zeros(n)
    has = repeats > 0
    last[has] = partial[np.cumsum(repeats)[has] - 1]
    denom = last + rng.gamma(cust["n_window"] - repeats + 1.0)
    tau = cust["horizon"][owner] * partial / denom[owner]

    per_customer = repeats + 1
    o_owner = np.repeat(np.arange(n), per_customer)
    first_pos = np.cumsum(per_customer) - per_customer
    is_first = np.zeros(o_owner.size, dtype=bool)
    is_first[first_pos] = True
    t = np.empty(o_owner.size)
    t[is_first] = cust["t0"]
    t[~is_first] = cust["t0"][owner] + tau
    minute = np.minimum(st.start_min + np.floor(t * _DAY).astype(np.int64), st.end_min - 1)

    oseg = cust["seg"][o_owner]
    own_region = rng.random(o_owner.size) >= tr.OTHER_REGION_SHARE
    region = np.where(own_region, cust["region"][o_owner],
                      rng.integers(len(tr.REGIONS), size=o_owner.size))
    return {
        "n": o_owner.size, "owner": o_owner, "cust": cust["idx"][o_owner], "seg": oseg,
        "minute": minute,
        "number": order_base + 1 + np.arange(o_owner.size),
        "first_minute": minute[first_pos], "last_minute": minute[first_pos + repeats],
        "value": rng.gamma(st.seg["p"][oseg], 1.0 / cust["nu"][o_owner]),
        "channel": _pick(st.chan_cum, oseg, rng.random(o_owner.size), len(tr.CHANNELS)),
        "region": region,
    }


def _simulate_lines(st: _Setup, rng: np.random.Generator, orders: dict,
                    tally: tr.Tally) -> dict[str, np.ndarray]:
    """Order lines: products by category preference and popularity, planted pairs, quantities."""
    cat = st.cat
    n_ord, n_cat, width = orders["n"], len(tr.CATEGORIES), cat.n + 2
    k = 1 + rng.poisson(st.seg["extra_lines"][orders["seg"]])
    line_order = np.repeat(np.arange(n_ord), k)
    lseg = orders["seg"][line_order]
    category = _pick(st.cat_cum, lseg, rng.random(line_order.size), n_cat)
    product = cat.pick_product[np.searchsorted(cat.pick_cum, category
                                               + rng.random(line_order.size), side="right")]
    # A product drawn twice in an order is one line; then each antecedent present adds its
    # consequent with the planted probability (one chance per order, as the truth states).
    key = _sorted_unique(line_order * width + product)
    pair = cat.pair_of_a[key % width]
    hit = np.flatnonzero(pair >= 0)
    added = hit[rng.random(hit.size) < np.array([c for *_, c in cat.pairs])[pair[hit]]]
    conseq = np.array([b for _, b, _ in cat.pairs], dtype=np.int64)
    key = _sorted_unique(np.concatenate((key, key[added] // width * width + conseq[pair[added]])))
    line_order, product = key // width, key % width

    cents = cat.cents[product]
    basket = np.bincount(line_order, weights=cents, minlength=n_ord)
    scale = orders["value"] * 100.0 / basket
    qty = np.maximum(np.floor(scale[line_order] + rng.random(line_order.size)), 1).astype(np.int64)

    value = np.bincount(line_order, weights=qty * cents, minlength=n_ord) / 100.0
    tally.order_value += np.bincount(orders["seg"], weights=value, minlength=len(st.segments))
    tally.product_lines += line_order.size
    _tally_pairs(tally, cat, line_order, product)
    return {
        "cust": orders["cust"][line_order], "order": orders["number"][line_order],
        "minute": orders["minute"][line_order], "product": product, "qty": qty,
        "cents": cents, "channel": orders["channel"][line_order].astype(np.int8),
        "region": orders["region"][line_order].astype(np.int8),
        "kind": np.zeros(line_order.size, dtype=np.int8),
        "blank": np.zeros(line_order.size, dtype=bool), "line_order": line_order,
    }


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    # np.unique hashes before sorting; a plain sort is faster for these int64 keys.
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys


def _tally_pairs(tally: tr.Tally, cat: _Catalogue, line_order: np.ndarray,
                 product: np.ndarray) -> None:
    # Lines are unique per (order, product), so counting lines counts orders.
    n_pairs = len(cat.pairs)
    if not n_pairs:
        return
    pa_, pb_ = cat.pair_of_a[product], cat.pair_of_b[product]
    tally.pair_a += np.bincount(pa_[pa_ >= 0], minlength=n_pairs)
    tally.pair_b += np.bincount(pb_[pb_ >= 0], minlength=n_pairs)
    both = np.intersect1d(line_order[pa_ >= 0] * n_pairs + pa_[pa_ >= 0],
                          line_order[pb_ >= 0] * n_pairs + pb_[pb_ >= 0], assume_unique=True)
    tally.pair_ab += np.bincount(both % n_pairs, minlength=n_pairs)


def _tally_customers(tally: tr.Tally, cust: dict, orders: dict) -> None:
    n_seg, seg = tally.n_segments, cust["seg"]
    tally.customers += np.bincount(seg, minlength=n_seg)
    tally.repeat_purchases += np.bincount(seg, weights=cust["repeats"], minlength=n_seg).astype(
        np.int64)
    tally.alive += np.bincount(seg, weights=cust["alive"].astype(float),
                               minlength=n_seg).astype(np.int64)
    tally.lam += np.bincount(seg, weights=cust["lam"], minlength=n_seg)
    tally.p += np.bincount(seg, weights=cust["p"], minlength=n_seg)
    tally.orders += np.bincount(orders["seg"], minlength=n_seg)


def _simulate_events(st: _Setup, rng: np.random.Generator, cust: dict, orders: dict,
                     tally: tr.Tally) -> dict[str, np.ndarray]:
    """Reviews after some orders (scores by segment), email opens and clicks, tickets."""
    s, end = st.seg, st.end_min - 1
    oseg = orders["seg"]
    reviewed = np.flatnonzero(rng.random(orders["n"]) < s["review_prob"][oseg])
    r_min = np.minimum(orders["minute"][reviewed] + 1
                       + rng.exponential(3 * _DAY, reviewed.size).astype(np.int64), end)
    r_score = 1 + rng.binomial(4, (s["mean_review"][oseg[reviewed]] - 1.0) / 4.0)
    n_seg = len(st.segments)
    tally.reviews += np.bincount(oseg[reviewed], minlength=n_seg)
    tally.review_score += np.bincount(oseg[reviewed], weights=r_score, minlength=n_seg)

    # Email and support activity runs from signup (or the window start) to the end.
    signup = cust["signup_day"] * _DAY
    active_from = np.maximum(signup, st.start_min)
    span = st.end_min - active_from

    def uniform_times(rate_per_year):
        count = rng.poisson(rate_per_year[cust["seg"]] / 365.0 * span / _DAY)
        who = np.repeat(np.arange(cust["idx"].size), count)
        return who, active_from[who] + (rng.random(who.size) * span[who]).astype(np.int64)

    o_who, o_min = uniform_times(s["opens_per_year"])
    clicked = rng.random(o_who.size) < s["click_prob"][cust["seg"][o_who]]
    c_who = o_who[clicked]
    c_min = np.minimum(o_min[clicked] + rng.integers(1, 121, size=c_who.size), end)
    t_who, t_min = uniform_times(s["tickets_per_year"])

    who = np.concatenate((orders["owner"][reviewed], o_who, c_who, t_who))
    minute = np.concatenate((r_min, o_min, c_min, t_min))
    etype = np.repeat(np.arange(4, dtype=np.int8), [reviewed.size, o_who.size, c_who.size,
                                                   t_who.size])
    value = np.concatenate((r_score.astype(float), np.full(who.size - reviewed.size, np.nan)))
    order = np.lexsort((etype, minute, who))
    return {"cust": cust["idx"][who[order]], "minute": minute[order], "type": etype[order],
            "value": value[order]}


# --- messy mode -------------------------------------------------------------------------------


def _inject_defects(st: _Setup, rng: np.random.Generator, lines: dict, orders: dict,
                    tally: tr.Tally) -> dict[str, np.ndarray]:
    """Add and alter rows as real exports do; count each defect as it appears in the file."""
    r, cat, n_ord = MESSY_RATES, st.cat, orders["n"]
    extra = []
    # Non-product lines inside existing orders: postage (quantity 1) and discounts (-1).
    for kind, rate in ((_POSTAGE, r["postage_order"]), (_DISCOUNT, r["discount_order"])):
        o = np.flatnonzero(rng.random(n_ord) < rate)
        if kind == _POSTAGE:
            cents, qty, product = rng.choice(_POSTAGE_CENTS, size=o.size), 1, cat.n
        else:
            order_cents = np.bincount(lines["line_order"], lines["qty"] * lines["cents"], n_ord)
            cents = np.maximum(np.round(order_cents[o] * rng.uniform(0.05, 0.2, o.size)), 100)
            qty, product = -1, cat.n + 1
        extra.append(_lines_like(orders, o, kind, product, qty, cents.astype(np.int64)))

    # Whole orders lose the customer id.
    blank_order = rng.random(n_ord) < r["anonymous_order"]
    lines["blank"] = blank_order[lines["line_order"]]
    for e in extra:
        e["blank"] = blank_order[e["line_order"]]

    # Cancellations: later lines returning part of some product lines of an identified order
    # (so the customer did buy them earlier), under the order's id prefixed with C. Reusing the
    # order's number keeps the other order ids those of the clean data set.
    src = np.flatnonzero(~lines["blank"] & (lines["minute"] < st.end_min - 2))
    src = src[rng.random(src.size) < r["cancellation"]]
    lag = rng.integers(1, 14 * _DAY, size=n_ord)  # one cancellation time per order
    cancel = {key: val[src] for key, val in lines.items()}
    cancel["minute"] = np.minimum(cancel["minute"] + lag[cancel["line_order"]], st.end_min - 1)
    cancel["qty"] = -(1 + (rng.random(src.size) * cancel["qty"]).astype(np.int64))
    cancel["kind"] = np.full(src.size, _CANCEL, dtype=np.int8)
    cancel_orders = np.unique(cancel["line_order"]).size

    # Zero prices on some regular lines (after the cancellations copied the real price).
    lines["cents"] = np.where(rng.random(lines["cents"].size) < r["zero_price"], 0,
                              lines["cents"])
    rows = {key: np.concatenate([lines[key], cancel[key], *(e[key] for e in extra)])
            for key in lines}
    order = np.lexsort((rows["kind"], rows["order"], rows["minute"], rows["cust"]))
    rows = {key: val[order] for key, val in rows.items()}

    n = rows["cust"].size
    regular = rows["kind"] == _PRODUCT
    rows["date_fmt"] = _pick(st.date_cum, 0, rng.random(n), 0).astype(np.int8)
    rows["date_fmt"][regular & (rng.random(n) < r["bad_date"])] = _BAD_DATE
    rows["money"] = np.where(rows["cents"] == 0, 0, _pick(st.money_cum, 0, rng.random(n), 0))
    u = rng.random(n)
    rows["name_var"] = np.where(u < r["name_fullwidth"], 1, 0)
    spaced = (u >= r["name_fullwidth"]) & (u < r["name_fullwidth"] + r["name_whitespace"])
    rows["name_var"][spaced] = 2 + rng.integers(3, size=int(spaced.sum()))
    rows["bad_qty"] = regular & (rng.random(n) < r["bad_quantity"])
    # Exact duplicates last, so each copy equals its original in every column.
    copies = 1 + (rng.random(n) < r["duplicate_row"])
    rows = {key: np.repeat(val, copies) for key, val in rows.items()}
    _count_defects(tally, rows, int(copies.sum()) - n, int(blank_order.sum()), cancel_orders)
    return rows


def _lines_like(orders: dict, o: np.ndarray, kind: int, product: int, qty: int,
                cents: np.ndarray) -> dict[str, np.ndarray]:
    # Non-product lines of orders `o`, with the orders' customer, time, channel and region.
    size = o.size
    return {
        "cust": orders["cust"][o], "order": orders["number"][o], "minute": orders["minute"][o],
        "product": np.full(size, product, dtype=np.int64), "qty": np.full(size, qty, np.int64),
        "cents": cents, "channel": orders["channel"][o].astype(np.int8),
        "region": orders["region"][o].astype(np.int8),
        "kind": np.full(size, kind, dtype=np.int8), "blank": np.zeros(size, dtype=bool),
        "line_order": o,
    }


def _count_defects(tally: tr.Tally, rows: dict, duplicates: int, anonymous_orders: int,
                   cancel_orders: int) -> None:
    kind, regular = rows["kind"], rows["kind"] == _PRODUCT
    counts = {
        "cancellation_rows": int((kind == _CANCEL).sum()),
        "cancellation_orders": cancel_orders,
        "anonymous_orders": anonymous_orders,
        "empty_customer_id_rows": int(rows["blank"].sum()),
        "duplicate_rows": duplicates,
        "postage_rows": int((kind == _POSTAGE).sum()),
        "discount_rows": int((kind == _DISCOUNT).sum()),
        "zero_price_rows": int((regular & (rows["cents"] == 0)).sum()),
        "unparseable_date_rows": int((rows["date_fmt"] == _BAD_DATE).sum()),
        "bad_quantity_rows": int(rows["bad_qty"].sum()),
        "name_fullwidth_rows": int((rows["name_var"] == 1).sum()),
        "name_whitespace_rows": int((rows["name_var"] >= 2).sum()),
    }
    fmt_counts = np.bincount(rows["date_fmt"], minlength=_BAD_DATE + 1)
    money_counts = np.bincount(rows["money"], minlength=len(MONEY_FORMATS))
    counts.update({f"date_format.{f[0]}": int(c) for f, c in zip(DATE_FORMATS, fmt_counts)})
    counts.update({f"money_format.{f[0]}": int(c) for f, c in zip(MONEY_FORMATS, money_counts)})
    for key, value in counts.items():
        tally.defects[key] = tally.defects.get(key, 0) + value


# --- rendering a chunk as Arrow tables ----------------------------------------------------------


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(_text(values), width=width, padding="0")


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _scatter(codes: np.ndarray, n_codes: int, render: Callable[[int, np.ndarray], pa.Array]
             ) -> pa.Array:
    """One string column whose rows are rendered differently according to ``codes``.

    Each code's rows are rendered together (vectorized), then put back in place with one take.
    """
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_codes + 1))
    pieces = [render(c, order[bounds[c]:bounds[c + 1]]).cast(pa.string())
              for c in range(n_codes) if bounds[c + 1] > bounds[c]]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return pc.take(pa.concat_arrays(pieces) if pieces else pa.array([], pa.string()), inverse)


def _timestamps(minute: np.ndarray) -> pa.Array:
    return pa.array(minute * 60, type=pa.timestamp("s"))


_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
# Date and time parts of the non-ISO formats: (date part, time part) from (date, hour, minute).
_DATE_PARTS = {
    1: (lambda d: f"{d.year}/{d.month}/{d.day}", lambda h, m: f"{h}:{m:02d}"),
    2: (lambda d: f"{d.day}/{d.month}/{d.year}", lambda h, m: f"{h}:{m:02d}"),
    3: (lambda d: f"{d.year}年{d.month}月{d.day}日", lambda h, m: f"{h:02d}:{m:02d}"),
}


def _date_texts(minute: np.ndarray, fmt: np.ndarray) -> pa.Array:
    day = minute // _DAY
    first_day = int(day.min(initial=0))
    days = [date(1970, 1, 1) + timedelta(days=first_day + i)
            for i in range(int(day.max(initial=0)) - first_day + 1)]

    def render(code: int, idx: np.ndarray) -> pa.Array:
        m = minute[idx]
        if code == 0:
            return pc.cast(_timestamps(m), pa.string())  # YYYY-MM-DD HH:MM:SS
        if code == 4:
            return _text(m * 60)  # the naive local time read as UTC
        if code == _BAD_DATE:
            return pa.array(["not a date"] * idx.size)
        # Few distinct days and minutes of the day: format those, then look them up.
        date_part, time_part = _DATE_PARTS[code]
        dates = pa.array([date_part(d) for d in days])
        times = pa.array([time_part(h, mm) for h in range(24) for mm in range(60)])
        return _join(pc.take(dates, day[idx] - first_day), " ", pc.take(times, m % _DAY))

    return _scatter(fmt, _BAD_DATE + 1, render)


def _money_text(cents: int, style: int) -> str:
    whole, frac = divmod(int(cents), 100)
    if style == 1:
        return f"¥{whole:,}.{frac:02d}"
    if style == 2:
        return f"${whole:,}.{frac:02d}"
    if style == 3:
        return f"{whole:,}".replace(",", ".") + f",{frac:02d} €"
    plain = f"{whole}.{frac:02d}"
    return plain.translate(_FULLWIDTH_DIGITS) if style == 4 else plain


def _money_texts(cents: np.ndarray, style: np.ndarray) -> pa.Array:
    def render(code: int, idx: np.ndarray) -> pa.Array:
        # Prices repeat (fixed per product), so each distinct amount is formatted once.
        values, inverse = np.unique(cents[idx], return_inverse=True)
        return pc.take(pa.array([_money_text(v, code) for v in values]), inverse)

    return _scatter(style, len(MONEY_FORMATS), render)


def _per_run(keys: np.ndarray, render: Callable[[np.ndarray], pa.Array]) -> pa.Array:
    """Render once per run of equal consecutive keys, then spread over the rows."""
    if keys.size == 0:
        return render(keys)
    starts = np.concatenate(([True], keys[1:] != keys[:-1]))
    return pc.take(render(keys[starts]), np.cumsum(starts) - 1)


def _transactions_table(st: _Setup, rows: dict, first: int, cust_ids: pa.Array) -> pa.Table:
    cat = st.cat
    is_cancel = rows["kind"] == _CANCEL
    # An order's rows are consecutive, so its id is rendered once per order.
    order_id = _per_run(rows["order"], lambda o: _join("O", _padded(o, 8)))
    cust = pa.array(rows["cust"] - first, mask=rows["blank"])
    columns = {
        "order_id": order_id,
        "customer_id": pc.take(cust_ids, cust),
        "order_date": _timestamps(rows["minute"]),
        "product_id": pc.take(cat.ids, rows["product"]),
        "product_name": pc.take(cat.names, rows["product"]),
        "category": pc.take(cat.category_names, cat.category[rows["product"]]),
        "quantity": pa.array(rows["qty"]),
        "unit_price": pa.array(rows["cents"] / 100.0),
        "channel": pc.take(pa.array(tr.CHANNELS), rows["channel"]),
        "region": pc.take(pa.array(tr.REGIONS), rows["region"]),
    }
    if st.messy:
        columns["order_id"] = pc.if_else(pa.array(is_cancel), _join("C", order_id), order_id)
        columns["order_date"] = _date_texts(rows["minute"], rows["date_fmt"])
        columns["product_name"] = pc.take(cat.names, rows["name_var"] * (cat.n + 2)
                                          + rows["product"])
        columns["quantity"] = pc.if_else(pa.array(rows["bad_qty"]), "abc", _text(rows["qty"]))
        columns["unit_price"] = _money_texts(rows["cents"], rows["money"])
    return pa.table(columns)


def _name_table() -> pa.Array:
    zh = [s + g for s in _ZH_SURNAMES for g in _ZH_GIVEN]
    en = [f"{f} {last}" for f in _EN_FIRST for last in _EN_LAST]
    return pa.array(zh + en)


def _customers_table(st: _Setup, cust: dict, cust_ids: pa.Array, names: pa.Array) -> pa.Table:
    number = _text(cust["idx"] + 1)
    table = pa.table({
        "customer_id": cust_ids,
        "name": pc.take(names, cust["name"]),
        "email": _join("c", number, "@", pc.take(pa.array(_EMAIL_DOMAINS), cust["domain"])),
        "phone": _join("1", _padded(cust["phone"], 10)),
        "gender": pc.take(pa.array(["M", "F"]), cust["gender"].astype(np.int8)),
        "birth_date": pa.array(cust["birth_day"].astype(np.int32), type=pa.date32()),
        "income": pa.array(cust["income"]),
        "region": pc.take(pa.array(tr.REGIONS), cust["region"]),
        "signup_date": pa.array(cust["signup_day"].astype(np.int32), type=pa.date32()),
    })
    return _all_text(table) if st.messy else table


def _events_table(st: _Setup, ev: dict, first: int, cust_ids: pa.Array) -> pa.Table:
    table = pa.table({
        "customer_id": pc.take(cust_ids, ev["cust"] - first),
        "event_time": _timestamps(ev["minute"]),
        "event_type": pc.take(pa.array(EVENT_TYPES), ev["type"]),
        "value": pa.array(ev["value"], type=pa.float64(), mask=np.isnan(ev["value"])),
    })
    return _all_text(table) if st.messy else table


def _truth_customers_table(st: _Setup, cust: dict, cust_ids: pa.Array) -> pa.Table:
    dropout = np.where(cust["alive"], 0, cust["last_minute"])
    return pa.table({
        "customer_id": cust_ids,
        "segment": pc.take(pa.array([s.name for s in st.segments]), cust["seg"]),
        "first_purchase": _timestamps(cust["first_minute"]),
        "lambda": pa.array(cust["lam"]),
        "p": pa.array(cust["p"]),
        "dropout_time": pa.array(dropout * 60, type=pa.timestamp("s"), mask=cust["alive"]),
        "alive_at_end": pa.array(cust["alive"]),
        "nu": pa.array(cust["nu"]),
        "n_orders": pa.array(cust["repeats"] + 1),
    })


def _all_text(table: pa.Table) -> pa.Table:
    return pa.table({name: pc.cast(col, pa.string()) for name, col in
                     zip(table.column_names, table.columns)})


# --- output files -----------------------------------------------------------------------------


class _Sink:
    """Appends tables to one file (Parquet or CSV) under a temporary name until committed."""

    def __init__(self, path: Path, fmt: str, header: tuple[str, ...] | None = None) -> None:
        self.path, self.fmt, self.header = path, fmt, header
        self.tmp = path.with_name(path.name + ".partial")
        self.writer = None

    def write(self, table: pa.Table) -> None:
        if self.header is not None:
            table = table.rename_columns(list(self.header))
        if self.writer is None:
            if self.fmt == "csv":
                import pyarrow.csv as pacsv

                self.writer = pacsv.CSVWriter(str(self.tmp), table.schema)
            else:
                import pyarrow.parquet as pq

                self.writer = pq.ParquetWriter(str(self.tmp), table.schema)
        if self.fmt == "csv":
            self.writer.write_table(table)
        else:  # one row group per chunk
            self.writer.write_table(table, row_group_size=max(table.num_rows, 1))

    def close(self, ok: bool) -> None:
        if self.writer is not None:
            self.writer.close()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


# --- public entry point -----------------------------------------------------------------------


def _parse_day(text: str, which: str) -> int:
    try:
        return int(np.datetime64(str(text).strip()[:10], "D").astype(np.int64))
    except ValueError:
        raise InputError("error.generator.bad_date", option=which, value=text) from None


def _validate(n_customers: int, n_transactions: int | None, n_products: int, seed: int,
              fmt: str, header_lang: str, chunk_size: int) -> None:
    if fmt not in ("parquet", "csv"):
        raise InputError("error.generator.bad_format", value=fmt)
    if header_lang not in ("en", "zh"):
        raise InputError("error.generator.bad_header_lang", value=header_lang)
    for name, value, low in (("n_customers", n_customers, 1), ("n_products", n_products, 100),
                             ("seed", seed, 0), ("chunk_size", chunk_size, 1),
                             ("n_transactions", 1 if n_transactions is None else n_transactions,
                              1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise InputError("error.generator.bad_number", option=name, value=value, minimum=low)


def _customers_for_rows(st: _Setup, n_rows: int) -> int:
    """Customers needed for about ``n_rows`` transaction rows.

    Orders per customer come from the closed-form BG/NBD expectation of each segment (exact,
    and free of the heavy tail a simulation would have); rows per order, which depend on the
    basket de-duplication and the messy-mode additions, are measured on a pilot simulation.
    """
    pilot = tr.Tally(len(st.segments), len(st.cat.pairs))
    for b in range(_PILOT_BLOCKS):
        pilot.add(_simulate_block(st, b, b * _BLOCK, _BLOCK, 0, stream=_STREAM_PILOT).tally)
    rows_per_customer = sum(
        s.share * tr.segment_expectations(s, st.window_days)["orders"]
        * pilot.rows[i] / max(int(pilot.orders[i]), 1)
        for i, s in enumerate(st.segments)
    )
    return max(1, round(n_rows / rows_per_customer))


def generate_dataset(
    out_dir: str | Path,
    *,
    n_customers: int = 10_000,
    n_transactions: int | None = None,
    n_products: int = 2_000,
    start: str = "2023-01-01",
    end: str = "2024-12-31",
    seed: int = 0,
    fmt: str = "parquet",
    messy: bool = False,
    header_lang: str = "en",
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 50_000,
    segment_model: str = "default",
) -> GeneratedDataset:
    """Write a synthetic CRM data set drawn from a planted model, with its ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write to (created if missing); existing files of the same names are replaced.
    n_customers : int, default 10_000
        Number of customers. Ignored when ``n_transactions`` is given.
    n_transactions : int, optional
        Target number of transaction rows; the number of customers is chosen from the model's
        expected rows per customer, so the count comes out within a few percent of it.
    n_products : int, default 2_000
        Products in the catalogue (at least 100), spread over 10 categories.
    start, end : str, default "2023-01-01", "2024-12-31"
        First and last day (inclusive) of the observation window, ``YYYY-MM-DD``.
    seed : int, default 0
        Seed of every random draw: the same seed and arguments give identical files (and the
        chunk size does not change the data, only how it is split into row groups).
    fmt : {"parquet", "csv"}, default "parquet"
        Format of the transactions, customers and events files. The truth files are always
        ``truth.json`` and ``truth_customers.parquet``.
    messy : bool, default False
        Inject real-world defects into the transactions (cancellations, anonymous orders,
        duplicates, postage and discount lines, zero prices, mixed date and money formats,
        untidy product names, a few unparseable values) and write every column as text. Their
        rates and exact counts are recorded under ``defects`` in ``truth.json``.
    header_lang : {"en", "zh"}, default "en"
        Language of the column headers of the three data files.
    progress : callable, optional
        Called as ``progress(done_customers, total_customers)`` after each chunk.
    chunk_size : int, default 50_000
        Customers per chunk written at a time (rounded up to a multiple of 2048); bounds the
        memory used, whatever the size of the data set.
    segment_model : {"default", "separated"}, default "default"
        The planted segments. "default" is the realistic model, whose segments overlap as real
        ones do (their BG/NBD behaviour is stochastic, so even a supervised classifier cannot
        tell them apart perfectly). "separated" plants the same five segment names with tight
        purchase rates, distinct incomes and strongly distinct category and channel
        preferences, so that clustering methods can be checked for recovering them.

    Returns
    -------
    GeneratedDataset
        The paths written and their row counts.

    Raises
    ------
    InputError
        If an option is out of range or a date cannot be read.

    Notes
    -----
    Customers belong to planted segments. Purchases follow the BG/NBD model exactly (rates in
    days): lambda ~ Gamma(r, alpha), p ~ Beta(a, b), first purchase uniform in the segment's
    part of the window, repeat purchases at rate lambda until the end, dropping out after each
    repeat purchase with probability p. Orders have 1 + Poisson(m) lines; products are drawn by
    the segment's category preferences and a Zipf popularity within the category; planted pairs
    add product B to an order holding product A with a given probability. Order values follow
    the Gamma-Gamma model, approximated through integer quantities (see ``truth.json``).
    """
    _validate(n_customers, n_transactions, n_products, seed, fmt, header_lang, chunk_size)
    if segment_model not in tr.SEGMENT_MODELS:
        raise InputError("error.generator.bad_segment_model", value=segment_model,
                         allowed=", ".join(tr.SEGMENT_MODELS))
    start_day, end_day = _parse_day(start, "start"), _parse_day(end, "end")
    if end_day < start_day:
        raise InputError("error.generator.bad_window", start=start, end=end)
    st = _make_setup(int(seed), int(n_products), start_day, end_day, bool(messy),
                     tr.SEGMENT_MODELS[segment_model])
    if n_transactions is not None:
        n_customers = _customers_for_rows(st, int(n_transactions))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ext = "csv" if fmt == "csv" else "parquet"
    paths = {kind: out / f"{kind}.{ext}" for kind in HEADERS}
    paths["truth_customers"] = out / "truth_customers.parquet"
    blocks_per_chunk = max(1, math.ceil(chunk_size / _BLOCK))
    n_blocks = math.ceil(n_customers / _BLOCK)
    tally = tr.Tally(len(st.segments), len(st.cat.pairs))
    names = _name_table()
    order_base = 0

    with ExitStack() as stack:
        sinks = {kind: _Sink(paths[kind], fmt, HEADERS[kind][header_lang]) for kind in HEADERS}
        sinks["truth_customers"] = _Sink(paths["truth_customers"], "parquet")
        ok = False
        for sink in sinks.values():
            stack.callback(lambda s=sink: s.close(ok))
        for b0 in range(0, n_blocks, blocks_per_chunk):
            blocks = []
            for b in range(b0, min(b0 + blocks_per_chunk, n_blocks)):
                first = b * _BLOCK
                block = _simulate_block(st, b, first, min(_BLOCK, n_customers - first),
                                        order_base)
                order_base += block.orders_used
                tally.add(block.tally)
                blocks.append(block)
            _write_chunk(st, sinks, blocks, names)
            if progress is not None:
                progress(min((b0 + blocks_per_chunk) * _BLOCK, n_customers), n_customers)
        ok = True

    truth_path = out / "truth.json"
    truth = _truth_document(st, tally, n_customers, n_transactions, start, end, seed, fmt,
                            header_lang)
    truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n",
                          encoding="utf-8")
    log.info("Wrote %d transaction lines, %d customers and %d events to %s",
             tally.transaction_rows, n_customers, tally.event_rows, out)
    return GeneratedDataset(
        out_dir=out, transactions=paths["transactions"], customers=paths["customers"],
        events=paths["events"], truth_json=truth_path, truth_customers=paths["truth_customers"],
        n_customers=n_customers, n_transactions=tally.transaction_rows,
        n_orders=int(tally.orders.sum()), n_events=tally.event_rows, n_products=n_products,
    )


def _write_chunk(st: _Setup, sinks: dict[str, _Sink], blocks: list[_Block],
                 names: pa.Array) -> None:
    def merged(part: str) -> dict[str, np.ndarray]:
        # Popping each block's column as it is merged keeps one copy of the chunk in memory.
        parts = [getattr(b, part) for b in blocks]
        return {k: np.concatenate([p.pop(k) for p in parts]) for k in list(parts[0])}

    cust, lines, events = merged("customers"), merged("lines"), merged("events")
    first = int(cust["idx"][0])
    cust_ids = _join("C", _padded(cust["idx"] + 1, 7))
    sinks["transactions"].write(_transactions_table(st, lines, first, cust_ids))
    sinks["customers"].write(_customers_table(st, cust, cust_ids, names))
    sinks["events"].write(_events_table(st, events, first, cust_ids))
    sinks["truth_customers"].write(_truth_customers_table(st, cust, cust_ids))


def _truth_document(st: _Setup, tally: tr.Tally, n_customers: int, n_transactions: int | None,
                    start: str, end: str, seed: int, fmt: str, header_lang: str) -> dict:
    cat = st.cat
    expect = [tr.segment_expectations(s, st.window_days) for s in st.segments]
    order_weights = np.array([s.share * e["orders"] for s, e in zip(st.segments, expect)])
    extra = np.array([s.extra_lines for s in st.segments])
    pref = np.array([s.category_weights for s in st.segments])

    def pi(j):  # per-segment probability that one draw is product j
        return pref[:, cat.category[j]] * cat.popularity[j]

    pairs = []
    for k, (a, b, c) in enumerate(cat.pairs):
        pairs.append({
            "antecedent": f"P{a + 1:05d}", "consequent": f"P{b + 1:05d}",
            "antecedent_name": cat.names[a].as_py(), "consequent_name": cat.names[b].as_py(),
            "add_probability": c,
            "expected": tr.pair_expectations(pi(a), pi(b), c, extra, order_weights),
            "realized": tally.pair_realized(k),
        })

    segments = []
    for i, (s, e) in enumerate(zip(st.segments, expect)):
        segments.append({
            "name": s.name, "share": s.share,
            "bgnbd": {"r": s.r, "alpha": s.alpha, "a": s.a, "b": s.b},
            "gamma_gamma": {"p": s.p, "q": s.q, "gamma": s.gamma},
            "first_purchase_window": list(s.first_purchase),
            "extra_lines_per_order": s.extra_lines,
            "category_preferences": dict(zip(tr.CATEGORIES, s.category_weights)),
            "channel_probabilities": dict(zip(tr.CHANNELS, s.channel_probs)),
            "review_probability": s.review_prob, "mean_review_score": s.mean_review,
            "email_opens_per_year": s.opens_per_year, "email_click_probability": s.click_prob,
            "support_tickets_per_year": s.tickets_per_year, "income_median": s.income_median,
            "expected": e, "realized": tally.segment_realized(i),
        })

    doc = {
        "generator": "crmlens.datasets.generator", "schema_version": 1,
        "seed": seed, "format": fmt, "header_lang": header_lang, "messy": st.messy,
        "time_unit": tr.TIME_UNIT,
        "date_range": {
            "start": start, "end": end, "length_days": st.window_days,
            "observation_end": str(np.datetime64(st.end_min, "m").astype("M8[s]")),
            "note": "Times are naive local times at minute resolution; the window ends at "
                    "observation_end (exclusive). first_purchase_window is a fraction of the "
                    "window; the BG/NBD parameters are per day.",
        },
        "sizes": {
            "requested_n_transactions": n_transactions, "n_customers": n_customers,
            "n_products": cat.n, "n_categories": len(tr.CATEGORIES),
            "n_orders": int(tally.orders.sum()), "n_product_lines": tally.product_lines,
            "n_transaction_rows": tally.transaction_rows, "n_events": tally.event_rows,
        },
        "columns": {kind: dict(zip(h["en"], h["zh"])) for kind, h in HEADERS.items()},
        "categories": list(tr.CATEGORIES), "channels": list(tr.CHANNELS),
        "regions": dict(zip(tr.REGIONS, tr.REGION_WEIGHTS)),
        "products": {
            "popularity": "zipf within category", "zipf_exponent": tr.ZIPF_EXPONENT,
            "unit_price": "fixed per product: lognormal(log 5, 0.6) times a category price "
                          "level, in cents",
            "category_price_levels": dict(zip(tr.CATEGORIES, tr.CATEGORY_PRICE_LEVEL)),
        },
        "spend_model": tr.SPEND_NOTE,
        "review_model": "score = 1 + Binomial(4, (mean_review_score - 1) / 4), so its mean is "
                        "exactly mean_review_score",
        "segments": segments,
        "pairs": pairs,
        "pairs_note": "Rule A -> B over orders. expected: from the basket model's probabilities "
                      "with segments weighted by their expected orders; realized: counted over "
                      "every generated order (before messy-mode defects).",
        "defects": _messy_truth(tally.defects) if st.messy else None,
    }
    return doc


def _messy_truth(defects: dict[str, int]) -> dict:
    counts = {k: v for k, v in defects.items() if "." not in k}
    for prefix in ("date_format", "money_format"):
        counts[prefix + "s"] = {k.split(".", 1)[1]: v for k, v in defects.items()
                                if k.startswith(prefix + ".")}
    return {
        "rates": MESSY_RATES,
        "date_formats": {name: {"share": share, "example": ex} for name, share, ex in
                         DATE_FORMATS},
        "money_formats": {name: {"share": share, "example": ex} for name, share, ex in
                          MONEY_FORMATS},
        "counts": counts,
        "note": "counts are rows of the transactions file showing each defect, duplicate copies "
                "included (duplicate_rows counts the extra copies; anonymous_orders and "
                "cancellation_orders count orders). A cancellation returns part of some lines "
                "of an earlier order of the same customer, 1 minute to 14 days later, under "
                "that order's id prefixed with 'C' and with negative quantities; other order "
                "ids are those of the clean data set of the same seed. Discount lines have "
                "product_id 'D' and quantity -1, postage lines 'POST' and quantity 1. "
                "Epoch seconds read the naive local time as UTC. Dates d/m/y are always "
                "day-first. Zero prices are written plain ('0.00'). Money symbols are "
                "formatting only: every price is in the same currency. Only the transactions "
                "file has defects; customers and events are written as text.",
    }
