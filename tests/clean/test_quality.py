"""The data-quality summary on a hand-made workspace (see tests/report/conftest.py)."""

from __future__ import annotations

import json
import time

import duckdb
import pytest

from crmlens.clean.quality import (
    TOP_FINDINGS,
    format_count,
    format_share,
    quality_summary,
    rejected_examples,
    t_count,
)
from crmlens.i18n import catalogue, set_language
from crmlens.workspace.schema import FLAGS, REJECT_REASONS
from tests.report.conftest import build_workspace, create_schema


@pytest.fixture
def con():
    con = duckdb.connect()
    build_workspace(con)
    yield con
    con.close()


@pytest.fixture
def summary(con):
    return quality_summary(con, lang="en")


def _source(summary, source_id):
    return next(s for s in summary["sources"] if s["source_id"] == source_id)


def _finding(entry, code):
    matches = [f for f in entry["findings"] if f["code"] == code]
    assert len(matches) == 1, (code, [f["code"] for f in entry["findings"]])
    return matches[0]


# --- accounting ---------------------------------------------------------------------------


def test_rows_read_equal_loaded_plus_rejected_per_source(summary):
    got = {s["source_id"]: (s["rows_read"], s["rows_loaded"], s["rows_rejected"])
           for s in summary["sources"]}
    assert got == {1: (20, 14, 6), 2: (8, 6, 2), 3: (7, 5, 2), 4: (4, 3, 1)}
    for s in summary["sources"]:
        assert s["rows_read"] == s["rows_loaded"] + s["rows_rejected"]
        assert sum(s["rejected_by_reason"].values()) == s["rows_rejected"]


def test_totals_add_up_per_kind(summary):
    totals = summary["totals"]
    assert (totals["sources"], totals["rows_read"], totals["rows_loaded"],
            totals["rows_rejected"]) == (4, 39, 28, 11)
    assert totals["by_kind"]["transactions"] == {
        "sources": 2, "rows_read": 28, "rows_loaded": 20, "rows_rejected": 8}
    assert totals["by_kind"]["customers"]["rows_rejected"] == 2
    assert totals["by_kind"]["events"]["rows_loaded"] == 3


def test_source_identity_comes_from_the_sources_table(summary):
    s = _source(summary, 2)
    assert (s["kind"], s["name"], s["format"]) == ("transactions", "门店订单.xlsx", "xlsx")
    assert s["options"] == {"sheet": "订单"}
    assert s["mapping"]["customer_id"] == "会员编号"


# --- reasons and flags --------------------------------------------------------------------


def test_rejected_by_reason_exact(summary):
    assert _source(summary, 1)["rejected_by_reason"] == {
        "duplicate_row": 2, "bad_quantity": 1, "bad_timestamp": 1, "blank_row": 1,
        "malformed_line": 1}
    assert _source(summary, 2)["rejected_by_reason"] == {"dropped_by_rule": 1,
                                                         "missing_amount": 1}
    assert _source(summary, 3)["rejected_by_reason"] == {"duplicate_customer": 1,
                                                         "missing_customer_id": 1}
    assert _source(summary, 4)["rejected_by_reason"] == {"bad_timestamp": 1}


def test_rejected_reasons_are_ordered_by_count(summary):
    assert next(iter(_source(summary, 1)["rejected_by_reason"])) == "duplicate_row"


def test_flags_by_reason_exact(summary):
    assert _source(summary, 1)["flags_by_reason"] == {
        "anonymous": 3, "non_product": 3, "cancellation": 1, "future_date": 1,
        "negative_price": 1, "outlier_quantity": 1, "return": 1, "unmatched_return": 1,
        "zero_price": 1}
    assert _source(summary, 2)["flags_by_reason"] == {
        "anonymous": 1, "derived_order_id": 1, "non_product": 1}
    assert _source(summary, 3)["flags_by_reason"] == {
        "implausible_age": 1, "invalid_email": 1, "invalid_phone": 1}
    assert _source(summary, 4)["flags_by_reason"] == {}


def test_non_product_codes_per_source(summary):
    codes = [(c["product_id"], c["product_name"], c["line_type"], c["rows"], c["amount"])
             for c in _source(summary, 1)["non_product_codes"]]
    assert codes == [("POST", "POSTAGE", "shipping", 2, 10.0), ("M", "Manual", "manual", 1, -3.0)]
    assert [c["product_id"] for c in _source(summary, 2)["non_product_codes"]] == ["FEE"]
    assert _source(summary, 3)["non_product_codes"] == []


# --- columns and dates --------------------------------------------------------------------


def test_column_statistics(summary):
    cols = {c["column"]: c for c in _source(summary, 1)["columns"]}
    cid = cols["customer_id"]
    assert (cid["role"], cid["source_column"], cid["missing"], cid["distinct"]) == (
        "customer_id", "Customer", 3, 4)
    assert cid["missing_share"] == pytest.approx(3 / 14)
    assert (cols["ts"]["min"], cols["ts"]["max"]) == ("2023-01-05T10:00:00",
                                                      "2023-04-20T09:00:00")
    assert (cols["quantity"]["min"], cols["quantity"]["max"]) == (-2.0, 500.0)
    assert cols["region"]["missing"] == 1 and cols["region"]["distinct"] == 3
    # Not in the file: no source column, empty by design, and no min/max for strings.
    assert cols["channel"]["source_column"] is None and cols["channel"]["missing"] == 14
    assert cols["product_name"]["min"] is None
    assert "flags" not in cols and "line_type" not in cols


def test_customer_columns_use_customer_roles(summary):
    cols = {c["column"]: c for c in _source(summary, 3)["columns"]}
    assert cols["labels"]["role"] == "label"
    assert cols["income"]["source_column"] == "income" and cols["income"]["missing"] == 5
    assert cols["age"]["max"] == 150.0


def test_date_span_per_kind(summary):
    assert _source(summary, 1)["date_span"] == {"min": "2023-01-05T10:00:00",
                                                "max": "2023-04-20T09:00:00"}
    assert _source(summary, 3)["date_span"] is None  # no sign-up dates
    assert _source(summary, 4)["date_span"]["max"] == "2023-03-05T11:00:00"


# --- findings -----------------------------------------------------------------------------


def test_one_finding_per_reason_and_flag(summary):
    for s in summary["sources"]:
        codes = [f["code"] for f in s["findings"]]
        expected = ({f"rejected.{r}" for r in s["rejected_by_reason"]}
                    | {f"flag.{f}" for f in s["flags_by_reason"]})
        assert expected <= set(codes)
        assert len(codes) == len(set(codes))


def test_findings_carry_counts_and_shares(summary):
    s1 = _source(summary, 1)
    anonymous = _finding(s1, "flag.anonymous")
    assert anonymous["count"] == 3 and anonymous["severity"] == "info"
    assert anonymous["text"].startswith("3 rows (21.4%) have no customer id")
    non_product = _finding(s1, "flag.non_product")["text"]
    assert "3 lines are not products: POSTAGE (POST) 2, Manual (M) 1" in non_product
    assert _finding(s1, "rejected.duplicate_row")["text"] == "2 exact duplicate rows were rejected"
    assert _finding(s1, "flag.cancellation")["text"].startswith("1 cancellation line ")
    assert _finding(s1, "flag.zero_price")["text"] == "1 line has a zero price"
    assert _finding(s1, "date_span")["text"] == (
        "Transactions span 2023-01-05 to 2023-04-20 (106 days)")


def test_severities(summary):
    s1 = _source(summary, 1)
    assert _finding(s1, "flag.future_date")["severity"] == "warning"
    assert _finding(s1, "rejected.bad_timestamp")["severity"] == "warning"
    assert _finding(s1, "rejected.blank_row")["severity"] == "info"
    severities = [f["severity"] for f in s1["findings"]]
    assert severities == sorted(severities, key=lambda s: s != "warning")
    assert s1["findings"][-1]["code"] == "date_span"


def test_mapped_but_empty_column_is_a_finding(summary):
    f = _finding(_source(summary, 3), "mapped_mostly_missing")
    assert f["count"] == 5 and "income" in f["text"] and "100.0%" in f["text"]
    # Unmapped empty columns (channel in source 1) are not news.
    assert not [f for f in _source(summary, 1)["findings"] if "missing" in f["code"]]


def test_mostly_anonymous_transactions_warn():
    con = duckdb.connect()
    create_schema(con)
    con.execute("""
        INSERT INTO sources VALUES (7, 'transactions', 'pos.csv', 'pos.csv', 'csv', NULL, '{}',
            '{"customer_id": "member", "order_id": "ticket"}', '[]', 4, 4, 0,
            TIMESTAMP '2024-01-01', NULL)""")
    con.execute("""
        INSERT INTO transactions (source_id, source_row, order_id, customer_id, ts, quantity,
            amount, is_return, line_type, flags)
        SELECT 7, i + 1, 'T' || i, CASE WHEN i = 0 THEN 'M1' END, TIMESTAMP '2024-01-02', 1,
               1.0, false, 'product', CASE WHEN i = 0 THEN [] ELSE ['anonymous'] END
        FROM range(4) r(i)""")
    entry = quality_summary(con, lang="en")["sources"][0]
    warning = _finding(entry, "required_mostly_missing")
    assert warning["severity"] == "warning" and warning["count"] == 3
    assert "3 rows (75.0%)" in warning["text"]
    assert _finding(entry, "date_span")["text"] == "All transactions are dated 2024-01-02"


def test_counts_use_thousands_separators():
    con = duckdb.connect()
    create_schema(con)
    con.execute("""
        INSERT INTO sources VALUES (1, 'transactions', 'big.csv', 'big.csv', 'csv', NULL, '{}',
            '{}', '[]', 12346, 1, 12345, TIMESTAMP '2024-01-01', NULL)""")
    con.execute("""
        INSERT INTO rejected SELECT 1, 'transactions', i + 2, 'duplicate_row', NULL, '{}'
        FROM range(12345) r(i)""")
    con.execute("""
        INSERT INTO transactions (source_id, source_row, order_id, ts, quantity, amount,
            is_return, line_type, flags)
        VALUES (1, 1, 'A', TIMESTAMP '2024-01-02', 1, 1.0, false, 'product', ['anonymous'])""")
    entry = quality_summary(con, lang="en")["sources"][0]
    assert _finding(entry, "rejected.duplicate_row")["text"] == (
        "12,345 exact duplicate rows were rejected")
    zh_entry = quality_summary(con, lang="zh")["sources"][0]
    assert _finding(zh_entry, "rejected.duplicate_row")["text"] == "剔除了 12,345 个完全重复的行"


def test_findings_in_chinese(con):
    s1 = _source(quality_summary(con, lang="zh"), 1)
    assert _finding(s1, "flag.anonymous")["text"].startswith("3 行（21.4%）没有客户编号")
    assert "交易日期从 2023-01-05 到 2023-04-20（共 106 天）" == _finding(s1, "date_span")["text"]


def test_findings_follow_the_current_language(con):
    set_language("zh")
    try:
        text = _finding(_source(quality_summary(con), 1), "rejected.duplicate_row")["text"]
    finally:
        set_language(None)
    assert text == "剔除了 2 个完全重复的行"


def test_workspace_findings_put_warnings_first_and_name_their_source(summary):
    top = summary["findings"]
    assert 0 < len(top) <= TOP_FINDINGS
    severities = [f["severity"] for f in top]
    assert severities == sorted(severities, key=lambda s: s != "warning")
    names = {s["source_id"]: s["name"] for s in summary["sources"]}
    assert all(names[f["source_id"]] == f["source"] for f in top)
    assert {"rejected.missing_amount", "flag.invalid_email"} <= {f["code"] for f in top}


def test_accounting_mismatches_are_reported(con):
    con.execute("UPDATE sources SET rows_read = 25 WHERE source_id = 1")
    con.execute("UPDATE sources SET rows_loaded = 7, rows_read = 9 WHERE source_id = 2")
    summary = quality_summary(con, lang="en")
    s1, s2 = _source(summary, 1), _source(summary, 2)
    f = _finding(s1, "accounting_mismatch")
    assert f["severity"] == "warning" and f["count"] == 5
    assert "(25)" in f["text"] and "(14)" in f["text"] and "(6)" in f["text"]
    assert _finding(s2, "store_mismatch")["count"] == 1
    assert "accounting_mismatch" not in [x["code"] for x in s2["findings"]]


def test_unknown_codes_fall_back_to_generic_texts(con):
    con.execute("UPDATE transactions SET flags = ['brand_new_flag'] WHERE source_row = 2")
    con.execute("UPDATE rejected SET reason = 'odd_reason' WHERE source_row = 21")
    s1 = _source(quality_summary(con, lang="en"), 1)
    assert _finding(s1, "flag.brand_new_flag")["text"] == (
        "1 row is flagged: brand_new_flag (7.1%)")
    assert _finding(s1, "rejected.odd_reason")["text"].startswith("1 row was rejected: odd_reason")


# --- robustness ---------------------------------------------------------------------------


def test_summary_is_strict_json(summary):
    text = json.dumps(summary, allow_nan=False, ensure_ascii=False)
    assert json.loads(text) == summary


def test_empty_workspace():
    con = duckdb.connect()
    create_schema(con)
    assert quality_summary(con) == {
        "sources": [],
        "totals": {"sources": 0, "rows_read": 0, "rows_loaded": 0, "rows_rejected": 0,
                   "by_kind": {}},
        "findings": [],
    }
    assert rejected_examples(con) == []


def test_store_without_tables():
    con = duckdb.connect()
    assert quality_summary(con)["sources"] == []
    assert rejected_examples(con) == []


def test_only_some_tables():
    con = duckdb.connect()
    con.execute("""CREATE TABLE rejected (source_id INTEGER, kind VARCHAR, source_row BIGINT,
                   reason VARCHAR, detail VARCHAR, original JSON)""")
    con.execute("INSERT INTO rejected VALUES (5, 'customers', 2, 'blank_row', NULL, '{}')")
    (entry,) = quality_summary(con, lang="en")["sources"]
    assert (entry["source_id"], entry["kind"], entry["rows_read"], entry["rows_rejected"]) == (
        5, "customers", 1, 1)
    assert entry["rejected_by_reason"] == {"blank_row": 1}


def test_rows_without_a_sources_entry_still_count(con):
    con.execute("DELETE FROM sources WHERE source_id = 4")
    entry = _source(quality_summary(con, lang="en"), 4)
    assert (entry["kind"], entry["rows_loaded"], entry["rows_rejected"], entry["rows_read"]) == (
        "events", 3, 1, 4)


def test_summary_only_reads(con):
    before = con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()
    quality_summary(con)
    rejected_examples(con)
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == before


# --- rejected examples --------------------------------------------------------------------


def test_rejected_examples(con):
    examples = rejected_examples(con, per_reason=1)
    dupes = [e for e in examples if e["reason"] == "duplicate_row"]
    assert [(e["source_id"], e["source_row"]) for e in dupes] == [(1, 16)]
    assert dupes[0]["original"]["Date"] == "05/01/2023 10:00"
    assert len(rejected_examples(con, per_reason=5)) == 11
    malformed = next(e for e in examples if e["reason"] == "malformed_line")
    assert malformed["original"].startswith("O10;P1;")


# --- formatting and catalogue -------------------------------------------------------------


def test_formatters():
    assert format_count(9288) == "9,288"
    assert format_count(135080.0) == "135,080"
    assert format_share(135080 / 541909) == "24.9%"
    assert format_share(0.00001) == "<0.1%"
    assert format_share(0.0) == "0.0%"
    assert format_share(None) == "–"


def test_singular_variant_only_for_one():
    assert t_count("quality.finding.flag.zero_price", 1, lang="en", count="1") == (
        "1 line has a zero price")
    assert t_count("quality.finding.flag.zero_price", 2, lang="en", count="2") == (
        "2 lines have a zero price")


def test_every_reason_and_flag_has_a_label_and_a_finding_in_both_languages():
    cat = catalogue()
    keys = [f"quality.reason.{r}" for r in REJECT_REASONS]
    keys += [f"quality.finding.rejected.{r}" for r in REJECT_REASONS]
    keys += [f"quality.flag.{f}" for f in FLAGS]
    keys += [f"quality.finding.flag.{f}" for f in FLAGS]
    missing = [k for k in keys if k not in cat or not cat[k].get("en") or not cat[k].get("zh")]
    assert missing == []


@pytest.mark.slow
def test_fast_on_a_million_transactions():
    con = duckdb.connect()
    create_schema(con)
    con.execute("""
        INSERT INTO sources VALUES (1, 'transactions', 'big', 'big', 'parquet', NULL, '{}',
            '{"customer_id": "c"}', '[]', 1000000, 1000000, 0, TIMESTAMP '2024-01-01', NULL)""")
    con.execute("""
        INSERT INTO transactions (source_id, source_row, order_id, customer_id, ts, product_id,
            quantity, unit_price, amount, region, is_return, line_type, flags)
        SELECT 1, i, 'O' || (i // 4), CASE WHEN i % 5 <> 0 THEN 'C' || (i % 20000) END,
               TIMESTAMP '2023-01-01' + to_minutes(i), 'P' || (i % 3000), 1 + i % 7, 2.5,
               2.5 * (1 + i % 7), 'R' || (i % 30), false,
               CASE WHEN i % 1000 = 0 THEN 'shipping' ELSE 'product' END,
               CASE WHEN i % 5 = 0 THEN ['anonymous'] ELSE [] END
        FROM range(1000000) r(i)""")
    start = time.perf_counter()
    summary = quality_summary(con)
    elapsed = time.perf_counter() - start
    entry = summary["sources"][0]
    assert entry["flags_by_reason"] == {"anonymous": 200000}
    assert sum(c["rows"] for c in entry["non_product_codes"]) == 1000
    assert elapsed < 15, elapsed
