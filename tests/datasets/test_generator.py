"""The synthetic data generator: files, reproducibility, and that the planted truth holds."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmlens.datasets import _truth as tr
from crmlens.datasets.generator import (
    DATE_FORMATS,
    HEADERS,
    MONEY_FORMATS,
    GeneratedDataset,
    generate_dataset,
)
from crmlens.errors import InputError

SEED = 7


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> GeneratedDataset:
    # Small chunks so every tally and id counter is exercised across chunk boundaries.
    return generate_dataset(tmp_path_factory.mktemp("clean"), n_customers=20_000, seed=SEED,
                            chunk_size=4096)


@pytest.fixture(scope="module")
def small_clean(tmp_path_factory) -> GeneratedDataset:
    return generate_dataset(tmp_path_factory.mktemp("small"), n_customers=4_000, seed=SEED)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> GeneratedDataset:
    return generate_dataset(tmp_path_factory.mktemp("messy"), n_customers=4_000, seed=SEED,
                            messy=True)


def truth(ds: GeneratedDataset) -> dict:
    return json.loads(ds.truth_json.read_text(encoding="utf-8"))


def sql(query: str, **files: Path) -> list[tuple]:
    for name, path in files.items():
        query = query.replace("{" + name + "}", f"'{path}'")
    return duckdb.sql(query).fetchall()


def one(query: str, **files: Path):
    return sql(query, **files)[0][0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- files and columns ----------------------------------------------------------------------


def test_clean_files_have_english_headers_and_typed_columns(clean):
    for kind in ("transactions", "customers", "events"):
        path = getattr(clean, kind)
        assert path.name == f"{kind}.parquet"
        assert pq.read_schema(path).names == list(HEADERS[kind]["en"])
    schema = pq.read_schema(clean.transactions)
    assert pa.types.is_timestamp(schema.field("order_date").type)
    assert pa.types.is_integer(schema.field("quantity").type)
    assert pa.types.is_floating(schema.field("unit_price").type)
    assert pq.read_metadata(clean.transactions).num_rows == clean.n_transactions
    assert pq.read_metadata(clean.customers).num_rows == clean.n_customers == 20_000
    assert pq.read_metadata(clean.truth_customers).num_rows == 20_000


def test_clean_values_look_like_a_crm_export(clean):
    t = clean.transactions
    row = sql("""
        SELECT count(*) FILTER (NOT regexp_full_match(order_id, 'O\\d{8}')),
               count(*) FILTER (NOT regexp_full_match(customer_id, 'C\\d{7}')),
               count(*) FILTER (NOT regexp_full_match(product_id, 'P\\d{5}')),
               count(*) FILTER (quantity < 1 OR unit_price <= 0),
               min(order_date), max(order_date), count(DISTINCT category),
               count(DISTINCT product_id), list_sort(list(DISTINCT channel))
        FROM {t}""", t=t)[0]
    assert row[:4] == (0, 0, 0, 0)
    assert row[4] >= datetime(2023, 1, 1) and row[5] < datetime(2025, 1, 1)
    assert row[6] == len(tr.CATEGORIES)
    assert row[7] > 1500  # most of the 2000 products sell
    assert row[8] == ["app", "store", "web"]
    # An order belongs to one customer at one time and lists each product once.
    assert one("""SELECT count(*) FROM (SELECT order_id FROM {t} GROUP BY order_id
                  HAVING count(DISTINCT customer_id) > 1 OR count(DISTINCT order_date) > 1)""",
               t=t) == 0
    assert one("SELECT count(*) - count(DISTINCT (order_id, product_id)) FROM {t}", t=t) == 0
    # Order ids are unique across chunks: as many ids as orders generated.
    assert one("SELECT count(DISTINCT order_id) FROM {t}", t=t) == clean.n_orders


def test_chinese_headers_in_csv(tmp_path):
    ds = generate_dataset(tmp_path, n_customers=300, seed=1, fmt="csv", header_lang="zh")
    for kind in ("transactions", "customers", "events"):
        path = getattr(ds, kind)
        assert path.suffix == ".csv"
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert header.replace('"', "").split(",") == list(HEADERS[kind]["zh"])
    assert HEADERS["transactions"]["zh"][0] == "订单号"
    rows = one("SELECT count(*) FROM read_csv({t}, header=true)", t=ds.transactions)
    assert rows == ds.n_transactions


def test_bad_options_are_input_errors(tmp_path):
    for kwargs in ({"fmt": "xlsx"}, {"header_lang": "fr"}, {"n_customers": 0},
                   {"n_products": 10}, {"start": "2024-01-01", "end": "2023-01-01"},
                   {"start": "yesterday"}):
        with pytest.raises(InputError):
            generate_dataset(tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


# --- reproducibility and streaming -------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path, small_clean):
    again = generate_dataset(tmp_path / "again", n_customers=4_000, seed=SEED)
    for kind in ("transactions", "customers", "events", "truth_json", "truth_customers"):
        assert digest(getattr(again, kind)) == digest(getattr(small_clean, kind)), kind
    other = generate_dataset(tmp_path / "other", n_customers=4_000, seed=SEED + 1)
    assert digest(other.transactions) != digest(small_clean.transactions)


def test_chunk_size_changes_row_groups_not_data(tmp_path, small_clean):
    calls = []
    chunked = generate_dataset(tmp_path, n_customers=4_000, seed=SEED, chunk_size=1,
                               progress=lambda done, total: calls.append((done, total)))
    # chunk_size rounds up to one 2048-customer block: two chunks, two row groups per file.
    assert calls == [(2048, 4000), (4000, 4000)]
    assert pq.read_metadata(chunked.transactions).num_row_groups == 2
    assert pq.read_metadata(small_clean.transactions).num_row_groups == 1
    for kind in ("transactions", "customers", "events", "truth_customers"):
        assert pq.read_table(getattr(chunked, kind)).equals(
            pq.read_table(getattr(small_clean, kind))), kind
    assert truth(chunked) == truth(small_clean)


@pytest.mark.parametrize("target, is_messy", [(15_000, False), (60_000, False), (40_000, True)])
def test_n_transactions_calibrates_the_row_count(tmp_path, target, is_messy):
    ds = generate_dataset(tmp_path, n_transactions=target, seed=3, messy=is_messy)
    assert abs(ds.n_transactions / target - 1) < 0.10
    assert pq.read_metadata(ds.transactions).num_rows == ds.n_transactions
    assert truth(ds)["sizes"]["requested_n_transactions"] == target


# --- the planted truth --------------------------------------------------------------------------


def test_bgnbd_closed_forms_match_a_simulation():
    rng = np.random.default_rng(0)
    seg = tr.SEGMENTS[0]
    lam = rng.gamma(seg.r, 1 / seg.alpha, 200_000)
    p = rng.beta(seg.a, seg.b, 200_000)
    horizon = 300.0
    n_window, death = rng.poisson(lam * horizon), rng.geometric(p)
    expected = tr.expected_repeat_purchases(seg, np.array([horizon]))[0]
    assert np.minimum(n_window, death).mean() == pytest.approx(expected, rel=0.02)
    assert (death > n_window).mean() == pytest.approx(tr.prob_alive(seg, horizon), abs=0.01)
    # 2F1(a, b; b; z) = (1 - z) ** -a
    assert tr.hyp2f1(0.7, 3.0, 3.0, np.array([0.9]))[0] == pytest.approx(0.1 ** -0.7)


def test_bgnbd_truth_is_recovered_per_segment(clean):
    doc = truth(clean)
    tc = pq.read_table(clean.truth_customers).to_pandas()
    end = datetime.fromisoformat(doc["date_range"]["observation_end"])
    horizon = (end - tc["first_purchase"]).dt.total_seconds() / 86400
    # Individual level: E[repeat purchases | lambda, p, T] = (1 - exp(-lambda p T)) / p.
    tc["individual"] = (1 - np.exp(-tc["lambda"] * tc["p"] * horizon)) / tc["p"]
    by_seg = tc.groupby("segment")
    for seg in doc["segments"]:
        g = by_seg.get_group(seg["name"])
        bg, expected = seg["bgnbd"], seg["expected"]
        assert len(g) / len(tc) == pytest.approx(seg["share"], abs=0.02)
        assert g["lambda"].mean() == pytest.approx(bg["r"] / bg["alpha"], rel=0.1)
        assert g["p"].mean() == pytest.approx(bg["a"] / (bg["a"] + bg["b"]), rel=0.1)
        repeats = g["n_orders"].mean() - 1
        assert repeats == pytest.approx(g["individual"].mean(), rel=0.06), seg["name"]
        assert repeats == pytest.approx(expected["repeat_purchases"], rel=0.1), seg["name"]
        assert g["alive_at_end"].mean() == pytest.approx(expected["share_alive_at_end"],
                                                         abs=0.04)
        assert seg["realized"]["repeat_purchases"] == pytest.approx(repeats)
    # The segments differ the way their names say.
    alive = by_seg["alive_at_end"].mean()
    assert alive["champions"] > alive["at_risk"] > alive["lost"]


def test_truth_customers_agree_with_the_transactions(clean):
    t, tc = clean.transactions, clean.truth_customers
    mismatches = one("""
        WITH o AS (SELECT customer_id, count(DISTINCT order_id) n, min(order_date) first_ts,
                          max(order_date) last_ts FROM {t} GROUP BY 1)
        SELECT count(*) FROM {tc} c LEFT JOIN o USING (customer_id)
        WHERE o.n IS DISTINCT FROM c.n_orders OR o.first_ts <> c.first_purchase
           OR (c.alive_at_end AND c.dropout_time IS NOT NULL)
           OR (NOT c.alive_at_end AND c.dropout_time IS DISTINCT FROM o.last_ts)""", t=t, tc=tc)
    assert mismatches == 0


def test_gamma_gamma_spend_per_segment(clean):
    doc = truth(clean)
    rows = sql("""
        WITH o AS (SELECT customer_id, order_id, sum(quantity * unit_price) v FROM {t}
                   GROUP BY ALL)
        SELECT c.segment, avg(v), corr(1 / c.nu, v) FROM o JOIN {tc} c USING (customer_id)
        GROUP BY 1""", t=clean.transactions, tc=clean.truth_customers)
    for name, mean_value, corr in rows:
        seg = next(s for s in doc["segments"] if s["name"] == name)
        gg = seg["gamma_gamma"]
        assert mean_value == pytest.approx(gg["p"] * gg["gamma"] / (gg["q"] - 1), rel=0.1)
        assert mean_value == pytest.approx(seg["realized"]["order_value"], rel=1e-6)
        assert corr > 0.3  # customers with a small nu spend more per order


def test_planted_pairs_have_the_recorded_lift(clean):
    doc = truth(clean)
    t = clean.transactions
    n_orders = one("SELECT count(DISTINCT order_id) FROM {t}", t=t)
    assert len(doc["pairs"]) == 10
    for pair in doc["pairs"]:
        a, b = pair["antecedent"], pair["consequent"]
        n_a, n_b, n_ab = sql(f"""
            WITH o AS (SELECT order_id, bool_or(product_id = '{a}') has_a,
                              bool_or(product_id = '{b}') has_b FROM {{t}} GROUP BY 1)
            SELECT count(*) FILTER (has_a), count(*) FILTER (has_b),
                   count(*) FILTER (has_a AND has_b) FROM o""", t=t)[0]
        real, expected = pair["realized"], pair["expected"]
        # Tallied chunk by chunk, the counts equal those of the whole file.
        assert (real["orders"], real["orders_with_antecedent"], real["orders_with_consequent"],
                real["orders_with_both"]) == (n_orders, n_a, n_b, n_ab)
        assert real["lift"] == pytest.approx(n_ab * n_orders / (n_a * n_b))
        assert real["lift"] > 5
        assert real["lift"] == pytest.approx(expected["lift"], rel=0.25)
        assert real["confidence"] == pytest.approx(expected["confidence"], abs=0.08)
        assert expected["confidence"] >= pair["add_probability"]


def test_review_scores_follow_the_segment(clean):
    doc = truth(clean)
    means = dict(sql("""
        SELECT c.segment, avg(e.value) FROM {e} e JOIN {tc} c USING (customer_id)
        WHERE e.event_type = 'review' GROUP BY 1""", e=clean.events, tc=clean.truth_customers))
    for seg in doc["segments"]:
        assert means[seg["name"]] == pytest.approx(seg["mean_review_score"], abs=0.1)
    assert means["champions"] > means["loyal"] > means["at_risk"] > means["lost"]
    assert one("SELECT count(*) FROM {e} WHERE event_type = 'review' AND value NOT IN "
               "(1, 2, 3, 4, 5)", e=clean.events) == 0
    assert {r[0] for r in sql("SELECT DISTINCT event_type FROM {e}", e=clean.events)} == {
        "review", "email_open", "email_click", "support_ticket"}


def test_truth_json_describes_the_model(clean):
    doc = truth(clean)
    assert doc["time_unit"] == "days" and doc["seed"] == SEED
    assert doc["messy"] is False and doc["defects"] is None
    assert [s["name"] for s in doc["segments"]] == ["champions", "loyal", "new", "at_risk",
                                                    "lost"]
    assert sum(s["share"] for s in doc["segments"]) == pytest.approx(1)
    for seg in doc["segments"]:
        assert set(seg["bgnbd"]) == {"r", "alpha", "a", "b"}
        assert set(seg["gamma_gamma"]) == {"p", "q", "gamma"}
        assert sum(seg["category_preferences"].values()) == pytest.approx(1)
    assert doc["sizes"]["n_transaction_rows"] == clean.n_transactions
    assert "approximation" in doc["spend_model"] or "quantity" in doc["spend_model"]
    # New customers first buy late in the window.
    new = next(s for s in doc["segments"] if s["name"] == "new")
    assert new["first_purchase_window"][0] > 0.5


# --- messy mode -------------------------------------------------------------------------------


DATE_PATTERNS = {
    "iso": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    "ymd_slash": r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}",
    "day_first": r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}",
    "chinese": r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}",
    "epoch_seconds": r"\d{9,10}",
}
MONEY_PATTERNS = {
    "plain": r"\d+\.\d{2}",
    "yen": r"¥\d{1,3}(,\d{3})*\.\d{2}",
    "dollar": r"\$\d{1,3}(,\d{3})*\.\d{2}",
    "euro": r"\d{1,3}(\.\d{3})*,\d{2} €",
    "fullwidth": r"[０-９]+\.[０-９]{2}",
}


def parse_date(text: str) -> datetime:
    if re.fullmatch(DATE_PATTERNS["epoch_seconds"], text):
        return datetime(1970, 1, 1) + timedelta(seconds=int(text))
    m = re.fullmatch(r"(\d{4})[-/年](\d+)[-/月](\d+)日? (\d+):(\d+)(?::00)?", text)
    if m:
        return datetime(*map(int, m.groups()))
    d, mo, y, h, mi = map(int, re.fullmatch(r"(\d+)/(\d+)/(\d{4}) (\d+):(\d+)", text).groups())
    return datetime(y, mo, d, h, mi)  # day-first


def parse_money(text: str) -> float:
    text = text.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if text.endswith("€"):
        text = text[:-1].strip().replace(".", "").replace(",", ".")
    return float(text.lstrip("¥$").replace(",", ""))


def test_messy_counts_in_truth_match_the_file(messy):
    counts = truth(messy)["defects"]["counts"]
    t = messy.transactions
    assert all(pa.types.is_string(f.type) for f in pq.read_schema(t))

    def count(where: str) -> int:
        return one(f"SELECT count(*) FROM {{t}} WHERE {where}", t=t)

    assert count("order_id LIKE 'C%'") == counts["cancellation_rows"] > 0
    assert one("SELECT count(DISTINCT order_id) FROM {t} WHERE order_id LIKE 'C%'", t=t) == \
        counts["cancellation_orders"] > 0
    assert count("customer_id IS NULL OR customer_id = ''") == counts[
        "empty_customer_id_rows"] > 0
    assert one("SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM {t})) FROM {t}",
               t=t) == counts["duplicate_rows"] > 0
    assert count("product_id = 'POST'") == counts["postage_rows"] > 0
    assert count("product_id = 'POST' AND "
                 "trim(product_name) NOT IN ('POSTAGE', 'ＰＯＳＴＡＧＥ')") == 0
    assert count("product_id = 'D' AND quantity = '-1'") == counts["discount_rows"] > 0
    assert count("product_id LIKE 'P%' AND order_id LIKE 'O%' AND unit_price = '0.00'") == \
        counts["zero_price_rows"] > 0
    assert count("order_date = 'not a date'") == counts["unparseable_date_rows"] > 0
    assert count("quantity = 'abc'") == counts["bad_quantity_rows"] > 0
    assert count("product_name <> trim(product_name)") == counts["name_whitespace_rows"] > 0
    assert count("regexp_matches(product_name, '[Ａ-Ｚａ-ｚ]')") == \
        counts["name_fullwidth_rows"] > 0
    assert count("customer_id IS NULL") / messy.n_transactions == pytest.approx(0.03, abs=0.015)
    for name, *_ in DATE_FORMATS:
        n = count(f"regexp_full_match(order_date, '{DATE_PATTERNS[name]}')")
        assert n == counts["date_formats"][name] > 0, name
    for name, *_ in MONEY_FORMATS:
        n = count(f"regexp_full_match(unit_price, '{MONEY_PATTERNS[name]}')")
        assert n == counts["money_formats"][name] > 0, name


def test_messy_cancellations_return_earlier_purchases(messy):
    rows = pq.read_table(messy.transactions).to_pylist()
    bought = {(r["order_id"], r["customer_id"], r["product_id"]): r for r in rows
              if not r["order_id"].startswith("C")}
    cancels = [r for r in rows if r["order_id"].startswith("C")]
    assert cancels
    for r in cancels:
        original = bought[(r["order_id"][1:], r["customer_id"], r["product_id"])]
        assert r["customer_id"] and int(r["quantity"]) < 0
        if original["quantity"] != "abc":
            assert -int(r["quantity"]) <= int(original["quantity"])
        if "not a date" not in (r["order_date"], original["order_date"]):
            assert parse_date(original["order_date"]) < parse_date(r["order_date"])


def test_day_first_dates_are_never_month_first(messy):
    rows = sql("""SELECT split_part(order_date, '/', 1)::INT, split_part(order_date, '/', 2)::INT
                  FROM {t} WHERE regexp_full_match(order_date, '\\d{1,2}/\\d{1,2}/\\d{4} .*')""",
               t=messy.transactions)
    assert all(month <= 12 for _, month in rows)
    assert any(day > 12 for day, _ in rows)  # some rows show the order


def test_messy_values_encode_the_clean_data(messy, small_clean):
    """Under the defects lie the same orders: every rendering parses back to the clean value."""
    clean = {(r["order_id"], r["product_id"]): r
             for r in pq.read_table(small_clean.transactions).to_pylist()}
    seen = set()
    for r in pq.read_table(messy.transactions).to_pylist():
        if r["order_id"].startswith("C") or r["product_id"] in ("POST", "D"):
            continue
        c = clean[(r["order_id"], r["product_id"])]
        seen.add((r["order_id"], r["product_id"]))
        if r["order_date"] != "not a date":
            assert parse_date(r["order_date"]) == c["order_date"]
        if r["quantity"] != "abc":
            assert int(r["quantity"]) == c["quantity"]
        if r["unit_price"] != "0.00":
            assert parse_money(r["unit_price"]) == pytest.approx(c["unit_price"])
        name = r["product_name"].strip().translate(
            {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})
        assert name == c["product_name"]
        assert r["customer_id"] in (None, c["customer_id"])
    assert seen == set(clean)


def test_messy_customers_and_events_are_text(messy):
    for path in (messy.customers, messy.events):
        assert all(pa.types.is_string(f.type) for f in pq.read_schema(path))
    assert truth(messy)["defects"]["rates"]["duplicate_row"] > 0


# --- scale ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_memory_does_not_grow_with_the_data(tmp_path):
    script = (
        "import resource, sys\n"
        "from crmlens.datasets.generator import generate_dataset\n"
        "generate_dataset(sys.argv[1], n_transactions=int(sys.argv[2]), chunk_size=20_000)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peak = {}
    for rows in (500_000, 3_000_000):
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / str(rows)), str(rows)],
                             capture_output=True, text=True, check=True,
                             env={"PYTHONPATH": str(Path(__file__).parents[2] / "src")})
        peak[rows] = int(out.stdout.split()[-1]) / 1024  # MB
        assert pq.read_metadata(tmp_path / str(rows) / "transactions.parquet").num_row_groups \
            >= rows // 400_000
    assert peak[3_000_000] < 1.25 * peak[500_000] + 50
