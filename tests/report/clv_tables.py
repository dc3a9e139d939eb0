"""CLV tables made by hand with plain SQL (the schema of docs in notes/clv_api.md), so the report
and segment tests do not depend on the code that writes them.

The current run ``"41"`` scores ten customers C1..C10 with CLV 100, 80, 50, 40, 30, 20, 10, 5,
3, 2 (total 340): tiers top = C1, C2 (20 % of customers, 180 / 340 = 52.9 % of value), high =
C3..C5 (30 %, 120 / 340 = 35.3 %), medium = C6..C8 (30 %, 35 / 340 = 10.3 %), low = C9, C10
(20 %, 5 / 340 = 1.5 %). An older, non-current run ``"40"`` scores C1 with CLV 999 999.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb

DDL = [
    """CREATE TABLE clv_runs (run_id VARCHAR, created_at TIMESTAMP, purchase_model VARCHAR,
        spend_model VARCHAR, unit VARCHAR, observation_end DATE, horizon INTEGER,
        period_length DOUBLE, discount_rate DOUBLE, margin DOUBLE, params JSON, se JSON,
        log_likelihood DOUBLE, aic DOUBLE, bic DOUBLE, n_customers BIGINT,
        one_time_share DOUBLE, diagnostics JSON, is_current BOOLEAN,
        spend_params JSON, spend_se JSON, step VARCHAR, fitted_in VARCHAR)""",
    """CREATE TABLE clv_scores (run_id VARCHAR, customer_id VARCHAR, frequency BIGINT,
        recency DOUBLE, "T" DOUBLE, monetary_value DOUBLE, p_alive DOUBLE,
        expected_purchases DOUBLE, expected_spend DOUBLE, clv DOUBLE, value_tier VARCHAR,
        value_rank BIGINT)""",
    """CREATE TABLE clv_validations (run_id VARCHAR, created_at TIMESTAMP, model VARCHAR,
        unit VARCHAR, calibration_end DATE, observation_end DATE, duration_holdout INTEGER,
        n_params INTEGER, log_likelihood DOUBLE, aic DOUBLE, bic DOUBLE, mae DOUBLE,
        rmse DOUBLE, correlation DOUBLE, aggregate_error DOUBLE, baseline_mae DOUBLE,
        baseline_rmse DOUBLE, baseline_aggregate_error DOUBLE, grade VARCHAR,
        converged BOOLEAN, error VARCHAR, is_best BOOLEAN)""",
    """CREATE TABLE clv_validation_curves (run_id VARCHAR, model VARCHAR, chart VARCHAR,
        x DOUBLE, label VARCHAR, expected DOUBLE, actual DOUBLE, baseline DOUBLE)""",
]

RUN = "41"
OLD_RUN = "40"
CLV = [100.0, 80.0, 50.0, 40.0, 30.0, 20.0, 10.0, 5.0, 3.0, 2.0]
P_ALIVE = [0.98, 0.91, 0.85, 0.72, 0.66, 0.51, 0.44, 0.30, 0.12, 0.03]
FREQUENCY = [9, 7, 4, 3, 3, 2, 1, 0, 0, 0]
TIERS = ["top"] * 2 + ["high"] * 3 + ["medium"] * 3 + ["low"] * 2
CUSTOMERS = [f"C{i}" for i in range(1, 11)]


def create_clv_tables(con: duckdb.DuckDBPyConnection, *, gg_suspect: bool = False,
                      validations: bool = True, current: bool = True,
                      selection: dict | None = None) -> None:
    """Create the four CLV tables and fill them (see the module docstring)."""
    for ddl in DDL:
        con.execute(ddl)
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    se = {"r": 0.0126, "alpha": 0.3838, "a": 0.1855, "b": 0.7045}
    notes = ["clv.note.gg_independence_suspect"] if gg_suspect else []
    diagnostics = {"gg_correlation": 0.42 if gg_suspect else 0.11,
                   "gg_independence_suspect": gg_suspect, "notes": notes,
                   "selection": {"method": "holdout", "best": "bgnbd"} if selection is None
                   else selection}
    row = ("bgnbd", "gamma_gamma", "weeks", date(2011, 12, 10), 52, 4.0, 0.01, 0.3,
           json.dumps(params), json.dumps(se), -9582.4, 19172.8, 19195.3, 10, 0.3,
           json.dumps(diagnostics))
    spend = (json.dumps({"p": 6.25, "q": 3.74, "v": 15.45}),
             json.dumps({"p": 1.19, "q": 0.28, "v": 4.16}), "clv.fit")
    insert = "INSERT INTO clv_runs VALUES (" + ", ".join(["?"] * 23) + ")"
    con.execute(insert, [RUN, datetime(2024, 1, 2), *row, current, *spend, RUN])
    con.execute(insert, [OLD_RUN, datetime(2024, 1, 1), *row, False, *spend, OLD_RUN])
    scores = [(RUN, c, f, 10.0 * f, 40.0, 20.0 + f, p, 2.0 * p, 25.0, v, tier, rank)
              for rank, (c, f, p, v, tier) in enumerate(
                  zip(CUSTOMERS, FREQUENCY, P_ALIVE, CLV, TIERS), start=1)]
    scores.append((OLD_RUN, "C1", 1, 1.0, 2.0, 3.0, 0.5, 1.0, 2.0, 999_999.0, "top", 1))
    con.executemany("INSERT INTO clv_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    scores)
    # As the store writes it: P(buys within the horizon), here half of P(alive).
    con.execute("ALTER TABLE clv_scores ADD COLUMN p_purchase DOUBLE")
    con.execute("UPDATE clv_scores SET p_purchase = p_alive / 2")
    if not validations:
        return
    base = (RUN, datetime(2024, 1, 2))
    split = ("weeks", date(2011, 6, 6), date(2011, 12, 10), 27)
    con.executemany(
        "INSERT INTO clv_validations VALUES (" + ", ".join(["?"] * 22) + ")",
        [(*base, "bgnbd", *split, 4, -9000.5, 18009.0, 18030.0, 0.612, 1.034, 0.61, -0.04,
          0.701, 1.2, 0.25, "better", True, None, True),
         (*base, "bgbb", *split, 4, -7000.25, 14008.5, 14029.0, 0.655, 1.102, 0.58, 0.08,
          0.701, 1.2, 0.25, "similar", True, None, False),
         (*base, "pareto_nbd", *split, 4, None, None, None, None, None, None, None,
          None, None, None, None, False, "did not converge", False)])
    curves = [(RUN, "bgnbd", "by_frequency", float(x), "7+" if x == 7 else str(x),
               0.2 * x + 0.1, 0.25 * x, 0.3 * x) for x in range(8)]
    curves += [(RUN, "bgnbd", "cumulative", float(p), f"2011-{p:02d}-01", 10.0 * p,
                9.5 * p, None) for p in range(1, 12)]
    con.executemany("INSERT INTO clv_validation_curves VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    curves)
