"""Rule segments against a small in-memory workspace: sizes, selections, set operations,
waterfall, saving, and hostile rules that must leave every table as it was."""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import pytest

from crmlens.errors import InputError
from crmlens.segment.builder import (
    MAX_SQL_DEPTH,
    estimate_size,
    feature_columns,
    save_rule_segment,
    save_waterfall,
    select_customers,
    waterfall,
    waterfall_counts,
)
from crmlens.segment.expression import MAX_DEPTH, ExpressionError, parse_expression
from crmlens.workspace.schema import DDL

LATEST = date(2024, 6, 30)
EARLIER = date(2024, 3, 31)
ODD = 'odd "name"; --'

# customer, recency_days, frequency, monetary, region, gender, last_order, is_member, odd column
ROWS = [
    ("c01", 5, 10, 1000.0, "华东", "F", date(2024, 6, 25), True, 1.0),
    ("c02", 20, 6, 500.0, "华北", "M", date(2024, 6, 10), False, 2.0),
    ("c03", 45, 3, 300.0, "华东", "F", date(2024, 5, 16), True, 3.0),
    ("c04", 90, 2, 80.0, "West", "M", date(2024, 4, 1), False, 4.0),
    ("c05", 200, 1, 20.0, "West", None, date(2023, 12, 13), None, 5.0),
    ("c06", None, 0, 0.0, None, "F", None, False, 6.0),
    ("c07", 10, 4, 250.0, "O'Brien", "M", date(2024, 6, 20), True, 7.0),
    ("c08", 365, 1, 15.0, "华南", "F", date(2023, 7, 1), False, 8.0),
]
EARLY_ROWS = [
    ("c01", 30, 8, 800.0, "华东", "F", date(2024, 3, 1), True, 1.0),
    ("c02", 100, 5, 400.0, "华北", "M", date(2023, 12, 22), False, 2.0),
    ("c03", 5, 2, 200.0, "华东", "F", date(2024, 3, 26), True, 3.0),
]
RUNS = [  # run_id, name, labels
    (1, "rfm", {"c01": "Champions", "c02": "Loyal", "c05": "Lost", "c08": "Lost"}),
    (2, "rfm", {"c01": "Champions", "c07": "Champions", "c02": "Loyal", "c05": "Lost",
                "c08": "Lost", "c04": "At Risk"}),
    (3, "vip", {"c01": "vip", "c03": "vip", "c07": "vip"}),
]


@pytest.fixture
def con():
    con = duckdb.connect()
    for ddl in DDL.values():
        con.execute(ddl)
    con.execute(
        "CREATE TABLE customer_features (as_of DATE, customer_id VARCHAR, recency_days INTEGER, "
        "frequency BIGINT, monetary DOUBLE, region VARCHAR, gender VARCHAR, last_order DATE, "
        f'is_member BOOLEAN, "{ODD.replace(chr(34), chr(34) * 2)}" DOUBLE)')
    con.executemany("INSERT INTO customer_features VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(LATEST, *r) for r in ROWS] + [(EARLIER, *r) for r in EARLY_ROWS])
    con.execute("INSERT INTO customers (source_id, source_row, customer_id, flags) "
                "VALUES (1, 1, 'c01', [])")
    for run_id, name, labels in RUNS:
        con.execute("INSERT INTO segment_runs VALUES (?, ?, 'rfm', ?, '{}', ?, ?, ?, NULL)",
                    [run_id, name, LATEST, len(set(labels.values())), len(labels),
                     datetime(2024, 7, run_id)])
        con.executemany("INSERT INTO segments VALUES (?, ?, ?)",
                        [(run_id, c, s) for c, s in labels.items()])
    yield con
    con.close()


def fingerprint(con) -> dict:
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    return {name: con.execute(f'SELECT count(*), sum(hash(CAST(t AS VARCHAR))) FROM "{name}" t')
            .fetchone() for name in tables}


def ids(con, text, **kw) -> list[str]:
    return list(select_customers(con, text, **kw)["customer_id"])


# --- sizes and selections --------------------------------------------------------------------

def test_feature_columns_read_from_the_table(con):
    columns = feature_columns(con)
    assert "as_of" not in columns and columns["recency_days"] == "INTEGER"
    assert columns[ODD] == "DOUBLE"


def test_estimate_size_at_the_latest_date(con):
    size = estimate_size(con, "recency_days <= 30")
    assert size == {"n": 3, "share": 3 / 8, "total": 8, "as_of": LATEST}


def test_estimate_size_at_an_earlier_date(con):
    size = estimate_size(con, "recency_days <= 30", as_of="2024-03-31")
    assert (size["n"], size["total"]) == (2, 3)
    assert ids(con, "recency_days <= 30", as_of=EARLIER) == ["c01", "c03"]


def test_unknown_as_of_lists_the_dates(con):
    with pytest.raises(InputError) as info:
        estimate_size(con, "frequency > 1", as_of=date(2020, 1, 1))
    assert info.value.key == "error.segment_as_of_missing"
    assert "2024-06-30" in info.value.message(lang="en")
    with pytest.raises(InputError) as info:
        estimate_size(con, "frequency > 1", as_of="yesterday")
    assert info.value.key == "error.segment_bad_as_of"


def test_no_feature_table():
    con = duckdb.connect()
    with pytest.raises(InputError) as info:
        estimate_size(con, "frequency > 1")
    assert info.value.key == "error.segment_no_features"


@pytest.mark.parametrize("text, expected", [
    ("region = '华东' OR region = 'West' AND frequency >= 2", ["c01", "c03", "c04"]),
    ("(region = '华东' OR region = 'West') AND frequency >= 2", ["c01", "c03", "c04"]),
    ("(region = '华东' OR region = 'West') AND frequency >= 3", ["c01", "c03"]),
    ("region IN ('华东', '华南')", ["c01", "c03", "c08"]),
    ("region NOT IN ('华东', '华南')", ["c02", "c04", "c05", "c07"]),
    ("NOT region IN ('华东', '华南')", ["c02", "c04", "c05", "c06", "c07"]),
    ("frequency BETWEEN 2 AND 4", ["c03", "c04", "c07"]),
    ("frequency NOT BETWEEN 2 AND 4", ["c01", "c02", "c05", "c06", "c08"]),
    ("recency_days > 30", ["c03", "c04", "c05", "c08"]),
    ("NOT recency_days > 30", ["c01", "c02", "c06", "c07"]),  # the complement, NULL included
    ("recency_days IS NULL", ["c06"]),
    ("gender IS NOT NULL AND is_member IS NULL", []),
    ("is_member IS NULL", ["c05"]),
    ("region != 'West'", ["c01", "c02", "c03", "c07", "c08"]),
    ("region <> 'West' OR region IS NULL", ["c01", "c02", "c03", "c06", "c07", "c08"]),
    ("last_order >= DATE '2024-06-01'", ["c01", "c02", "c07"]),
    ("last_order < '2024-01-01'", ["c05", "c08"]),
    ("is_member = TRUE", ["c01", "c03", "c07"]),
    ("monetary >= 250.0 and monetary < 1e3", ["c02", "c03", "c07"]),
    ("recency_days > -1 AND recency_days < 6", ["c01"]),
    ("region = 'O''Brien'", ["c07"]),
    (f'"{ODD.replace(chr(34), chr(34) * 2)}" >= 7', ["c07", "c08"]),
    ("customer_id IN ('c02', 'c04')", ["c02", "c04"]),
    ("NOT NOT (frequency = 1)", ["c05", "c08"]),
])
def test_select_customers(con, text, expected):
    assert ids(con, text) == expected
    assert estimate_size(con, text)["n"] == len(expected)


def test_a_parsed_expression_can_be_passed(con):
    expr = parse_expression("frequency >= 6")
    assert ids(con, expr) == ["c01", "c02"]


# --- saved segments and set operations -------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("segment('rfm', 'Champions')", ["c01", "c07"]),  # the latest run called rfm
    ("segment(1, 'Champions')", ["c01"]),  # a run by id
    ("segment('rfm', 'Champions', 'Loyal')", ["c01", "c02", "c07"]),
    ("segment('vip')", ["c01", "c03", "c07"]),
    ("segment('vip') EXCEPT segment('rfm', 'Champions')", ["c03"]),
    ("segment('vip') UNION segment('rfm', 'Lost')", ["c01", "c03", "c05", "c07", "c08"]),
    ("segment('vip') INTERSECT recency_days < 8", ["c01"]),
    ("segment('vip') AND NOT segment('rfm', 'Champions')", ["c03"]),
    # INTERSECT binds first, as in SQL: Lost ∪ (vip ∩ non-members)
    ("segment('rfm','Lost') UNION segment('vip') INTERSECT is_member = FALSE", ["c05", "c08"]),
    ("(segment('rfm','Lost') UNION segment('vip')) INTERSECT is_member = FALSE", ["c08"]),
    ("segment('vip') EXCEPT segment('rfm','Champions') UNION segment('rfm', 'Lost')",
     ["c03", "c05", "c08"]),
    ("segment('rfm', 'Lost') EXCEPT recency_days > 300", ["c05"]),
    ("frequency >= 0 EXCEPT segment('rfm')", ["c03", "c06"]),
])
def test_segment_references_and_set_operations(con, text, expected):
    assert ids(con, text) == expected


def test_unknown_segmentation_is_positioned(con):
    with pytest.raises(ExpressionError) as info:
        ids(con, "frequency > 1 AND segment('rmf', 'Lost')")
    assert info.value.key == "error.segment_expr_unknown_segmentation"
    assert info.value.position == 27
    assert "rfm, vip" in info.value.message(lang="en")
    with pytest.raises(ExpressionError) as info:
        ids(con, "segment(99)")
    assert info.value.key == "error.segment_expr_unknown_segmentation"


def test_unknown_label_lists_the_run_labels(con):
    with pytest.raises(ExpressionError) as info:
        ids(con, "segment('rfm', 'champions')")
    assert info.value.key == "error.segment_expr_unknown_label" and info.value.position == 16
    assert "At Risk, Champions, Lost, Loyal" in info.value.message(lang="en")
    # "Loyal" exists in run 2 but run 1 has no "At Risk"
    with pytest.raises(ExpressionError):
        ids(con, "segment(1, 'At Risk')")


def test_segment_reference_without_saved_runs():
    con = duckdb.connect()
    con.execute("CREATE TABLE customer_features (as_of DATE, customer_id VARCHAR, x INTEGER)")
    con.execute("INSERT INTO customer_features VALUES (DATE '2024-01-01', 'a', 1)")
    with pytest.raises(ExpressionError) as info:
        ids(con, "segment('vip')")
    assert info.value.key == "error.segment_expr_unknown_segmentation"
    assert ids(con, "x = 1") == ["a"]


def test_long_rules_run_in_duckdb(con):
    text = " OR ".join(f"frequency = {i}" for i in range(2000))
    assert estimate_size(con, text)["n"] == 8
    text = "(" * MAX_DEPTH + "frequency = 1" + ")" * MAX_DEPTH
    assert ids(con, text) == ["c05", "c08"]
    text = "NOT " * (MAX_DEPTH - 1) + "frequency = 1"  # odd number of NOTs: the complement
    assert len(ids(con, text)) == 6
    ops = ["UNION", "EXCEPT"] * (MAX_SQL_DEPTH // 2 - 2)  # about as deep as we allow
    text = "frequency = 0 " + " ".join(f"{op} frequency = {i % 3}" for i, op in enumerate(ops))
    assert estimate_size(con, text)["n"] >= 0


# --- waterfall -------------------------------------------------------------------------------

RULES = [
    ("Active", "recency_days <= 30"),
    ("Big", "monetary >= 250"),
    ("Rest", "frequency >= 1"),
]


def test_waterfall_assigns_the_first_matching_rule(con):
    frame = waterfall(con, RULES, default_label="Other")
    assigned = dict(zip(frame["customer_id"], frame["segment"]))
    assert assigned == {"c01": "Active", "c02": "Active", "c07": "Active", "c03": "Big",
                        "c04": "Rest", "c05": "Rest", "c08": "Rest", "c06": "Other"}
    assert frame["customer_id"].is_unique
    # brute force: the first rule whose own selection contains the customer
    matches = [(label, set(ids(con, text))) for label, text in RULES]
    for customer, segment in assigned.items():
        first = next((label for label, members in matches if customer in members), "Other")
        assert segment == first


def test_waterfall_counts(con):
    frame = waterfall(con, RULES)
    assert set(frame["segment"]) == {"Active", "Big", "Rest"} and "c06" not in set(
        frame["customer_id"])  # unmatched customers are left out without a default
    counts = frame.attrs["counts"]
    assert frame.attrs["as_of"] == LATEST
    assert list(counts["segment"][:3]) == ["Active", "Big", "Rest"]
    assert list(counts["matched"]) == [3, 4, 7, 1]
    assert list(counts["assigned"]) == [3, 1, 3, 0]
    assert list(counts["taken_earlier"]) == [0, 3, 4, 0]
    assert counts["position"].isna().tolist() == [False, False, False, True]
    assert counts["share"].iloc[1] == pytest.approx(1 / 8)
    with_default = waterfall_counts(con, RULES, default_label="Other")
    assert list(with_default["assigned"]) == [3, 1, 3, 1]
    assert with_default["segment"].iloc[-1] == "Other"
    assert with_default["assigned"].sum() == 8


def test_waterfall_with_segment_rules_and_earlier_date(con):
    frame = waterfall(con, [("vip", "segment('vip')"), ("champ", "segment('rfm','Champions')")],
                      as_of=EARLIER)
    assert dict(zip(frame["customer_id"], frame["segment"])) == {"c01": "vip", "c03": "vip"}


@pytest.mark.parametrize("rules, default, key", [
    ([], None, "error.segment_waterfall_empty"),
    ([("A", "frequency > 1"), ("A", "frequency > 2")], None, "error.segment_waterfall_label_twice"),
    ([(" ", "frequency > 1")], None, "error.segment_waterfall_label_empty"),
    ([("A", "frequency > 1", "x")], None, "error.segment_waterfall_rule_shape"),
    ([("A", "frequency > 1")], "A", "error.segment_waterfall_default_label"),
    ([("A", "frequency > 1"), ("B", "frequency >")], None, "error.segment_waterfall_rule_failed"),
])
def test_waterfall_errors(con, rules, default, key):
    with pytest.raises(InputError) as info:
        waterfall(con, rules, default_label=default)
    assert info.value.key == key


def test_waterfall_rule_error_names_the_rule_and_position(con):
    with pytest.raises(InputError) as info:
        waterfall(con, [("A", "frequency > 1"), ("B", "frequncy > 2")])
    message = info.value.message(lang="en")
    assert "rule 2 ('B')" in message and "position 1" in message and "frequency" in message


# --- saving ----------------------------------------------------------------------------------

def test_save_rule_segment_then_refer_to_it(con):
    run_id = save_rule_segment(con, "active", "recency_days <= 30 AND region != 'West'")
    assert run_id == 4
    row = con.execute("SELECT name, method, as_of, params, n_segments, n_customers "
                      "FROM segment_runs WHERE run_id = ?", [run_id]).fetchone()
    assert row[:3] == ("active", "rule", LATEST)
    assert json.loads(row[3]) == {"expression": "recency_days <= 30 AND region != 'West'"}
    assert row[4:] == (1, 3)
    members = con.execute("SELECT customer_id, segment FROM segments WHERE run_id = ? "
                          "ORDER BY 1", [run_id]).fetchall()
    assert members == [("c01", "active"), ("c02", "active"), ("c07", "active")]
    assert ids(con, "segment('active') EXCEPT segment('vip')") == ["c02"]
    assert ids(con, "segment('active', 'active')") == ["c01", "c02", "c07"]


def test_save_empty_rule_segment_is_refused(con):
    before = fingerprint(con)
    with pytest.raises(InputError) as info:
        save_rule_segment(con, "nobody", "frequency > 1000")
    assert info.value.key == "error.segment_no_customers"
    assert fingerprint(con) == before


def test_save_waterfall(con):
    run_id = save_waterfall(con, "audiences", RULES, default_label="Other")
    row = con.execute("SELECT method, n_segments, n_customers, params, notes "
                      "FROM segment_runs WHERE run_id = ?", [run_id]).fetchone()
    assert row[:3] == ("waterfall", 4, 8)
    params, notes = json.loads(row[3]), json.loads(row[4])
    assert params["rules"][1] == {"segment": "Big", "rule": "monetary >= 250"}
    assert params["default_label"] == "Other"
    assert notes["order"] == ["Active", "Big", "Rest", "Other"]
    assert [c["taken_earlier"] for c in notes["counts"]] == [0, 3, 4, 0]
    assert ids(con, "segment('audiences', 'Big')") == ["c03"]


# --- hostile input against a real database ---------------------------------------------------

HOSTILE = [
    "'); DROP TABLE customers; --",
    "recency_days = 1; DELETE FROM segments",
    "x' OR '1'='1",
    "region = 'x' OR '1'='1'",
    "region = '''); DROP TABLE customers; --'",
    "region = 'x'' OR ''1''=''1'",
    "region = 'a'; DROP TABLE segments; --'",
    "\"region; DROP TABLE segments\" = 'x'",
    "\"region\"\"; DROP TABLE segments; --\" = 'x'",
    "segment('rfm''); DELETE FROM segments; --')",
    "segment('vip', 'vip'' OR 1=1 --')",
    "recency_days = 1\x00; DROP TABLE customers",
    "region = 'a\x00'",
    "r\u0435gion = 'x'",
    "region = 'x' \u041eR 1 = 1",
    "recency_days > (SELECT count(*) FROM segments)",
    "recency_days = 1 UNION SELECT customer_id FROM customers",
    "region = 'x' -- AND frequency > 1",
    "(" * 10_000 + "frequency = 1" + ")" * 10_000,
    "NOT " * 10_000 + "frequency = 1",
    "frequency = 1 OR " * 20_000 + "frequency = 2",
    "region = '" + "a" * 200_000 + "'",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_rules_leave_the_workspace_intact(con, text):
    before = fingerprint(con)
    try:
        size = estimate_size(con, text)
    except ExpressionError as err:  # rejected, with a position inside the text
        assert 1 <= err.position <= len(text) + 1
        assert f"{err.position}" in err.message(lang="en")
    else:  # or run as a harmless literal: it selects nobody
        assert size["n"] == 0
    with pytest.raises(InputError):
        save_waterfall(con, "x", [("a", text)])  # either rejected or empty, never saved
    assert fingerprint(con) == before
    assert con.execute("SELECT count(*) FROM segments").fetchone()[0] == 13


def test_hostile_segment_and_label_names_are_data(con):
    name = "vip'); DELETE FROM segments; --"
    run_id = save_rule_segment(con, name, "region = '华东'")
    assert ids(con, f"segment('{name.replace(chr(39), chr(39) * 2)}')") == ["c01", "c03"]
    frame = waterfall(con, [("a'; DROP TABLE x; --", "frequency >= 6")])
    assert set(frame["segment"]) == {"a'; DROP TABLE x; --"}
    assert con.execute("SELECT count(*) FROM segments WHERE run_id = ?", [run_id]).fetchone() \
        == (2,)
