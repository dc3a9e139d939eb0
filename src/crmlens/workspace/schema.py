"""Tables of the workspace store and their columns.

The clean tables are the contract between stages: later analyses read exactly these columns.
Times are naive ``TIMESTAMP`` in the data's own local time; money is ``DOUBLE`` in the data's
currency; ``amount`` is signed (returns and cancellations are negative).
"""

from __future__ import annotations

# Kinds of source table a user can ingest.
KINDS = ("transactions", "customers", "events")

DDL: dict[str, str] = {
    "runs": """
        CREATE TABLE IF NOT EXISTS runs (
            run_id        INTEGER PRIMARY KEY,
            step          VARCHAR NOT NULL,
            status        VARCHAR NOT NULL,
            started_at    TIMESTAMP NOT NULL,
            finished_at   TIMESTAMP,
            seconds       DOUBLE,
            params        JSON,
            inputs        JSON,
            row_counts    JSON,
            version       VARCHAR
        )""",
    "sources": """
        CREATE TABLE IF NOT EXISTS sources (
            source_id     INTEGER PRIMARY KEY,
            kind          VARCHAR NOT NULL,
            name          VARCHAR NOT NULL,
            location      VARCHAR NOT NULL,
            format        VARCHAR NOT NULL,
            fingerprint   VARCHAR,
            options       JSON,
            mapping       JSON,
            columns       JSON,
            rows_read     BIGINT NOT NULL,
            rows_loaded   BIGINT NOT NULL,
            rows_rejected BIGINT NOT NULL,
            ingested_at   TIMESTAMP NOT NULL,
            run_id        INTEGER
        )""",
    "rejected": """
        CREATE TABLE IF NOT EXISTS rejected (
            source_id  INTEGER NOT NULL,
            kind       VARCHAR NOT NULL,
            source_row BIGINT NOT NULL,
            reason     VARCHAR NOT NULL,
            detail     VARCHAR,
            original   JSON
        )""",
    "transactions": """
        CREATE TABLE IF NOT EXISTS transactions (
            source_id          INTEGER NOT NULL,
            source_row         BIGINT NOT NULL,
            order_id           VARCHAR NOT NULL,
            customer_id        VARCHAR,
            ts                 TIMESTAMP NOT NULL,
            product_id         VARCHAR,
            product_name       VARCHAR,
            category           VARCHAR,
            quantity           DOUBLE NOT NULL,
            unit_price         DOUBLE,
            amount             DOUBLE NOT NULL,
            channel            VARCHAR,
            region             VARCHAR,
            is_return          BOOLEAN NOT NULL,
            line_type          VARCHAR NOT NULL,
            return_of_order_id VARCHAR,
            flags              VARCHAR[] NOT NULL
        )""",
    "customers": """
        CREATE TABLE IF NOT EXISTS customers (
            source_id    INTEGER NOT NULL,
            source_row   BIGINT NOT NULL,
            customer_id  VARCHAR NOT NULL,
            name         VARCHAR,
            email        VARCHAR,
            phone        VARCHAR,
            gender       VARCHAR,
            birth_date   DATE,
            age          DOUBLE,
            income       DOUBLE,
            region       VARCHAR,
            signup_date  TIMESTAMP,
            attributes   JSON,
            labels       JSON,
            flags        VARCHAR[] NOT NULL
        )""",
    "events": """
        CREATE TABLE IF NOT EXISTS events (
            source_id    INTEGER NOT NULL,
            source_row   BIGINT NOT NULL,
            customer_id  VARCHAR NOT NULL,
            ts           TIMESTAMP NOT NULL,
            event_type   VARCHAR,
            value        DOUBLE,
            channel      VARCHAR,
            order_id     VARCHAR,
            product_id   VARCHAR,
            text         VARCHAR,
            attributes   JSON,
            flags        VARCHAR[] NOT NULL
        )""",
    # A segmentation (RFM, clustering, rule-based ...): one row per run, its method, parameters
    # and as-of date; run_id is the runs table's id of the step that made it.
    "segment_runs": """
        CREATE TABLE IF NOT EXISTS segment_runs (
            run_id       INTEGER PRIMARY KEY,
            name         VARCHAR NOT NULL,
            method       VARCHAR NOT NULL,
            as_of        DATE,
            params       JSON,
            n_segments   INTEGER NOT NULL,
            n_customers  BIGINT NOT NULL,
            created_at   TIMESTAMP NOT NULL,
            notes        JSON
        )""",
    # Membership: one row per customer and run (segments within a run are mutually exclusive).
    "segments": """
        CREATE TABLE IF NOT EXISTS segments (
            run_id       INTEGER NOT NULL,
            customer_id  VARCHAR NOT NULL,
            segment      VARCHAR NOT NULL
        )""",
    # Profile (persona) of each segment of a run: figures and texts as JSON.
    "segment_profiles": """
        CREATE TABLE IF NOT EXISTS segment_profiles (
            run_id       INTEGER NOT NULL,
            segment      VARCHAR NOT NULL,
            position     INTEGER NOT NULL,
            n_customers  BIGINT NOT NULL,
            profile      JSON NOT NULL
        )""",
}

# Values of transactions.line_type. Only 'product' lines are merchandise; the others are kept
# (they are real money) but left out of product analyses.
LINE_TYPES = (
    "product", "shipping", "fee", "discount", "adjustment", "voucher", "manual", "sample",
    "commission",
)

# Reason codes of the rejected table (a row lands there with exactly one of them).
REJECT_REASONS = (
    "malformed_line",      # the CSV parser could not split the line into the header's columns
    "blank_row",           # every field empty
    "duplicate_row",       # exact copy of an earlier row of the same source
    "missing_customer_id", # customers/events: no customer id
    "missing_timestamp",   # no date/time value
    "bad_timestamp",       # a date/time value that no known format parses
    "bad_quantity",        # a quantity that is not a number
    "bad_price",           # a unit price that is not a number
    "bad_amount",          # an amount that is not a number
    "missing_amount",      # neither an amount nor a unit price to derive it from
    "duplicate_customer",  # customers: a second row for a customer id already loaded
    "dropped_by_rule",     # a flag the user asked to drop rows for (detail names the flag)
)

# Flags: rows kept, but marked for attention (a row may carry several).
FLAGS = (
    "anonymous",           # transactions without a customer id (kept for basket analysis)
    "cancellation",        # C-prefixed invoice (Online Retail style cancellation)
    "return",              # other returns: a return flag or a negative quantity
    "unmatched_return",    # a return with no earlier purchase of the product by the customer
    "non_product",         # postage, fees, discounts, adjustments ...
    "zero_price",
    "negative_price",
    "future_date",         # after the time of ingest
    "outlier_quantity",    # far outside the usual range (Tukey far-out fence on a log scale)
    "outlier_price",
    "derived_order_id",    # order id missing; made from customer and time
    "invalid_email",
    "invalid_phone",
    "implausible_age",
    "bad_value",           # events: a value that is not a number (kept, value left empty)
)
