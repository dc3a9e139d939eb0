"""The SQL that computes customer features, as text (so ``--show-sql`` prints what runs).

Four aggregations read the lines, in this order, and none builds a table of (customer,
product) or (customer, category) pairs:

1. ``values``: one pass with grouping sets gives the spend per channel, per category and per
   product id (one row per value). The share columns and the dense id dictionaries of
   products and categories come from it.
2. ``distinct``: the distinct products and categories of each customer as bit sets over those
   ids (``bitstring_agg``; 2,000 products take 250 bytes a customer) counted with
   ``bit_count``: one small row per customer instead of a hash table of every pair. It runs
   first, while no other stage table holds memory. When the bit sets would not fit
   ``BITSET_BUDGET_BYTES`` the customers are split into hash parts (a pass each); with too
   many ids it falls back to ``count(DISTINCT ...)``.
3. ``orders``: one row per customer x purchase order (its time). It is rolled up at once into
   ``timing`` (one row per customer: counts, first/last, the window for the gaps between
   orders, the weekday and hour modes) and dropped.
4. ``money``: every sum, straight to one row per customer, the channel and category spend
   included (CASE sums over a small integer key per line).

The final statement joins the three per-customer tables (and the side tables).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

ORDERS_TABLE = "_crm_feat_orders"
MONEY_TABLE = "_crm_feat_money"
VALUES_TABLE = "_crm_feat_values"
PRODUCT_IDS_TABLE = "_crm_feat_product_ids"
CATEGORY_IDS_TABLE = "_crm_feat_category_ids"
DISTINCT_TABLE = "_crm_feat_distinct"
TIMING_TABLE = "_crm_feat_timing"
TOP_N = 8  # share columns per family before the rest goes into "other"

# Bit sets of the distinct products and categories: at most this many bytes of them in one pass
# (more: the customers are split into hash parts), at most MAX_PARTS passes (more: plain
# count(DISTINCT)). 10M lines, 650k customers, 2,000 products: about 230 MB, one pass.
BITSET_BUDGET_BYTES = 320 * 2**20
BITSET_OVERHEAD_BYTES = 48  # per customer and bit set: the aggregate state and string header
MAX_PARTS = 4

# Event types whose value is a review score (matched case-insensitively, anywhere in the text).
REVIEW_PATTERN = "review|rating|score|satisf|nps|csat|评分|评价|满意"

# Columns of the transactions relation the features read.
REQUIRED_COLUMNS = ("order_id", "customer_id", "ts", "product_id", "category", "quantity",
                    "amount", "channel", "is_return", "line_type")

# SQL type of each fixed feature column in the stored table.
STATIC_TYPES: dict[str, str] = {
    "recency_days": "INTEGER", "frequency": "INTEGER", "monetary": "DOUBLE",
    "avg_order_value": "DOUBLE", "gross_spend": "DOUBLE", "returned_spend": "DOUBLE",
    "non_product_spend": "DOUBLE", "return_rate": "DOUBLE", "tenure_days": "INTEGER",
    "interpurchase_mean_days": "DOUBLE", "interpurchase_std_days": "DOUBLE",
    "spend_last_90d": "DOUBLE", "spend_prev_90d": "DOUBLE", "spend_trend": "DOUBLE",
    "preferred_weekday": "INTEGER", "preferred_hour": "INTEGER", "n_products": "INTEGER",
    "n_categories": "INTEGER", "age": "DOUBLE", "gender": "VARCHAR", "income": "DOUBLE",
    "region": "VARCHAR", "signup_tenure_days": "INTEGER", "satisfaction": "DOUBLE",
    "n_reviews": "INTEGER",
}
RFM_COLUMNS = ("recency_days", "frequency", "monetary")


def literal(value: str) -> str:
    """A SQL string literal (values from the data are quoted, never pasted)."""
    return "'" + value.replace("'", "''") + "'"


def date_literal(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def slugify(value: str) -> str:
    """Stable snake_case for a value: ASCII letters and digits, else a short hash."""
    text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not slug or len(slug) < len(value.strip()) / 3:
        # Mostly non-Latin text (e.g. 服装): a hash keeps the name stable and ASCII.
        slug = (slug + "_" if slug else "v") + hashlib.md5(value.encode()).hexdigest()[:8]
    return slug


@dataclass(frozen=True)
class ShareColumn:
    """One dynamic share column: its name, family and the data value it stands for."""

    name: str
    family: str  # "channel" or "category"
    value: str | None  # None: the empty value (channel 'unknown'); see ``other``
    other: bool = False  # the rest after the top values


def share_columns(family: str, values: Sequence[str | None], *, more: bool) -> list[ShareColumn]:
    """Columns for the top ``values`` (by spend, best first) and, if ``more``, "other"."""
    out: list[ShareColumn] = []
    used = {"other"}
    for value in values:
        base = "unknown" if value is None else slugify(value)
        slug, k = base, 2
        while slug in used:
            slug, k = f"{base}_{k}", k + 1
        used.add(slug)
        out.append(ShareColumn(f"share_{family}_{slug}", family, value))
    if more:
        out.append(ShareColumn(f"share_{family}_other", family, None, other=True))
    return out


@dataclass(frozen=True)
class SideTables:
    """Optional customer attributes and events relations, with the columns they have."""

    customers: str | None = None
    customer_columns: frozenset[str] = field(default_factory=frozenset)
    events: str | None = None


def _purchase(prefix: str = "") -> str:
    return (f"(NOT {prefix}is_return AND {prefix}line_type = 'product' "
            f"AND {prefix}quantity > 0)")


def scope(source: str, as_of: date) -> str:
    """The lines the features see: identified customers, strictly before the as-of date."""
    return f"{source} WHERE customer_id IS NOT NULL AND ts < {date_literal(as_of)}"


def values_sql(source: str, as_of: date) -> str:
    """Spend per channel, per category and per product id of the purchase lines (one pass).

    ``family`` is 'channel', 'category' or 'product'; ``value`` the data value (NULL kept).
    """
    return f"""CREATE OR REPLACE TEMP TABLE {VALUES_TABLE} AS
SELECT CASE grouping(channel, category, product_id) WHEN 3 THEN 'channel'
            WHEN 5 THEN 'category' ELSE 'product' END AS family,
       CASE grouping(channel, category, product_id) WHEN 3 THEN channel
            WHEN 5 THEN category ELSE product_id END AS value,
       sum(amount) AS spend
FROM {scope(source, as_of)} AND {_purchase()}
GROUP BY GROUPING SETS ((channel), (category), (product_id))"""


def discovery_sql(family: str, *, limit: int = TOP_N + 1) -> str:
    """Values of a share family by spend, best first (one more than kept, to see if more)."""
    # A category counts when its spend is known (as summed over the customers' lines).
    extra = "" if family == "channel" else " AND value IS NOT NULL AND spend IS NOT NULL"
    return (f"SELECT value, spend FROM {VALUES_TABLE} WHERE family = {literal(family)}{extra} "
            f"ORDER BY spend DESC, value NULLS LAST LIMIT {limit}")


def null_category_sql() -> str:
    """A row when some purchase line has no category (then there is an "other" share)."""
    return (f"SELECT 1 FROM {VALUES_TABLE} WHERE family = 'category' AND value IS NULL "
            "AND spend IS NOT NULL LIMIT 1")


def id_counts_sql() -> str:
    """Number of distinct (non-empty) product ids and categories of the purchase lines."""
    return (f"SELECT count(value) FILTER (WHERE family = 'product'), "
            f"count(value) FILTER (WHERE family = 'category') FROM {VALUES_TABLE}")


def customers_sql(source: str, as_of: date) -> str:
    """About how many customers have lines in scope (for the bit-set budget; one quick scan)."""
    return f"SELECT approx_count_distinct(customer_id) FROM {scope(source, as_of)}"


def orders_sql(source: str, as_of: date) -> str:
    """One row per customer x purchase order: its time (order_id is just the key)."""
    return f"""CREATE OR REPLACE TEMP TABLE {ORDERS_TABLE} AS
SELECT customer_id, min(ts) AS order_ts
FROM {scope(source, as_of)} AND {_purchase()}
GROUP BY customer_id, order_id"""


def money_sql(source: str, as_of: date, shares: Sequence[ShareColumn] = ()) -> str:
    """Every sum, straight to one row per customer (whatever the order), in one pass.

    ``shares`` are the share columns (from :func:`discovery_sql`): their spend is summed here
    too, so no (customer, channel) or (customer, category) table exists.
    """
    d = date_literal(as_of)
    product = "line_type = 'product'"
    families = [(f, [c for c in shares if c.family == f]) for f in ("channel", "category")]
    keys = "".join(f", {_share_key(f, cols)} AS _{f}_key" for f, cols in families if cols)
    # Each share value becomes a small integer once per line (one CASE per family); the sums
    # then compare integers, not strings: measurably faster than a string test per sum.
    # CASE inside sum() rather than FILTER: measurably faster with many sums in one pass.
    share_sums = "".join(
        f",\n       sum(CASE WHEN _purchase AND _{f}_key = {i} THEN amount END) AS {c.name}"
        for f, cols in families for i, c in enumerate(cols))
    return f"""CREATE OR REPLACE TEMP TABLE {MONEY_TABLE} AS
SELECT customer_id,
       sum(CASE WHEN _purchase THEN amount END) AS gross,
       sum(CASE WHEN {product} THEN amount END) AS net,
       sum(CASE WHEN {product} AND is_return THEN amount END) AS returned,
       sum(CASE WHEN NOT ({product}) THEN amount END) AS non_product,
       sum(CASE WHEN {product} AND ts >= {d} - INTERVAL 90 DAY THEN amount END)
           AS net_last_90d,
       sum(CASE WHEN {product} AND ts >= {d} - INTERVAL 180 DAY
                     AND ts < {d} - INTERVAL 90 DAY THEN amount END) AS net_prev_90d{share_sums}
FROM (SELECT customer_id, ts, amount, line_type, is_return, {_purchase()} AS _purchase{keys}
      FROM {scope(source, as_of)})
GROUP BY customer_id"""


def _share_key(column: str, cols: Sequence[ShareColumn]) -> str:
    """The index in ``cols`` of a line's share column (NULL: none), as one CASE.

    An empty value has its own column when there is one (channel 'unknown'), else it goes to
    "other", as does every value not named; with no "other" column such lines get NULL.
    """
    whens = [f"WHEN {column} IS NULL THEN {i}" for i, c in enumerate(cols)
             if c.value is None and not c.other]
    whens += [f"WHEN {column} = {literal(c.value)} THEN {i}" for i, c in enumerate(cols)
              if c.value is not None]
    other = next((i for i, c in enumerate(cols) if c.other), None)
    return f"CASE {' '.join(whens)}{'' if other is None else f' ELSE {other}'} END"


def distinct_parts(n_products: int, n_categories: int, n_customers: int) -> int:
    """Passes for the bit sets of distinct products and categories; 0: use count(DISTINCT)."""
    per_customer = sum((n + 7) // 8 + BITSET_OVERHEAD_BYTES for n in (n_products, n_categories)
                       if n)
    parts = max(1, -(-per_customer * n_customers // BITSET_BUDGET_BYTES))
    return parts if parts <= MAX_PARTS else 0


def _bit_count(ids: str, n: int) -> str:
    if not n:
        return "0"
    return f"coalesce(bit_count(bitstring_agg({ids}.idx, 0, {n - 1})), 0)"


def distinct_sql(source: str, as_of: date, *, n_products: int, n_categories: int,
                 parts: int) -> list[str]:
    """Distinct products and categories per customer's purchase lines, into DISTINCT_TABLE.

    ``parts`` from :func:`distinct_parts`: with 0, ``count(DISTINCT ...)`` (one hash table of
    every (customer, value) pair); else bit sets over dense ids, in ``parts`` hash parts of the
    customers.
    """
    lines = f"{scope(source, as_of)} AND {_purchase()}"
    if not parts:
        return [f"""CREATE OR REPLACE TEMP TABLE {DISTINCT_TABLE} AS
SELECT customer_id, count(DISTINCT product_id) AS n_products,
       count(DISTINCT category) AS n_categories
FROM {lines}
GROUP BY customer_id"""]
    out = [
        f"""CREATE OR REPLACE TEMP TABLE {PRODUCT_IDS_TABLE} AS
SELECT value AS product_id, CAST(row_number() OVER (ORDER BY value) - 1 AS INTEGER) AS idx
FROM {VALUES_TABLE} WHERE family = 'product' AND value IS NOT NULL""",
        f"""CREATE OR REPLACE TEMP TABLE {CATEGORY_IDS_TABLE} AS
SELECT value AS category, CAST(row_number() OVER (ORDER BY value) - 1 AS INTEGER) AS idx
FROM {VALUES_TABLE} WHERE family = 'category' AND value IS NOT NULL""",
        f"CREATE OR REPLACE TEMP TABLE {DISTINCT_TABLE} (customer_id VARCHAR, "
        "n_products BIGINT, n_categories BIGINT)",
    ]
    for part in range(parts):
        where = f" AND hash(customer_id) % {parts} = {part}" if parts > 1 else ""
        out.append(f"""INSERT INTO {DISTINCT_TABLE}
SELECT l.customer_id, {_bit_count('p', n_products)},
       {_bit_count('c', n_categories)}
FROM (SELECT customer_id, product_id, category FROM {lines}{where}) l
LEFT JOIN {PRODUCT_IDS_TABLE} p USING (product_id)
LEFT JOIN {CATEGORY_IDS_TABLE} c USING (category)
GROUP BY l.customer_id""")
    return out


def _counts(expr: str, values: range) -> str:
    return ", ".join(f"count(*) FILTER (WHERE {expr} = {v})" for v in values)


def timing_sql() -> list[str]:
    """Per customer from the order table, into TIMING_TABLE; the order table is dropped.

    One pass over the orders after the window: counts, first/last, gaps, and orders per
    weekday and per hour as fixed-length lists whose first maximum is the mode (ties go to the
    smaller value). Plain filtered counts over the weekday and hour computed once per order:
    histogram() is several times slower. A table of its own, so that the order table is gone
    before the final join.
    """
    return [f"""CREATE OR REPLACE TEMP TABLE {TIMING_TABLE} AS
SELECT customer_id, frequency, first_ts, last_ts, interpurchase_mean_days,
       interpurchase_std_days,
       CAST(list_position(by_weekday, list_max(by_weekday)) AS INTEGER) AS preferred_weekday,
       CAST(list_position(by_hour, list_max(by_hour)) - 1 AS INTEGER) AS preferred_hour
FROM (SELECT customer_id, count(*) AS frequency, min(ts) AS first_ts, max(ts) AS last_ts,
             avg(gap) AS interpurchase_mean_days, stddev_samp(gap) AS interpurchase_std_days,
             [{_counts("weekday", range(1, 8))}] AS by_weekday,
             [{_counts("hour", range(24))}] AS by_hour
      FROM (SELECT customer_id, order_ts AS ts, CAST(isodow(order_ts) AS TINYINT) AS weekday,
                   CAST(hour(order_ts) AS TINYINT) AS hour,
                   epoch(order_ts - lag(order_ts) OVER (PARTITION BY customer_id
                                                        ORDER BY order_ts)) / 86400.0 AS gap
            FROM {ORDERS_TABLE})
      GROUP BY customer_id)""", f"DROP TABLE {ORDERS_TABLE}"]


def final_sql(into: str, as_of: date, shares: Sequence[ShareColumn], side: SideTables) -> str:
    """One row per customer with a purchase order, from the customer-level stage tables."""
    d = date_literal(as_of)
    share_sums = "".join(f",\n           {c.name}" for c in shares)
    share_select = "".join(
        f",\n       coalesce(m.{c.name}, 0) / nullif(m.gross_spend, 0) AS {c.name}"
        for c in shares)

    ctes = [
        f"""money AS (
    SELECT customer_id, coalesce(gross, 0) AS gross_spend, coalesce(net, 0) AS net,
           0.0 - coalesce(returned, 0) AS returned_spend,
           coalesce(non_product, 0) AS non_product_spend,
           coalesce(net_last_90d, 0) AS spend_last_90d,
           coalesce(net_prev_90d, 0) AS spend_prev_90d{share_sums}
    FROM {MONEY_TABLE}
)""",
    ]
    joins = ["JOIN money m USING (customer_id)",
             f"LEFT JOIN {DISTINCT_TABLE} x USING (customer_id)"]
    if side.customers:
        cc = side.customer_columns
        birth = (f"CASE WHEN birth_date < {d} THEN date_sub('year', birth_date, {d}) END"
                 if "birth_date" in cc else "NULL")
        age = f"coalesce({birth}, {'age' if 'age' in cc else 'NULL'})"
        signup = (f"CASE WHEN CAST(signup_date AS DATE) < {d} "
                  f"THEN date_diff('day', CAST(signup_date AS DATE), {d}) END"
                  if "signup_date" in cc else "NULL")
        pick = {name: name if name in cc else "NULL" for name in ("gender", "income", "region")}
        ctes.append(f"""attrs AS (
    SELECT DISTINCT ON (customer_id) customer_id, CAST({age} AS DOUBLE) AS age,
           CAST({pick['gender']} AS VARCHAR) AS gender,
           CAST({pick['income']} AS DOUBLE) AS income,
           CAST({pick['region']} AS VARCHAR) AS region,
           CAST({signup} AS INTEGER) AS signup_tenure_days
    FROM {side.customers}
    WHERE customer_id IS NOT NULL
    ORDER BY customer_id
)""")
        joins.append("LEFT JOIN attrs c USING (customer_id)")
        attr_select = ("c.age, c.gender, c.income, c.region, c.signup_tenure_days")
    else:
        attr_select = ("CAST(NULL AS DOUBLE) AS age, CAST(NULL AS VARCHAR) AS gender, "
                       "CAST(NULL AS DOUBLE) AS income, CAST(NULL AS VARCHAR) AS region, "
                       "CAST(NULL AS INTEGER) AS signup_tenure_days")
    if side.events:
        ctes.append(f"""reviews AS (
    SELECT customer_id, avg(value) AS satisfaction, count(*) AS n_reviews
    FROM {side.events}
    WHERE ts < {d} AND value IS NOT NULL
      AND regexp_matches(lower(event_type), {literal(REVIEW_PATTERN)})
    GROUP BY customer_id
)""")
        joins.append("LEFT JOIN reviews r USING (customer_id)")
        event_select = ("r.satisfaction, CAST(coalesce(r.n_reviews, 0) AS INTEGER) "
                        "AS n_reviews")
    else:
        event_select = "CAST(NULL AS DOUBLE) AS satisfaction, CAST(NULL AS INTEGER) AS n_reviews"

    select = f"""SELECT {d} AS as_of, t.customer_id,
       CAST(date_diff('day', CAST(t.last_ts AS DATE), {d}) AS INTEGER) AS recency_days,
       CAST(t.frequency AS INTEGER) AS frequency,
       m.net AS monetary,
       m.net / t.frequency AS avg_order_value,
       m.gross_spend, m.returned_spend, m.non_product_spend,
       CASE WHEN m.gross_spend > 0
            THEN least(m.returned_spend / m.gross_spend, 1.0) END AS return_rate,
       CAST(date_diff('day', CAST(t.first_ts AS DATE), {d}) AS INTEGER) AS tenure_days,
       t.interpurchase_mean_days, t.interpurchase_std_days,
       m.spend_last_90d, m.spend_prev_90d,
       CASE WHEN abs(m.spend_last_90d) + abs(m.spend_prev_90d) = 0 THEN 0.0
            ELSE (m.spend_last_90d - m.spend_prev_90d)
                 / (abs(m.spend_last_90d) + abs(m.spend_prev_90d)) END AS spend_trend,
       t.preferred_weekday, t.preferred_hour,
       CAST(coalesce(x.n_products, 0) AS INTEGER) AS n_products,
       CAST(coalesce(x.n_categories, 0) AS INTEGER) AS n_categories,
       {attr_select},
       {event_select}{share_select}"""
    return (f"CREATE OR REPLACE TEMP TABLE {into} AS\nWITH " + ",\n".join(ctes) + "\n"
            + select + f"\nFROM {TIMING_TABLE} t\n" + "\n".join(joins))


def rfm_sql(into: str, source: str, as_of: date) -> str:
    """Only recency_days, frequency and monetary (the RFM core), in one statement."""
    d = date_literal(as_of)
    return f"""CREATE OR REPLACE TEMP TABLE {into} AS
SELECT {d} AS as_of, customer_id,
       CAST(date_diff('day', CAST(max(ts) AS DATE), {d}) AS INTEGER) AS recency_days,
       CAST(count(ts) AS INTEGER) AS frequency,
       coalesce(sum(net), 0) AS monetary
FROM (SELECT customer_id, order_id,
             min(ts) FILTER (WHERE {_purchase()}) AS ts,
             sum(amount) FILTER (WHERE line_type = 'product') AS net
      FROM {scope(source, as_of)}
      GROUP BY customer_id, order_id)
GROUP BY customer_id
HAVING count(ts) > 0"""


def cleanup_sql() -> str:
    return "; ".join(f"DROP TABLE IF EXISTS {name}"
                     for name in (ORDERS_TABLE, MONEY_TABLE, VALUES_TABLE, PRODUCT_IDS_TABLE,
                                  CATEGORY_IDS_TABLE, DISTINCT_TABLE, TIMING_TABLE))
