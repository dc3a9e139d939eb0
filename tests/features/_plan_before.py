# Frozen copy of src/crmlens/features/_sql.py before the bit-set plan (commit 026623e): the
# reference of test_plan_equivalence.py. Do not edit.
"""The SQL that computes customer features, as text (so ``--show-sql`` prints what runs).

The plan keeps the expensive count-distincts small and short-lived. Three aggregations read the
lines: to (customer, order, channel), to (customer, category), and the distinct (customer,
product) pairs counted per customer inside one statement (only the counts are kept). Every
other figure is a roll-up of those smaller tables: orders are counted as rows, not with a
distinct aggregate over the lines, and the order-level table is the only input of the window
that gives the gaps between orders.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

ORDERS_TABLE = "_crm_feat_orders"
PRODUCTS_TABLE = "_crm_feat_products"
MONEY_TABLE = "_crm_feat_money"
CATEGORIES_TABLE = "_crm_feat_categories"
TOP_N = 8  # share columns per family before the rest goes into "other"

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


def stage_sql(source: str, as_of: date, channels: Sequence[ShareColumn] = ()) -> list[str]:
    """The aggregations over the lines (the only statements that read them).

    ``channels`` are the channel share columns (found beforehand with :func:`discovery_sql`):
    their spend is summed per order here, so the order table needs no channel key.
    """
    d = date_literal(as_of)
    product = "line_type = 'product'"
    # CASE inside sum() rather than FILTER: measurably faster with many sums in one pass.
    channel_sums = "".join(
        f",\n       sum(CASE WHEN {_purchase()} AND {_value_test('channel', c, channels)} "
        f"THEN amount END) AS {c.name}" for c in channels)
    return [
        # Orders: one row per purchase order (its time only; order_id is just the key).
        f"""CREATE OR REPLACE TEMP TABLE {ORDERS_TABLE} AS
SELECT customer_id, min(ts) AS order_ts
FROM {scope(source, as_of)} AND {_purchase()}
GROUP BY customer_id, order_id""",
        # Money: straight to one row per customer, whatever the order.
        f"""CREATE OR REPLACE TEMP TABLE {MONEY_TABLE} AS
SELECT customer_id,
       sum(CASE WHEN {_purchase()} THEN amount END) AS gross,
       sum(CASE WHEN {product} THEN amount END) AS net,
       sum(CASE WHEN {product} AND is_return THEN amount END) AS returned,
       sum(CASE WHEN NOT ({product}) THEN amount END) AS non_product,
       sum(CASE WHEN {product} AND ts >= {d} - INTERVAL 90 DAY THEN amount END)
           AS net_last_90d,
       sum(CASE WHEN {product} AND ts >= {d} - INTERVAL 180 DAY
                     AND ts < {d} - INTERVAL 90 DAY THEN amount END) AS net_prev_90d{channel_sums}
FROM {scope(source, as_of)}
GROUP BY customer_id""",
        f"""CREATE OR REPLACE TEMP TABLE {CATEGORIES_TABLE} AS
SELECT customer_id, category, sum(amount) AS gross
FROM {scope(source, as_of)} AND {_purchase()}
GROUP BY customer_id, category""",
        # The count-distinct: the (customer, product) pairs exist only inside this statement;
        # what it keeps is one row per customer.
        f"""CREATE OR REPLACE TEMP TABLE {PRODUCTS_TABLE} AS
SELECT customer_id, count(*) AS n_products
FROM (SELECT DISTINCT customer_id, product_id
      FROM {scope(source, as_of)} AND {_purchase()} AND product_id IS NOT NULL)
GROUP BY customer_id""",
    ]


def discovery_sql(family: str, *, from_stage: bool, source: str = "", as_of: date | None = None,
                  limit: int = TOP_N + 1) -> str:
    """Values of a share family by spend, best first (one more than kept, to see if more)."""
    column = "channel" if family == "channel" else "category"
    if from_stage:  # categories only: channels are needed before the order stage
        rel = f"{CATEGORIES_TABLE} WHERE gross IS NOT NULL"
        spend = "gross"
    else:
        rel = f"{scope(source, as_of)} AND {_purchase()}"
        spend = "amount"
    null_filter = "" if family == "channel" else f" AND {column} IS NOT NULL"
    return (f"SELECT {column}, sum({spend}) AS spend FROM {rel}{null_filter} "
            f"GROUP BY {column} ORDER BY spend DESC, {column} NULLS LAST LIMIT {limit}")


def null_category_sql(*, from_stage: bool, source: str = "", as_of: date | None = None) -> str:
    """A row when some purchase line has no category (then there is an "other" share)."""
    rel = (f"{CATEGORIES_TABLE} WHERE gross IS NOT NULL" if from_stage
           else f"{scope(source, as_of)} AND {_purchase()}")
    return f"SELECT 1 FROM {rel} AND category IS NULL LIMIT 1"


def _value_test(column: str, col: ShareColumn, siblings: Sequence[ShareColumn]) -> str:
    if col.other:
        named = [c.value for c in siblings if not c.other and c.value is not None]
        has_null = any(c.value is None and not c.other for c in siblings)
        inside = f"{column} IN ({', '.join(literal(v) for v in named)})" if named else "false"
        test = f"NOT coalesce({inside}, {'true' if has_null else 'false'})"
        return test
    if col.value is None:
        return f"{column} IS NULL"
    return f"{column} = {literal(col.value)}"


def _counts(expr: str, values: range) -> str:
    return ", ".join(f"count(*) FILTER (WHERE {expr} = {v})" for v in values)


def _share_sums(column: str, cols: Sequence[ShareColumn]) -> list[str]:
    return [f"coalesce(sum(gross) FILTER (WHERE {_value_test(column, c, cols)}), 0) "
            f"AS {c.name}" for c in cols]


def final_sql(into: str, as_of: date, shares: Sequence[ShareColumn], side: SideTables) -> str:
    """One row per customer with a purchase order, from the two stage tables."""
    d = date_literal(as_of)
    channels = [c for c in shares if c.family == "channel"]
    categories = [c for c in shares if c.family == "category"]
    channel_sums = "".join(f",\n           {c.name}" for c in channels)
    category_sums = "".join(",\n           " + s for s in _share_sums("category", categories))
    # Channel sums live in money (m), category sums in assortment (a).
    share_select = "".join(
        f",\n       coalesce({'m' if c.family == 'channel' else 'a'}.{c.name}, 0)"
        f" / nullif(m.gross_spend, 0) AS {c.name}" for c in shares)

    ctes = [
        # One pass over the orders after the window: counts, first/last, gaps, and orders per
        # weekday and per hour as fixed-length lists whose first maximum is the mode (ties go
        # to the smaller value). Plain filtered counts: histogram() is several times slower.
        f"""timing AS (
    SELECT customer_id, count(*) AS frequency, min(ts) AS first_ts, max(ts) AS last_ts,
           avg(gap) AS interpurchase_mean_days, stddev_samp(gap) AS interpurchase_std_days,
           [{_counts("isodow(ts)", range(1, 8))}] AS by_weekday,
           [{_counts("hour(ts)", range(24))}] AS by_hour
    FROM (SELECT customer_id, order_ts AS ts,
                 epoch(order_ts - lag(order_ts) OVER (PARTITION BY customer_id
                                                      ORDER BY order_ts)) / 86400.0 AS gap
          FROM {ORDERS_TABLE})
    GROUP BY customer_id
)""",
        f"""money AS (
    SELECT customer_id, coalesce(gross, 0) AS gross_spend, coalesce(net, 0) AS net,
           0.0 - coalesce(returned, 0) AS returned_spend,
           coalesce(non_product, 0) AS non_product_spend,
           coalesce(net_last_90d, 0) AS spend_last_90d,
           coalesce(net_prev_90d, 0) AS spend_prev_90d{channel_sums}
    FROM {MONEY_TABLE}
)""",
        f"""assortment AS (
    SELECT customer_id, count(category) AS n_categories{category_sums}
    FROM {CATEGORIES_TABLE}
    GROUP BY customer_id
)""",
    ]
    joins = ["JOIN money m USING (customer_id)",
             "LEFT JOIN assortment a USING (customer_id)",
             f"LEFT JOIN {PRODUCTS_TABLE} p USING (customer_id)"]
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
       CAST(list_position(t.by_weekday, list_max(t.by_weekday)) AS INTEGER)
           AS preferred_weekday,
       CAST(list_position(t.by_hour, list_max(t.by_hour)) - 1 AS INTEGER) AS preferred_hour,
       CAST(coalesce(p.n_products, 0) AS INTEGER) AS n_products,
       CAST(coalesce(a.n_categories, 0) AS INTEGER) AS n_categories,
       {attr_select},
       {event_select}{share_select}"""
    return (f"CREATE OR REPLACE TEMP TABLE {into} AS\nWITH " + ",\n".join(ctes) + "\n"
            + select + "\nFROM timing t\n" + "\n".join(joins))


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
                     for name in (ORDERS_TABLE, MONEY_TABLE, CATEGORIES_TABLE, PRODUCTS_TABLE))
