"""The segment rule language: parsing, precedence, positioned errors, compiling to bound SQL."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import pytest

from crmlens.errors import InputError
from crmlens.segment.builder import column_kind, compile_expression
from crmlens.segment.expression import (
    MAX_DEPTH,
    MAX_LENGTH,
    Between,
    BoolOp,
    Comparison,
    ExpressionError,
    InList,
    IsNull,
    Not,
    SegmentRef,
    SetOp,
    parse_expression,
)

COLUMNS = {
    "customer_id": "VARCHAR", "recency_days": "INTEGER", "frequency": "BIGINT",
    "monetary": "DOUBLE", "avg_order_value": "DECIMAL(18,3)", "region": "VARCHAR",
    "gender": "VARCHAR", "last_order": "DATE", "is_member": "BOOLEAN",
    'odd "name"; --': "DOUBLE", "tags": "VARCHAR[]",
}


def error_of(text: str, columns=COLUMNS) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, columns=columns)
    return info.value


# --- structure and precedence --------------------------------------------------------------

def test_and_binds_tighter_than_or():
    root = parse_expression("a = 1 OR b = 2 AND c = 3").root
    assert isinstance(root, BoolOp) and root.op == "OR"
    assert isinstance(root.operands[0], Comparison)
    assert isinstance(root.operands[1], BoolOp) and root.operands[1].op == "AND"


def test_not_binds_tighter_than_and_and_parentheses_override():
    root = parse_expression("NOT a = 1 AND b = 2").root
    assert root.op == "AND" and isinstance(root.operands[0], Not)
    root = parse_expression("NOT (a = 1 AND b = 2)").root
    assert isinstance(root, Not) and root.operand.op == "AND"
    root = parse_expression("(a = 1 OR b = 2) AND c = 3").root
    assert root.op == "AND" and root.operands[0].op == "OR"


def test_chains_stay_flat():
    root = parse_expression("a = 1 AND b = 2 AND c = 3 AND d = 4").root
    assert root.op == "AND" and len(root.operands) == 4


def test_intersect_binds_tighter_than_union_and_except():
    root = parse_expression("segment('x') UNION segment('y') INTERSECT segment('z')").root
    assert isinstance(root, SetOp) and root.rest[0][0] == "UNION"
    inner = root.rest[0][1]
    assert isinstance(inner, SetOp) and inner.rest[0][0] == "INTERSECT"
    root = parse_expression("segment('x') EXCEPT segment('y') UNION segment('z')").root
    assert [op for op, _ in root.rest] == ["EXCEPT", "UNION"]  # left to right


def test_keywords_are_case_insensitive():
    root = parse_expression("a between 1 and 2 Or b is not null aNd c not in ('x')").root
    assert root.op == "OR"
    between, rest = root.operands
    assert isinstance(between, Between) and not between.negated
    assert isinstance(rest.operands[0], IsNull) and rest.operands[0].negated
    assert isinstance(rest.operands[1], InList) and rest.operands[1].negated


def test_literals():
    expr = parse_expression(
        "a = -1.5e2 AND b = 'O''Brien' AND c = '华东' AND d = DATE '2024-01-31' "
        "AND e = TRUE AND f = 12 AND g = .5")
    values = [node.value.value for node in expr.root.operands]
    assert values == [-150.0, "O'Brien", "华东", date(2024, 1, 31), True, 12, 0.5]
    assert isinstance(values[5], int)


def test_segment_reference_forms():
    ref = parse_expression("segment('rfm', 'Champions', 'Loyal')").root
    assert isinstance(ref, SegmentRef) and ref.run.value == "rfm"
    assert [label.value for label in ref.labels] == ["Champions", "Loyal"]
    ref = parse_expression("SEGMENT(12)").root
    assert ref.run.value == 12 and ref.labels == ()


def test_quoted_identifier_and_fullwidth_punctuation():
    node = parse_expression('"odd ""name""; --" >= 7').root
    assert node.feature.name == 'odd "name"; --' and node.feature.quoted
    # what a Chinese input method types: fullwidth parentheses, operators, comma, space
    node = parse_expression("（region ＝ '华东'）\u3000AND frequency ＞＝ ３").root
    assert node.op == "AND"
    assert node.operands[0].value.value == "华东"
    assert node.operands[1].op == ">=" and node.operands[1].value.value == 3


def test_positions_are_recorded():
    expr = parse_expression("frequency >= 3 AND region = 'x'")
    second = expr.root.operands[1]
    assert second.index == 19 and second.value.index == 28


# --- positioned errors -----------------------------------------------------------------------

def test_error_message_has_position_and_caret():
    err = error_of("recency_days >= AND")
    assert isinstance(err, InputError) and err.position == 17
    assert err.key == "error.segment_expr_expected_value"
    text = err.message(lang="en")
    assert text.startswith("Expected a value after '>=' at position 17")
    line, caret = text.split("\n")[-2:]
    assert line == "  recency_days >= AND"
    assert caret.index("^") == line.index("AND")
    assert "位置 17" in err.message(lang="zh")


def test_caret_counts_wide_characters_twice():
    err = error_of("region = '华东' AND")
    assert err.position == 18 and err.key == "error.segment_expr_expected_condition_end"
    line, caret = err.message(lang="en").split("\n")[-2:]
    width = sum(2 if unicodedata.east_asian_width(c) == "W" else 1 for c in line)
    assert caret == " " * width + "^"


@pytest.mark.parametrize("text, key, position", [
    ("", "error.segment_expr_empty", None),
    ("   ", "error.segment_expr_empty", None),
    ("recency_days >=", "error.segment_expr_expected_value_end", 16),
    ("recency_days 30", "error.segment_expr_expected_operator", 14),
    ("recency_days", "error.segment_expr_expected_operator_end", 13),
    ("recency_days > 30 frequency > 2", "error.segment_expr_trailing", 19),
    ("(recency_days > 30", "error.segment_expr_unclosed_paren", 1),
    ("recency_days > 30)", "error.segment_expr_unbalanced", 18),
    ("region = 'East", "error.segment_expr_unclosed_string", 10),
    ('"region = 1', "error.segment_expr_unclosed_identifier", 1),
    ("region = ‘East’", "error.segment_expr_smart_quote", 10),
    ("recency_days = NULL", "error.segment_expr_null_comparison", 16),
    ("recency_days <> NULL", "error.segment_expr_null_comparison", 17),
    ("recency_days > 30days", "error.segment_expr_bad_number", 16),
    ("recency_days > 1e999", "error.segment_expr_number_range", 16),
    ("recency_days BETWEEN 1 OR 5", "error.segment_expr_expected_token", 24),
    ("recency_days IN (1, 2", "error.segment_expr_expected_at_end", 22),
    ("recency_days IN 1", "error.segment_expr_expected_token", 17),
    ("recency_days IS 5", "error.segment_expr_expected_token", 17),
    ("recency_days NOT 5", "error.segment_expr_expected_operator", 18),
    ("last_order > DATE '2024-13-01'", "error.segment_expr_bad_date", 19),
    ("last_order > DATE 5", "error.segment_expr_expected_value", 19),
    ("lower(region) = 'x'", "error.segment_expr_unknown_function", 1),
    ("segment()", "error.segment_expr_segment_args", 1),
    ("segment('rfm', 3)", "error.segment_expr_segment_args", 1),
    ("segment(0)", "error.segment_expr_segment_args", 9),
    ("AND recency_days > 1", "error.segment_expr_expected_condition", 1),
    ("recency_days > 1 AND", "error.segment_expr_expected_condition_end", 21),
    ("recency_days ! 1", "error.segment_expr_bad_char", 14),
    ("recency_days > 1 @", "error.segment_expr_bad_char", 18),
])
def test_parse_errors(text, key, position):
    with pytest.raises(InputError) as info:
        compile_expression(text, columns=COLUMNS)
    assert info.value.key == key
    if position is not None:
        assert info.value.position == position
        assert f"position {position}" in info.value.message(lang="en")
    assert "{" not in info.value.message(lang="zh")


@pytest.mark.parametrize("text, key, position", [
    ("recncy_days > 3", "error.segment_expr_unknown_feature_suggest", 1),
    ("frequency > 1 AND regoin = 'x'", "error.segment_expr_unknown_feature_suggest", 19),
    ("zzz > 3", "error.segment_expr_unknown_feature", 1),
    ("recency_days > '30'", "error.segment_expr_type_number", 16),
    ("monetary IN (1, 'a')", "error.segment_expr_type_number", 17),
    ("region = 5", "error.segment_expr_type_text", 10),
    ("customer_id = 17850", "error.segment_expr_type_text", 15),
    ("last_order > 5", "error.segment_expr_type_date", 14),
    ("last_order > 'soon'", "error.segment_expr_bad_date", 14),
    ("is_member = 1", "error.segment_expr_type_boolean", 13),
    ("tags = 'x'", "error.segment_expr_type_other", 1),
    ("frequency BETWEEN 10 AND 1", "error.segment_expr_empty_range", 19),
])
def test_compile_errors(text, key, position):
    err = error_of(text)
    assert (err.key, err.position) == (key, position)


def test_unknown_feature_suggests_the_closest_column():
    err = error_of("recncy_days > 3")
    assert "Did you mean 'recency_days'?" in err.message(lang="en")
    err = error_of("zzz > 3")
    assert "recency_days" in err.message(lang="en")  # lists what exists


def test_lookalike_letter_is_pointed_at():
    err = error_of("r\u0435cency_days > 3")  # Cyrillic e
    assert err.key == "error.segment_expr_lookalike" and err.position == 2
    assert "U+0435" in err.message(lang="en")


def test_feature_names_match_ignoring_case():
    sql, params = compile_expression("RECENCY_DAYS <= 5", columns=COLUMNS)
    assert 'f."recency_days"' in sql and params == [5]


# --- bound parameters and quoting ------------------------------------------------------------

def test_sql_contains_no_user_literal():
    text = ("region IN ('华东', 'O''Brien') AND monetary BETWEEN 987654 AND 987655.5 "
            "OR last_order >= DATE '2024-02-29' OR segment('vip; --', 'x''y') "
            "OR NOT gender = 'F' AND is_member = TRUE")
    sql, params = compile_expression(text, columns=COLUMNS)
    assert "'" not in sql  # no string literal at all: every value is a ?
    assert not re.search(r"\d", sql.replace('"', " ")), sql  # and no number
    assert sql.count("?") == len(params)
    assert params == ["华东", "O'Brien", 987654, 987655.5, date(2024, 2, 29), "vip; --",
                      "x'y", "F", True]


def test_odd_column_name_is_quoted_not_pasted():
    sql, params = compile_expression('"odd ""name""; --" >= 7', columns=COLUMNS)
    assert sql == 'coalesce(f."odd ""name""; --" >= ?, false)' and params == [7]


def test_alias_must_be_plain():
    with pytest.raises(ValueError):
        compile_expression("frequency > 1", columns=COLUMNS, alias="f; DROP")


@pytest.mark.parametrize("type_name, kind", [
    ("INTEGER", "number"), ("DECIMAL(18,3)", "number"), ("HUGEINT", "number"),
    ("UBIGINT", "number"), ("VARCHAR", "text"), ("ENUM('a', 'b')", "text"),
    ("DATE", "date"), ("TIMESTAMP WITH TIME ZONE", "date"), ("BOOLEAN", "boolean"),
    ("DOUBLE[]", "other"), ("STRUCT(x INTEGER)", "other"), ("INTERVAL", "other"),
])
def test_column_kind(type_name, kind):
    assert column_kind(type_name) == kind


# --- hostile input ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "'); DROP TABLE customers; --",
    "recency_days = 1; DELETE FROM segments",
    "x' OR '1'='1",
    "region = 'x' OR '1'='1'",
    "region = 'a'; DROP TABLE segments; --'",
    "recency_days = 1 -- comment",
    "recency_days = 1 /* c */",
    "\"region\"; DROP TABLE x; --\" = 'a'",
    "recency_days = 1\x00",
    "region = 'a\x00b'",
    "region\u200b = 'a'",
    "region = 'a' \u0410ND frequency > 1",  # Cyrillic A in AND
    "recency_days > (SELECT 1)",
    "recency_days > 1 UNION SELECT * FROM segments",
    "segment('rfm') OR 1=1",
])
def test_hostile_strings_are_rejected_with_a_position(text):
    err = error_of(text)
    assert 1 <= err.position <= len(text) + 1
    message = err.message(lang="en")
    assert f"position {err.position}" in message and "^" in message.splitlines()[-1]


@pytest.mark.parametrize("text, value", [
    ("region = '''); DROP TABLE customers; --'", "'); DROP TABLE customers; --"),
    ("region = 'x'' OR ''1''=''1'", "x' OR '1'='1"),
    ("region = 'a; DELETE FROM segments'", "a; DELETE FROM segments"),
    ("region = 'Robert\"); --'", 'Robert"); --'),
])
def test_hostile_values_are_harmless_literals(text, value):
    sql, params = compile_expression(text, columns=COLUMNS)
    assert sql == 'coalesce(f."region" = ?, false)' and params == [value]


def test_null_byte_is_pointed_at():
    err = error_of("region = 'ab\x00c'")
    assert err.key == "error.segment_expr_control_char" and err.position == 13
    assert "U+0000" in err.message(lang="en")


def test_deep_nesting_is_a_clean_error():
    text = "(" * 5000 + "frequency > 1" + ")" * 5000
    err = error_of(text)
    assert err.key == "error.segment_expr_too_deep" and err.position == MAX_DEPTH + 1
    err = error_of("NOT " * 5000 + "frequency > 1")
    assert err.key == "error.segment_expr_too_deep"
    # the limit itself is fine
    text = "(" * MAX_DEPTH + "frequency > 1" + ")" * MAX_DEPTH
    assert compile_expression(text, columns=COLUMNS)[1] == [1]


def test_very_long_input_is_refused_early():
    err = error_of("frequency > 1 OR " * (MAX_LENGTH // 10))
    assert err.key == "error.segment_expr_too_long"
    assert str(MAX_LENGTH) in err.message(lang="en")


def test_long_flat_rule_compiles_without_recursion():
    text = " OR ".join(f"frequency = {i}" for i in range(4000))
    assert len(text) < MAX_LENGTH
    sql, params = compile_expression(text, columns=COLUMNS)
    assert params == list(range(4000)) and sql.count("?") == 4000
    text = " UNION ".join(f"frequency = {i}" for i in range(3000))
    assert len(compile_expression(text, columns=COLUMNS)[1]) == 3000


def test_parse_rejects_non_text():
    with pytest.raises(TypeError):
        parse_expression(b"frequency > 1")


def test_set_operations_compile_flat_and_left_to_right():
    sql, _ = compile_expression("frequency = 1 UNION frequency = 2 UNION frequency = 3 "
                                "EXCEPT frequency = 2", columns=COLUMNS)
    assert sql.count("(NOT") == 1 and sql.startswith("((coalesce")  # one group, then EXCEPT
    assert " OR " in sql and sql.count("(") == sql.count(")")


def test_alternating_set_operations_are_capped():
    from crmlens.segment.builder import MAX_SQL_DEPTH

    ops = ["UNION", "EXCEPT"] * (MAX_SQL_DEPTH + 5)
    text = "frequency = 0 " + " ".join(f"{op} frequency = {i}" for i, op in enumerate(ops))
    err = error_of(text)
    assert err.key == "error.segment_expr_too_complex"
    assert text[err.position - 1:].startswith("frequency")  # the operand that goes too deep


def test_unquoted_text_value_gets_a_quoting_hint():
    err = error_of("region = 华东")
    assert err.key == "error.segment_expr_unquoted_text" and err.position == 10
    assert "'华东'" in err.message(lang="zh")
