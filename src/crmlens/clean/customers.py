"""Cleaning of customer records: ids, contact details, demographics, labels, attributes."""

from __future__ import annotations

import duckdb

from crmlens.clean import expressions as ex
from crmlens.clean.accounting import (
    DUPS, attributes_json, build_duplicates, reason_sql, row_checks, with_duplicates,
    write_rejected,
)
from crmlens.clean.options import CleanOptions
from crmlens.ingest.roles import RoleMapping

STAGE = "_crm_stage_cu"

_MALE = ("m", "male", "man", "men", "boy", "男", "男性", "先生", "男士")
_FEMALE = ("f", "female", "woman", "women", "girl", "女", "女性", "女士", "小姐")
_FIELDS = ("customer_id", "name", "email", "phone", "gender_in", "birth_date", "age_in",
           "income", "region", "signup_date", "attributes", "labels")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(ex.lit(v) for v in values) + ")"


def clean_customers(
    con: duckdb.DuckDBPyConnection,
    *,
    raw: str,
    source_id: int,
    mapping: RoleMapping,
    columns: list[ex.RawColumn],
    options: CleanOptions,
) -> None:
    """Clean raw customer rows into ``customers`` and ``rejected``.

    One row per customer id: a later row for an id already loaded (from this or an earlier
    source) is rejected as ``duplicate_customer`` with its values kept in ``rejected``.
    """
    cols = {c.name: c for c in columns}
    r = {role: cols[name] for role, name in mapping.roles.items()}

    def get(role: str, build, default: str = "CAST(NULL AS VARCHAR)") -> str:
        return build(r[role]) if role in r else default

    plan = ex.StagePlan()

    def when(c: ex.RawColumn) -> str:
        return plan.timestamp(c, dayfirst=options.dayfirst)

    dups = build_duplicates(con, raw, columns, options.keep_duplicates)
    reasons = row_checks(columns, "__customer_id IS NULL")
    reasons += [
        ("__customer_id IS NULL", "'missing_customer_id'", ex.lit(r["customer_id"].name)),
        ("id_rank > 1 OR already_loaded", "'duplicate_customer'",
         "'customer ' || s.customer_id || ' already loaded'"),
    ]
    reason, detail = reason_sql(reasons)
    labels = [cols[name] for name in mapping.labels]
    labels_json = ("json_object(" + ", ".join(
        f"{ex.lit(c.name)}, coalesce(to_json({ex.boolean(c)}), to_json({ex.text(c)}))"
        for c in labels) + ")") if labels else "CAST(NULL AS JSON)"
    parsed = {
        "customer_id": get("customer_id", ex.identifier),
        "name": get("name", ex.text),
        "email": f"lower({get('email', ex.text)})",
        "phone": f"regexp_replace({get('phone', ex.text)}, '[^0-9+]', '', 'g')",
        "gender_in": f"lower({get('gender', ex.text)})",
        "birth_date": f"CAST({get('birth_date', when, 'CAST(NULL AS TIMESTAMP)')} AS DATE)",
        "age_in": get("age", plan.number, "CAST(NULL AS DOUBLE)"),
        "income": get("income", plan.number, "CAST(NULL AS DOUBLE)"),
        "region": get("region", ex.text),
        "signup_date": get("signup_date", when, "CAST(NULL AS TIMESTAMP)"),
        "attributes": attributes_json(columns, mapping.mapped_columns()),
        "labels": labels_json,
    }
    inner = ", ".join(f"{expr} AS __{name}" for name, expr in parsed.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {STAGE} AS
        SELECT _row, __first_row AS first_row, {', '.join(f'__{n} AS {n}' for n in _FIELDS)},
               {reason} AS reason
        FROM (
            SELECT *,
                row_number() OVER (PARTITION BY __customer_id ORDER BY _row) AS id_rank,
                __customer_id IN (SELECT customer_id FROM customers) AS already_loaded
            FROM (SELECT *, {inner} FROM {plan.source(with_duplicates(raw, dups > 0))})
        )
    """)
    now = options.now.strftime("%Y-%m-%d")
    age = ("coalesce(age_in, CASE WHEN birth_date IS NOT NULL THEN "
           f"date_diff('day', birth_date, DATE '{now}') / 365.2425 END)")
    gender = (f"CASE WHEN gender_in IN {_in(_MALE)} THEN 'male' "
              f"WHEN gender_in IN {_in(_FEMALE)} THEN 'female' "
              "WHEN gender_in IS NOT NULL THEN 'other' END")
    flags = ("list_filter(["
             "CASE WHEN email IS NOT NULL AND NOT regexp_matches(email, "
             "'^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$') THEN 'invalid_email' END, "
             "CASE WHEN phone IS NOT NULL AND NOT (length(regexp_replace(phone, '[^0-9]', '', 'g'))"
             " BETWEEN 6 AND 15) THEN 'invalid_phone' END, "
             f"CASE WHEN {age} < 0 OR {age} > 120 THEN 'implausible_age' END"
             "], lambda f: f IS NOT NULL)")
    con.execute(f"""
        INSERT INTO customers
        SELECT {source_id}, _row, customer_id, name, email, nullif(phone, ''), {gender},
               birth_date, {age}, income, region, signup_date, attributes, labels, {flags}
        FROM {STAGE} WHERE reason IS NULL
    """)
    write_rejected(con, stage=STAGE, raw=raw, source_id=source_id, kind="customers",
                   columns=columns, detail_sql=detail)
    con.execute(f"DROP TABLE {STAGE}; DROP TABLE IF EXISTS {DUPS}")
