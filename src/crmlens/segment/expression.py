"""The segment rule language: tokenizer and parser into a small, safe syntax tree.

A rule such as ``recency_days <= 30 AND region IN ('华东', '华北')`` is read into frozen
dataclasses that remember where each piece came from (0-based ``index`` into the text), so every
later error — a parse error here, an unknown feature or a type mismatch in the compiler — points
at the exact character. Nothing here touches a database or builds SQL; the grammar (EBNF) is in
``docs/segment-builder.md``.

The parser is hand written recursive descent with a nesting limit (:data:`MAX_DEPTH`) and a
length limit (:data:`MAX_LENGTH`), so hostile input ends in a positioned
:class:`ExpressionError`, never in a ``RecursionError``. Chains of AND / OR / set operations are
kept flat (n-ary nodes), so a long rule does not build a deep tree either.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Union

from crmlens.errors import InputError

MAX_LENGTH = 100_000  # characters; long IN lists of customer ids stay possible
MAX_DEPTH = 50  # nested parentheses / NOTs; each level costs a handful of Python frames

KEYWORDS = frozenset({
    "AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE", "DATE",
    "UNION", "INTERSECT", "EXCEPT",
})
FUNCTIONS = ("segment",)  # the closed whitelist of callable names
COMPARISONS = ("=", "==", "!=", "<>", "<", "<=", ">", ">=")

# Fullwidth ASCII (U+FF01..U+FF5E) and the ideographic space are what a Chinese input method
# types for ( ) = < > , digits and letters; outside literals they mean their ASCII twin. The
# mapping is one character to one, so positions stay those of the user's text. Fullwidth quotes
# and the semicolon are left out on purpose: they stay errors with a hint.
_FULLWIDTH = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH["\u3000"] = " "
for _kept in ("\uff07", "\uff02", "\uff1b"):  # ＇ ＂ ；
    del _FULLWIDTH[_kept]
_SMART_QUOTES = ("\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2032\u2033"  # ‘’‚‛“”„‟′″
                 "\uff07\uff02\u300c\u300d")  # ＇＂「」
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_CONTEXT_WIDTH = 60  # characters of the offending line shown either side of the caret


class ExpressionError(InputError):
    """A segment rule that cannot be read or compiled, with the position of the fault.

    Parameters
    ----------
    key : str
        Catalogue key of the message; its text carries ``{position}`` and ``{context}``.
    text : str
        The rule as the user wrote it.
    index : int
        0-based index of the offending character (``len(text)`` for "at the end").
    **params
        Further values of the message.

    Attributes
    ----------
    position : int
        1-based character position shown to the user.
    """

    def __init__(self, key: str, /, text: str, index: int, **params: object) -> None:
        self.position = index + 1
        self.text = text
        super().__init__(key, position=index + 1, context=caret_context(text, index), **params)


def caret_context(text: str, index: int) -> str:
    """Two display lines: the line of ``text`` holding ``index`` and a caret under it.

    Long lines are cut to a window around the caret; wide (CJK) characters count as two columns
    so the caret lines up in a terminal. Control characters are shown as ``?``.
    """
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    end = len(text) if end < 0 else end
    left = max(start, index - _CONTEXT_WIDTH)
    right = min(end, index + _CONTEXT_WIDTH)
    before = _printable(text[left:index])
    shown = _printable(text[left:right])
    prefix = "…" if left > start else ""
    suffix = "…" if right < end else ""
    return f"\n  {prefix}{shown}{suffix}\n  {' ' * _width(prefix + before)}^"


def _printable(part: str) -> str:
    return "".join(" " if ch == "\t" else "?" if unicodedata.category(ch) in ("Cc", "Cf")
                   else ch for ch in part)


def _width(part: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in part)


# --- tokens ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ident, qident, keyword, number, string, op or end."""

    kind: str
    value: str
    index: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens (raises :class:`ExpressionError` on a bad character)."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError("error.segment_expr_too_long", text[:200], 0, length=len(text),
                              limit=MAX_LENGTH)
    norm = "".join(_FULLWIDTH.get(ch, ch) for ch in text)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = norm[i]
        if _is_control(ch):
            raise ExpressionError("error.segment_expr_control_char", text, i,
                                  code=f"U+{ord(ch):04X}")
        if ch.isspace():
            i += 1
        elif ch == "'":
            value, j = _read_quoted(text, i, "'", "error.segment_expr_unclosed_string")
            tokens.append(Token("string", value, i, j))
            i = j
        elif ch == '"':
            value, j = _read_quoted(text, i, '"', "error.segment_expr_unclosed_identifier")
            if not value:
                raise ExpressionError("error.segment_expr_empty_identifier", text, i)
            tokens.append(Token("qident", value, i, j))
            i = j
        elif ch.isascii() and (ch.isdigit() or (ch == "." and norm[i + 1:i + 2].isdigit())):
            match = _NUMBER.match(norm, i)
            j = match.end()
            if j < n and _is_ident_char(norm[j]):
                raise ExpressionError("error.segment_expr_bad_number", text, i,
                                      value=text[i:_ident_end(norm, j)])
            tokens.append(Token("number", norm[i:j], i, j))
            i = j
        elif ch.isalpha() or ch == "_":
            j = _ident_end(norm, i)
            word = norm[i:j]
            kind = "keyword" if word.upper() in KEYWORDS else "ident"
            tokens.append(Token(kind, word.upper() if kind == "keyword" else word, i, j))
            i = j
        elif norm.startswith(("<=", ">=", "!=", "<>", "=="), i):
            tokens.append(Token("op", norm[i:i + 2], i, i + 2))
            i += 2
        elif ch in "=<>(),-":
            tokens.append(Token("op", ch, i, i + 1))
            i += 1
        elif ch in _SMART_QUOTES:
            raise ExpressionError("error.segment_expr_smart_quote", text, i, char=ch)
        else:
            raise ExpressionError("error.segment_expr_bad_char", text, i, char=_printable(ch),
                                  code=f"U+{ord(ch):04X}")
    tokens.append(Token("end", "", n, n))
    return tokens


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _ident_end(norm: str, i: int) -> int:
    j = i
    while j < len(norm) and _is_ident_char(norm[j]):
        j += 1
    return j


def _read_quoted(text: str, i: int, quote: str, unclosed_key: str) -> tuple[str, int]:
    """Read a ``'...'`` / ``"..."`` literal from the original text; a doubled quote escapes."""
    parts: list[str] = []
    j = i + 1
    while True:
        k = text.find(quote, j)
        if k < 0:
            if unclosed_key == "error.segment_expr_unclosed_string":
                raise ExpressionError("error.segment_expr_unclosed_string", text, i)
            raise ExpressionError("error.segment_expr_unclosed_identifier", text, i)
        parts.append(text[j:k])
        if text.startswith(quote * 2, k):
            parts.append(quote)
            j = k + 2
            continue
        value = "".join(parts)
        for offset, ch in enumerate(value):
            if _is_control(ch):
                # the offset inside the literal is shifted by escapes; find the real index
                raise ExpressionError("error.segment_expr_control_char", text,
                                      text.index(ch, i + 1), code=f"U+{ord(ch):04X}")
        return value, k + 1


# --- syntax tree -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    """A constant: ``kind`` is number, string, date or boolean; ``value`` its Python value."""

    kind: str
    value: object
    source: str
    index: int


@dataclass(frozen=True)
class Feature:
    """A feature (column) name as written; checked against the real columns when compiled."""

    name: str
    quoted: bool
    index: int


@dataclass(frozen=True)
class Comparison:
    """``feature op value``."""

    feature: Feature
    op: str
    value: Literal
    index: int


@dataclass(frozen=True)
class InList:
    """``feature [NOT] IN (v, ...)``."""

    feature: Feature
    values: tuple[Literal, ...]
    negated: bool
    index: int


@dataclass(frozen=True)
class Between:
    """``feature [NOT] BETWEEN low AND high`` (both ends included)."""

    feature: Feature
    low: Literal
    high: Literal
    negated: bool
    index: int


@dataclass(frozen=True)
class IsNull:
    """``feature IS [NOT] NULL``."""

    feature: Feature
    negated: bool
    index: int


@dataclass(frozen=True)
class SegmentRef:
    """``segment(name_or_run_id, label, ...)``: membership in a saved segmentation."""

    run: Literal
    labels: tuple[Literal, ...]
    index: int


@dataclass(frozen=True)
class Not:
    """``NOT operand`` (the complement: a rule with a missing value is false, never unknown)."""

    operand: Node
    index: int


@dataclass(frozen=True)
class BoolOp:
    """``a AND b AND ...`` or ``a OR b OR ...`` (``op`` is AND or OR), kept flat."""

    op: str
    operands: tuple[Node, ...]
    index: int


@dataclass(frozen=True)
class SetOp:
    """``first (UNION|INTERSECT|EXCEPT) x ...``, applied left to right."""

    first: Node
    rest: tuple[tuple[str, Node], ...]
    index: int


Node = Union[Comparison, InList, Between, IsNull, SegmentRef, Not, BoolOp, SetOp]


@dataclass(frozen=True)
class Expr:
    """A parsed rule: the original ``text`` (for positioned errors) and the tree ``root``."""

    text: str
    root: Node

    def walk(self):
        """Every node of the tree, parents before children (iterative, no recursion)."""
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, Not):
                stack.append(node.operand)
            elif isinstance(node, BoolOp):
                stack.extend(reversed(node.operands))
            elif isinstance(node, SetOp):
                stack.extend(reversed([op for _, op in node.rest]))
                stack.append(node.first)


# --- parser ----------------------------------------------------------------------------------

def parse_expression(text: str) -> Expr:
    """Parse a segment rule into a safe syntax tree.

    Parameters
    ----------
    text : str
        The rule, e.g. ``"recency_days <= 30 AND region IN ('华东', '华北')"`` or
        ``"segment('vip') EXCEPT segment('rfm', 'Lost')"``. Keywords are case-insensitive.

    Returns
    -------
    Expr
        The text and the tree of its conditions.

    Raises
    ------
    ExpressionError
        (an :class:`~crmlens.errors.InputError`) when the rule is malformed; the message names
        the 1-based character position and shows the text with a caret under the fault.
    """
    if not isinstance(text, str):
        raise TypeError(f"a segment rule is a str, not {type(text).__name__}")
    if not text.strip():
        raise InputError("error.segment_expr_empty")
    return Expr(text=text, root=_Parser(text, tokenize(text)).parse())


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def _advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _is(self, kind: str, *values: str) -> bool:
        token = self.tok
        return token.kind == kind and (not values or token.value in values)

    def _expect_op(self, symbol: str) -> Token:
        if self._is("op", symbol):
            return self._advance()
        token = self.tok
        if token.kind == "end":
            raise ExpressionError("error.segment_expr_expected_at_end", self.text, token.index,
                                  expected=symbol)
        raise ExpressionError("error.segment_expr_expected_token", self.text, token.index,
                              expected=symbol, found=self._shown(token))

    def _shown(self, token: Token) -> str:
        return _printable(self.text[token.index:token.end])[:40]

    def _enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("error.segment_expr_too_deep", self.text, token.index,
                                  limit=MAX_DEPTH)

    # grammar
    def parse(self) -> Node:
        node = self._set_expr()
        token = self.tok
        if token.kind != "end":
            if token.kind == "op" and token.value == ")":
                raise ExpressionError("error.segment_expr_unbalanced", self.text, token.index)
            raise ExpressionError("error.segment_expr_trailing", self.text, token.index,
                                  found=self._shown(token))
        return node

    def _set_expr(self) -> Node:
        start = self.tok.index
        first = self._set_term()
        rest = []
        while self._is("keyword", "UNION", "EXCEPT"):
            op = self._advance().value
            rest.append((op, self._set_term()))
        return SetOp(first, tuple(rest), start) if rest else first

    def _set_term(self) -> Node:
        start = self.tok.index
        first = self._or()
        rest = []
        while self._is("keyword", "INTERSECT"):
            self._advance()
            rest.append(("INTERSECT", self._or()))
        return SetOp(first, tuple(rest), start) if rest else first

    def _or(self) -> Node:
        start = self.tok.index
        operands = [self._and()]
        while self._is("keyword", "OR"):
            self._advance()
            operands.append(self._and())
        return BoolOp("OR", tuple(operands), start) if len(operands) > 1 else operands[0]

    def _and(self) -> Node:
        start = self.tok.index
        operands = [self._not()]
        while self._is("keyword", "AND"):
            self._advance()
            operands.append(self._not())
        return BoolOp("AND", tuple(operands), start) if len(operands) > 1 else operands[0]

    def _not(self) -> Node:
        if self._is("keyword", "NOT"):
            token = self._advance()
            self._enter(token)
            operand = self._not()
            self.depth -= 1
            return Not(operand, token.index)
        return self._primary()

    def _primary(self) -> Node:
        token = self.tok
        if token.kind == "op" and token.value == "(":
            self._advance()
            self._enter(token)
            node = self._set_expr()
            if not self._is("op", ")"):
                if self.tok.kind == "end":
                    raise ExpressionError("error.segment_expr_unclosed_paren", self.text,
                                          token.index)
                self._expect_op(")")
            self._advance()
            self.depth -= 1
            return node
        nxt = self.tokens[self.pos + 1] if token.kind != "end" else token
        if token.kind == "ident" and nxt.kind == "op" and nxt.value == "(":
            return self._call()
        if token.kind in ("ident", "qident"):
            return self._predicate()
        if token.kind == "end":
            raise ExpressionError("error.segment_expr_expected_condition_end", self.text,
                                  token.index)
        raise ExpressionError("error.segment_expr_expected_condition", self.text, token.index,
                              found=self._shown(token))

    def _call(self) -> SegmentRef:
        name = self._advance()
        if name.value.lower() not in FUNCTIONS:
            raise ExpressionError("error.segment_expr_unknown_function", self.text, name.index,
                                  name=name.value, functions=", ".join(FUNCTIONS))
        self._advance()  # "("
        args: list[Literal] = []
        if not self._is("op", ")"):
            args.append(self._value("("))
            while self._is("op", ","):
                comma = self._advance()
                args.append(self._value(comma.value))
        self._expect_op(")")
        if not args or args[0].kind not in ("string", "number") or any(
                a.kind != "string" for a in args[1:]):
            raise ExpressionError("error.segment_expr_segment_args", self.text, name.index)
        run = args[0]
        if run.kind == "number" and not (isinstance(run.value, int) and run.value > 0):
            raise ExpressionError("error.segment_expr_segment_args", self.text, run.index)
        if run.kind == "string" and not str(run.value).strip():
            raise ExpressionError("error.segment_expr_segment_args", self.text, run.index)
        return SegmentRef(run, tuple(args[1:]), name.index)

    def _predicate(self) -> Node:
        token = self._advance()
        feature = Feature(token.value, token.kind == "qident", token.index)
        start = token.index
        op = self.tok
        if op.kind == "op" and op.value in COMPARISONS:
            self._advance()
            if self._is("keyword", "NULL"):
                null = self._advance()
                raise ExpressionError("error.segment_expr_null_comparison", self.text,
                                      null.index, name=feature.name,
                                      negation="NOT " if op.value in ("!=", "<>") else "")
            symbol = "=" if op.value == "==" else "!=" if op.value == "<>" else op.value
            return Comparison(feature, symbol, self._value(op.value), start)
        negated = False
        if self._is("keyword", "NOT"):
            self._advance()
            negated = True
            if not self._is("keyword", "IN", "BETWEEN"):
                raise self._expected_operator(self.tok, "NOT")
        if self._is("keyword", "IN"):
            self._advance()
            self._expect_op("(")
            values = [self._value("(")]
            while self._is("op", ","):
                comma = self._advance()
                values.append(self._value(comma.value))
            self._expect_op(")")
            return InList(feature, tuple(values), negated, start)
        if self._is("keyword", "BETWEEN"):
            self._advance()
            low = self._value("BETWEEN")
            if not self._is("keyword", "AND"):
                token = self.tok
                if token.kind == "end":
                    raise ExpressionError("error.segment_expr_expected_at_end", self.text,
                                          token.index, expected="AND")
                raise ExpressionError("error.segment_expr_expected_token", self.text,
                                      token.index, expected="AND", found=self._shown(token))
            self._advance()
            high = self._value("AND")
            return Between(feature, low, high, negated, start)
        if self._is("keyword", "IS"):
            self._advance()
            is_not = False
            if self._is("keyword", "NOT"):
                self._advance()
                is_not = True
            if not self._is("keyword", "NULL"):
                token = self.tok
                if token.kind == "end":
                    raise ExpressionError("error.segment_expr_expected_at_end", self.text,
                                          token.index, expected="NULL")
                raise ExpressionError("error.segment_expr_expected_token", self.text,
                                      token.index, expected="NULL", found=self._shown(token))
            self._advance()
            return IsNull(feature, is_not, start)
        raise self._expected_operator(op, self.text[token.index:token.end])

    def _expected_operator(self, token: Token, after: str) -> ExpressionError:
        if token.kind == "end":
            return ExpressionError("error.segment_expr_expected_operator_end", self.text,
                                   token.index, after=after)
        return ExpressionError("error.segment_expr_expected_operator", self.text, token.index,
                               after=after, found=self._shown(token))

    def _value(self, after: str) -> Literal:
        token = self.tok
        if token.kind == "string":
            self._advance()
            return Literal("string", token.value, self.text[token.index:token.end], token.index)
        if token.kind == "keyword" and token.value in ("TRUE", "FALSE"):
            self._advance()
            return Literal("boolean", token.value == "TRUE", token.value, token.index)
        if token.kind == "keyword" and token.value == "DATE":
            self._advance()
            literal = self.tok
            if literal.kind != "string":
                raise self._expected_value(literal, "DATE")
            self._advance()
            return Literal("date", parse_date(self.text, literal), self.text[
                token.index:literal.end], token.index)
        negative = False
        if token.kind == "op" and token.value == "-":
            self._advance()
            negative = True
            if self.tok.kind != "number":
                raise self._expected_value(self.tok, "-")
        if self.tok.kind == "number":
            number = self._advance()
            value = _number_value(self.text, number, negative)
            return Literal("number", value, self.text[token.index:number.end], token.index)
        raise self._expected_value(token, after)

    def _expected_value(self, token: Token, after: str) -> ExpressionError:
        if token.kind == "end":
            return ExpressionError("error.segment_expr_expected_value_end", self.text,
                                   token.index, after=after)
        if token.kind == "ident":  # region = 华东: text without its quotes
            return ExpressionError("error.segment_expr_unquoted_text", self.text, token.index,
                                   value=self._shown(token))
        return ExpressionError("error.segment_expr_expected_value", self.text, token.index,
                               after=after, found=self._shown(token))


def _number_value(text: str, token: Token, negative: bool) -> int | float:
    source = token.value
    if re.fullmatch(r"\d+", source):
        value: int | float = int(source)
        if value >= 2**63:  # beyond BIGINT: compare as a double rather than overflow
            value = float(source)
    else:
        value = float(source)
    if value in (float("inf"), float("-inf")):
        raise ExpressionError("error.segment_expr_number_range", text, token.index,
                              value=source[:40])
    return -value if negative else value


def parse_date(text: str, token: Token):
    """The :class:`datetime.date` of a ``'YYYY-MM-DD'`` string token (positioned error if not)."""
    from datetime import date

    value = str(token.value).strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ExpressionError("error.segment_expr_bad_date", text, token.index,
                              value=value[:40]) from None
