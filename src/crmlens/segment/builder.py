"""Rule-based segments: compile rules to parameterized DuckDB SQL, size them, save them.

A rule (see :mod:`crmlens.segment.expression`) becomes a boolean SQL condition over the
``customer_features`` table at one as-of date. User text never reaches the SQL string: every
literal is a bound parameter (``?``), every feature name is checked against the table's real
columns and then quoted, and the only callable is ``segment(...)``, which compiles to a fixed
sub-query on ``segments``.

Logic is two-valued: a comparison with a missing value is false (never "unknown"), so ``NOT``
is the exact complement and ``A EXCEPT B`` equals ``A AND NOT B``. ``IS NULL`` picks missing
values explicitly.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from crmlens.errors import InputError
from crmlens.segment.expression import (
    Between,
    BoolOp,
    Comparison,
    Expr,
    ExpressionError,
    Feature,
    InList,
    IsNull,
    Literal,
    Node,
    Not,
    SegmentRef,
    SetOp,
    Token,
    parse_date,
    parse_expression,
)

log = logging.getLogger(__name__)

FEATURES_TABLE = "customer_features"
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_NUMERIC = re.compile(
    r"(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|"
    r"UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)\b")
# Nesting of the generated condition. DuckDB refuses expressions deeper than 1000 levels, and
# its optimizer slows down sharply on deep alternations of OR and AND NOT (measured: 0.1 s at
# 48 levels, 1.6 s at 100, 40 s at 190), so a rule may not nest deeper than this.
MAX_SQL_DEPTH = 64


def column_kind(type_name: str) -> str:
    """What a DuckDB column type compares with: number, text, date, boolean or other."""
    upper = type_name.strip().upper()
    if upper.endswith("]") or upper.startswith(("STRUCT", "MAP", "UNION", "LIST")):
        return "other"
    if _NUMERIC.match(upper):
        return "number"
    if upper.startswith(("VARCHAR", "CHAR", "TEXT", "STRING", "ENUM")):
        return "text"
    if upper == "DATE" or upper.startswith("TIMESTAMP"):
        return "date"
    if upper in ("BOOLEAN", "BOOL"):
        return "boolean"
    return "other"


def quote_identifier(name: str) -> str:
    """A DuckDB identifier in double quotes (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


# --- compiling -------------------------------------------------------------------------------

def compile_expression(expr_or_text: Expr | str, *, columns: Mapping[str, str],
                       alias: str = "f") -> tuple[str, list[Any]]:
    """Compile a rule into a boolean SQL condition and its bound parameters.

    Parameters
    ----------
    expr_or_text : Expr or str
        A parsed rule (:func:`~crmlens.segment.expression.parse_expression`) or its text.
    columns : mapping of str to str
        The feature table's columns and their DuckDB types (``{"recency_days": "INTEGER"}``);
        feature names in the rule must be among them (matched exactly, else ignoring case).
    alias : str, default "f"
        The alias of the feature table in the query the condition goes into; it must also
        have a ``customer_id`` column when the rule uses ``segment(...)``.

    Returns
    -------
    sql : str
        The condition, with ``?`` for each parameter; it is never NULL.
    params : list
        The values of the parameters, in order.

    Raises
    ------
    ExpressionError
        Malformed rule, unknown feature (with a "did you mean"), or a value of the wrong type
        for its feature, with the position in the text.
    """
    if not _ALIAS.fullmatch(alias):
        raise ValueError(f"alias must be a plain identifier, not {alias!r}")
    expr = parse_expression(expr_or_text) if isinstance(expr_or_text, str) else expr_or_text
    compiler = _Compiler(expr.text, columns, alias)
    return compiler.node(expr.root), compiler.params


class _Compiler:
    def __init__(self, text: str, columns: Mapping[str, str], alias: str) -> None:
        self.text = text
        self.columns = dict(columns)
        self.alias = alias
        self.params: list[Any] = []
        self.depth = 0

    def node(self, node: Node) -> str:
        self.depth += 1
        if self.depth > MAX_SQL_DEPTH:
            raise ExpressionError("error.segment_expr_too_complex", self.text, node.index,
                                  limit=MAX_SQL_DEPTH)
        try:
            return self._node(node)
        finally:
            self.depth -= 1

    def _node(self, node: Node) -> str:
        if isinstance(node, Comparison):
            column, kind = self._column(node.feature)
            value = self._bind(node.feature, kind, node.value)
            return f"coalesce({column} {node.op} {value}, false)"
        if isinstance(node, InList):
            column, kind = self._column(node.feature)
            values = ", ".join(self._bind(node.feature, kind, v) for v in node.values)
            return f"coalesce({column} {'NOT IN' if node.negated else 'IN'} ({values}), false)"
        if isinstance(node, Between):
            column, kind = self._column(node.feature)
            if kind in ("number", "date"):
                low, high = self._typed(node.feature, kind, node.low), self._typed(
                    node.feature, kind, node.high)
                if low > high:
                    raise ExpressionError("error.segment_expr_empty_range", self.text,
                                          node.low.index, low=node.low.source,
                                          high=node.high.source)
            low_sql = self._bind(node.feature, kind, node.low)
            high_sql = self._bind(node.feature, kind, node.high)
            keyword = "NOT BETWEEN" if node.negated else "BETWEEN"
            return f"coalesce({column} {keyword} {low_sql} AND {high_sql}, false)"
        if isinstance(node, IsNull):
            column, _ = self._column(node.feature)
            return f"({column} IS {'NOT NULL' if node.negated else 'NULL'})"
        if isinstance(node, SegmentRef):
            return self._segment(node)
        if isinstance(node, Not):
            return f"(NOT {self.node(node.operand)})"
        if isinstance(node, BoolOp):
            return "(" + f" {node.op} ".join(self.node(x) for x in node.operands) + ")"
        if isinstance(node, SetOp):
            return self._set_operation(node)
        raise TypeError(f"not a rule node: {node!r}")

    def _set_operation(self, node: SetOp) -> str:
        # Left to right; a run of the same connective stays one flat group, and only a switch
        # (UNION after EXCEPT ...) nests, because DuckDB refuses very deep expressions.
        parts = [self.node(node.first)]
        connective = None
        outer = self.depth
        for op, operand in node.rest:
            joiner = "OR" if op == "UNION" else "AND"
            if connective is not None and joiner != connective:
                parts = ["(" + f" {connective} ".join(parts) + ")"]
                self.depth += 1  # operands from here on sit one level deeper
                if self.depth > MAX_SQL_DEPTH:
                    raise ExpressionError("error.segment_expr_too_complex", self.text,
                                          node.index, limit=MAX_SQL_DEPTH)
            connective = joiner
            sql = self.node(operand)
            parts.append(f"(NOT {sql})" if op == "EXCEPT" else sql)
        self.depth = outer
        return "(" + f" {connective} ".join(parts) + ")"

    def _segment(self, node: SegmentRef) -> str:
        if node.run.kind == "number":
            run_sql = "?"
            self.params.append(int(node.run.value))
        else:
            run_sql = "(SELECT max(run_id) FROM segment_runs WHERE name = ?)"
            self.params.append(str(node.run.value).strip())
        sql = f"SELECT customer_id FROM segments WHERE run_id = {run_sql}"
        if node.labels:
            self.params.extend(str(label.value) for label in node.labels)
            sql += f" AND segment IN ({', '.join('?' for _ in node.labels)})"
        return f"coalesce({self.alias}.customer_id IN ({sql}), false)"

    def _column(self, feature: Feature) -> tuple[str, str]:
        name = feature.name
        if name not in self.columns:
            folded = [c for c in self.columns if c.casefold() == name.casefold()]
            if len(folded) != 1:
                raise self._unknown(feature)
            name = folded[0]
        return f"{self.alias}.{quote_identifier(name)}", column_kind(self.columns[name])

    def _unknown(self, feature: Feature) -> ExpressionError:
        offset = feature.index + (1 if feature.quoted else 0)
        for i, ch in enumerate(feature.name):
            if not ch.isascii() and unicodedata.name(ch, "").startswith(("CYRILLIC", "GREEK")):
                return ExpressionError("error.segment_expr_lookalike", self.text, offset + i,
                                       name=feature.name, char=ch, code=f"U+{ord(ch):04X}")
        by_fold = {c.casefold(): c for c in self.columns}
        close = difflib.get_close_matches(feature.name.casefold(), list(by_fold), n=1,
                                          cutoff=0.6)
        if close:
            return ExpressionError("error.segment_expr_unknown_feature_suggest", self.text,
                                   feature.index, name=feature.name,
                                   suggestion=by_fold[close[0]])
        names = sorted(self.columns)
        available = ", ".join(names[:15]) + (", …" if len(names) > 15 else "")
        return ExpressionError("error.segment_expr_unknown_feature", self.text, feature.index,
                               name=feature.name, available=available or "-")

    def _typed(self, feature: Feature, kind: str, literal: Literal) -> Any:
        """The Python value of ``literal`` for a column of ``kind`` (positioned type error)."""
        if kind == "number" and literal.kind == "number":
            return literal.value
        if kind == "text" and literal.kind == "string":
            return literal.value
        if kind == "boolean" and literal.kind == "boolean":
            return literal.value
        if kind == "date" and literal.kind == "date":
            return literal.value
        if kind == "date" and literal.kind == "string":
            token = Token("string", str(literal.value), literal.index, literal.index)
            return parse_date(self.text, token)
        shown = literal.source[:40]
        if kind == "number":
            raise ExpressionError("error.segment_expr_type_number", self.text, literal.index,
                                  name=feature.name, value=shown)
        if kind == "text":
            raise ExpressionError("error.segment_expr_type_text", self.text, literal.index,
                                  name=feature.name, value=shown)
        if kind == "date":
            raise ExpressionError("error.segment_expr_type_date", self.text, literal.index,
                                  name=feature.name, value=shown)
        if kind == "boolean":
            raise ExpressionError("error.segment_expr_type_boolean", self.text, literal.index,
                                  name=feature.name, value=shown)
        raise ExpressionError("error.segment_expr_type_other", self.text, feature.index,
                              name=feature.name, type=self.columns.get(feature.name, "?"))

    def _bind(self, feature: Feature, kind: str, literal: Literal) -> str:
        self.params.append(self._typed(feature, kind, literal))
        return "?"


# --- running against the workspace ----------------------------------------------------------

def feature_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Columns of ``customer_features`` usable in rules (all but ``as_of``) and their types."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
        [FEATURES_TABLE]).fetchall()
    if not rows:
        raise InputError("error.segment_no_features")
    return {name: dtype for name, dtype in rows if name != "as_of"}


def _resolve_as_of(con: duckdb.DuckDBPyConnection, as_of: date | datetime | str | None) -> date:
    if as_of is None:
        latest = con.execute(f"SELECT max(as_of) FROM {FEATURES_TABLE}").fetchall()[0][0]
        if latest is None:
            raise InputError("error.segment_no_features")
        return latest
    try:
        day = as_of.date() if isinstance(as_of, datetime) else (
            as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of).strip()))
    except ValueError:
        raise InputError("error.segment_bad_as_of", value=str(as_of)[:40]) from None
    found = con.execute(f"SELECT count(*) FROM {FEATURES_TABLE} WHERE as_of = ?",
                        [day]).fetchall()[0][0]
    if not found:
        dates = con.execute(f"SELECT DISTINCT as_of FROM {FEATURES_TABLE} ORDER BY 1 DESC "
                            "LIMIT 5").fetchall()
        raise InputError("error.segment_as_of_missing", as_of=day.isoformat(),
                         available=", ".join(d[0].isoformat() for d in dates) or "-")
    return day


def _check_segments(con: duckdb.DuckDBPyConnection, expr: Expr) -> None:
    """Every ``segment(...)`` names a saved run and labels that run has (positioned errors)."""
    refs = [node for node in expr.walk() if isinstance(node, SegmentRef)]
    if not refs:
        return
    has_table = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'segment_runs' "
        "AND table_schema = current_schema()").fetchall()[0][0]
    for ref in refs:
        run_id = None
        if has_table and ref.run.kind == "number":
            rows = con.execute("SELECT run_id FROM segment_runs WHERE run_id = ?",
                               [int(ref.run.value)]).fetchall()
            run_id = rows[0][0] if rows else None
        elif has_table:
            run_id = con.execute("SELECT max(run_id) FROM segment_runs WHERE name = ?",
                                 [str(ref.run.value).strip()]).fetchall()[0][0]
        if run_id is None:
            names = [r[0] for r in con.execute(
                "SELECT DISTINCT name FROM segment_runs ORDER BY 1 LIMIT 20").fetchall()] \
                if has_table else []
            raise ExpressionError("error.segment_expr_unknown_segmentation", expr.text,
                                  ref.run.index, name=str(ref.run.value)[:60],
                                  available=", ".join(names) or "-")
        if not ref.labels:
            continue
        present = [r[0] for r in con.execute(
            "SELECT DISTINCT segment FROM segments WHERE run_id = ? ORDER BY 1",
            [run_id]).fetchall()]
        for label in ref.labels:
            if label.value not in present:
                raise ExpressionError("error.segment_expr_unknown_label", expr.text,
                                      label.index, label=str(label.value)[:60],
                                      name=str(ref.run.value)[:60],
                                      available=", ".join(present[:30]) or "-")


def _prepare(con: duckdb.DuckDBPyConnection, text: Expr | str,
             as_of: date | datetime | str | None) -> tuple[Expr, str, list[Any], date]:
    """Parse, compile and check a rule; the condition's params follow the as-of param."""
    expr = parse_expression(text) if isinstance(text, str) else text
    sql, params = compile_expression(expr, columns=feature_columns(con))
    _check_segments(con, expr)
    return expr, sql, params, _resolve_as_of(con, as_of)


_BASE = f"WITH f AS (SELECT * FROM {FEATURES_TABLE} WHERE as_of = ?) "


def estimate_size(con: duckdb.DuckDBPyConnection, text: Expr | str, *,
                  as_of: date | datetime | str | None = None) -> dict[str, Any]:
    """How many customers a rule selects, before saving it.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Workspace connection with a ``customer_features`` table.
    text : str or Expr
        The rule.
    as_of : date or str, optional
        The feature date (default: the latest in ``customer_features``).

    Returns
    -------
    dict
        ``n`` (customers selected), ``total`` (customers with features at that date),
        ``share`` (``n / total``, 0 when there are none) and ``as_of``.
    """
    _, sql, params, day = _prepare(con, text, as_of)
    n, total = con.execute(_BASE + f"SELECT count(*) FILTER (WHERE {sql}), count(*) FROM f",
                           [day, *params]).fetchall()[0]
    return {"n": int(n), "share": (n / total) if total else 0.0, "total": int(total),
            "as_of": day}


def select_customers(con: duckdb.DuckDBPyConnection, text: Expr | str, *,
                     as_of: date | datetime | str | None = None) -> pd.DataFrame:
    """The customers a rule selects.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Workspace connection with a ``customer_features`` table.
    text : str or Expr
        The rule.
    as_of : date or str, optional
        The feature date (default: the latest in ``customer_features``).

    Returns
    -------
    pandas.DataFrame
        One column ``customer_id``, sorted.
    """
    _, sql, params, day = _prepare(con, text, as_of)
    return con.execute(_BASE + f"SELECT f.customer_id FROM f WHERE {sql} ORDER BY 1",
                       [day, *params]).df()


def save_rule_segment(con: duckdb.DuckDBPyConnection, name: str, text: Expr | str, *,
                      as_of: date | datetime | str | None = None) -> int:
    """Save the customers a rule selects as a segmentation (method ``"rule"``).

    Every member gets the segment label ``name``, so later rules can refer to it as
    ``segment('name')``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable workspace connection; the caller holds the transaction.
    name : str
        Name of the saved segment.
    text : str or Expr
        The rule (stored in the run's parameters).
    as_of : date or str, optional
        The feature date (default: the latest).

    Returns
    -------
    int
        The run id.
    """
    from crmlens.segment.store import save_segmentation

    expr = parse_expression(text) if isinstance(text, str) else text
    size = estimate_size(con, expr, as_of=as_of)
    labels = select_customers(con, expr, as_of=size["as_of"])
    labels["segment"] = name.strip()
    log.info("rule segment %r: %d of %d customers", name, size["n"], size["total"])
    return save_segmentation(
        con, name=name, method="rule", as_of=size["as_of"], params={"expression": expr.text},
        labels=labels, notes={"n": size["n"], "total": size["total"], "share": size["share"]})


# --- waterfall -------------------------------------------------------------------------------

def _waterfall(con: duckdb.DuckDBPyConnection, rules: Sequence[tuple[str, Expr | str]],
               as_of: date | datetime | str | None,
               default_label: str | None) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    if isinstance(rules, (str, bytes)) or not rules:
        raise InputError("error.segment_waterfall_empty")
    labels: list[str] = []
    for number, rule in enumerate(rules, start=1):
        if not isinstance(rule, (tuple, list)) or len(rule) != 2:
            raise InputError("error.segment_waterfall_rule_shape", number=number)
        label = rule[0]
        if not isinstance(label, str) or not label.strip():
            raise InputError("error.segment_waterfall_label_empty", number=number)
        if label.strip() in labels:
            raise InputError("error.segment_waterfall_label_twice", label=label.strip())
        labels.append(label.strip())
    if default_label is not None and (not default_label.strip() or default_label.strip()
                                      in labels):
        raise InputError("error.segment_waterfall_default_label", label=default_label)
    columns = feature_columns(con)
    conditions: list[str] = []
    params: list[Any] = []
    for number, (label, rule) in enumerate(zip(labels, (r[1] for r in rules)), start=1):
        try:
            expr = parse_expression(rule) if isinstance(rule, str) else rule
            sql, rule_params = compile_expression(expr, columns=columns)
            _check_segments(con, expr)
        except InputError as err:
            raise InputError("error.segment_waterfall_rule_failed", number=number, label=label,
                             detail=err.message()) from err
        conditions.append(sql)
        params.extend(rule_params)
    day = _resolve_as_of(con, as_of)
    flags = ", ".join(f"{sql} AS m{i}" for i, sql in enumerate(conditions, start=1))
    first = " ".join(f"WHEN m{i} THEN {i}" for i in range(1, len(conditions) + 1))
    base = (_BASE + f", m AS (SELECT f.customer_id, {flags} FROM f), "
            f"a AS (SELECT *, CASE {first} END AS rule_no FROM m) ")
    bound = [day, *params]
    # Labels are bound parameters too, and picked in SQL: no per-customer work in Python.
    pick = " ".join(f"WHEN {i} THEN ?" for i in range(1, len(labels) + 1))
    assigned = con.execute(
        base + f"SELECT customer_id, CASE rule_no {pick} ELSE ? END AS segment FROM a"
        + ("" if default_label else " WHERE rule_no IS NOT NULL") + " ORDER BY customer_id",
        [*bound, *labels, default_label.strip() if default_label else None]).df()
    tallies = ", ".join(f"count(*) FILTER (WHERE m{i}), count(*) FILTER (WHERE rule_no = {i})"
                        for i in range(1, len(conditions) + 1))
    row = con.execute(base + f"SELECT count(*), count(*) FILTER (WHERE rule_no IS NULL), "
                      f"{tallies} FROM a", bound).fetchall()[0]
    total, unmatched = int(row[0]), int(row[1])
    counts = []
    for i, label in enumerate(labels):
        matched, taken = int(row[2 + 2 * i]), int(row[3 + 2 * i])
        counts.append({"position": i + 1, "segment": label, "rule": _rule_text(rules[i][1]),
                       "matched": matched, "assigned": taken, "taken_earlier": matched - taken,
                       "share": taken / total if total else 0.0})
    kept = unmatched if default_label else 0
    counts.append({"position": None, "segment": default_label.strip() if default_label else None,
                   "rule": None, "matched": unmatched, "assigned": kept, "taken_earlier": 0,
                   "share": kept / total if total else 0.0})
    table = pd.DataFrame(counts).astype({"position": "Int64"})
    return assigned, table, day


def _rule_text(rule: Expr | str) -> str:
    return rule if isinstance(rule, str) else rule.text


def waterfall(con: duckdb.DuckDBPyConnection, rules: Sequence[tuple[str, Expr | str]], *,
              as_of: date | datetime | str | None = None,
              default_label: str | None = None) -> pd.DataFrame:
    """Mutually exclusive audiences: each customer goes to the first rule it matches.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Workspace connection with a ``customer_features`` table.
    rules : sequence of (label, rule)
        In priority order; labels must be distinct and non-empty.
    as_of : date or str, optional
        The feature date (default: the latest).
    default_label : str, optional
        Label of the customers no rule matches; without it they are left out.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``segment`` (one row per assigned customer, sorted by id).
        ``attrs["counts"]`` is a table with one row per rule — ``position``, ``segment``,
        ``rule``, ``matched`` (customers the rule matches), ``assigned`` (those it gets),
        ``taken_earlier`` (matched but taken by an earlier rule), ``share`` (assigned / all
        customers) — and a last row (``position`` missing) for the customers no rule matched.
        ``attrs["as_of"]`` is the feature date.
    """
    frame, counts, day = _waterfall(con, rules, as_of, default_label)
    frame.attrs["counts"] = counts
    frame.attrs["as_of"] = day
    return frame


def waterfall_counts(con: duckdb.DuckDBPyConnection,
                     rules: Sequence[tuple[str, Expr | str]], *,
                     as_of: date | datetime | str | None = None,
                     default_label: str | None = None) -> pd.DataFrame:
    """The per-rule counts of :func:`waterfall` (its ``attrs["counts"]``) on their own.

    Parameters
    ----------
    con, rules, as_of, default_label
        As for :func:`waterfall`.

    Returns
    -------
    pandas.DataFrame
        ``position``, ``segment``, ``rule``, ``matched``, ``assigned``, ``taken_earlier``,
        ``share``.
    """
    return _waterfall(con, rules, as_of, default_label)[1]


def save_waterfall(con: duckdb.DuckDBPyConnection, name: str,
                   rules: Sequence[tuple[str, Expr | str]], *,
                   as_of: date | datetime | str | None = None,
                   default_label: str | None = None) -> int:
    """Save a :func:`waterfall` as one segmentation (method ``"waterfall"``).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable workspace connection; the caller holds the transaction.
    name : str
        Name of the segmentation (``segment('name', 'label')`` refers to it later).
    rules, as_of, default_label
        As for :func:`waterfall`.

    Returns
    -------
    int
        The run id. The rules are stored in the run's parameters, the per-rule counts in its
        notes, the rule order as the display order of the labels.
    """
    from crmlens.segment.store import save_segmentation

    frame, counts, day = _waterfall(con, rules, as_of, default_label)
    order = list(counts["segment"].dropna())
    records = json.loads(counts.to_json(orient="records"))
    return save_segmentation(
        con, name=name, method="waterfall", as_of=day,
        params={"rules": [{"segment": str(label).strip(), "rule": _rule_text(rule)}
                          for label, rule in rules],
                "default_label": default_label},
        labels=frame, notes={"counts": records}, order=order)
