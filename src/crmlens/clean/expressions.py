"""Type-aware SQL expressions that turn a raw column into a clean value.

Raw columns from CSV are text; from Parquet, SQL or JSON they may already be numbers or
timestamps. Each builder returns the cheapest correct expression for the column's type.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmlens.workspace.store import quote_ident

_INT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
              "UINTEGER", "UBIGINT", "UHUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


def _is_int(t: str) -> bool:
    return t.upper() in _INT_TYPES


def _is_number(t: str) -> bool:
    t = t.upper()
    return t in _INT_TYPES or t in _FLOAT_TYPES or t.startswith("DECIMAL")


def _is_temporal(t: str) -> bool:
    t = t.upper()
    return t.startswith("TIMESTAMP") or t == "DATE"


@dataclass(frozen=True)
class RawColumn:
    """A source column: its name and DuckDB type in the raw table."""

    name: str
    type: str

    @property
    def ref(self) -> str:
        return quote_ident(self.name)

    @property
    def is_text(self) -> bool:
        return self.type.upper() == "VARCHAR"

    @property
    def is_number(self) -> bool:
        return _is_number(self.type)

    @property
    def is_temporal(self) -> bool:
        return _is_temporal(self.type)


def present(col: RawColumn) -> str:
    """True when the raw cell holds something (not null, not blank, not a null token)."""
    if col.is_text:
        return f"crm_present({col.ref})"
    if col.is_number and not _is_int(col.type):
        return f"({col.ref} IS NOT NULL AND NOT isnan({col.ref}))"
    return f"({col.ref} IS NOT NULL)"


def blank(col: RawColumn) -> str:
    """Cheap emptiness test used for whole-row blank detection."""
    if col.is_text:
        return f"(nullif(trim({col.ref}), '') IS NULL)"
    return f"({col.ref} IS NULL)"


def text(col: RawColumn) -> str:
    if col.is_text:
        return f"crm_text({col.ref})"
    return f"crm_text(CAST({col.ref} AS VARCHAR))"


def identifier(col: RawColumn) -> str:
    """An id as text: '17850.0' and 17850.0 both become '17850'."""
    if col.is_text:
        return f"crm_id({col.ref})"
    if _is_int(col.type):
        return f"CAST({col.ref} AS VARCHAR)"
    if col.is_number:
        return (f"CASE WHEN {col.ref} = floor({col.ref}) AND abs({col.ref}) < 1e18 "
                f"THEN CAST(CAST({col.ref} AS BIGINT) AS VARCHAR) "
                f"WHEN NOT isnan({col.ref}) THEN CAST({col.ref} AS VARCHAR) END")
    return f"crm_id(CAST({col.ref} AS VARCHAR))"


def number(col: RawColumn) -> str:
    if col.is_number:
        if _is_int(col.type):
            return f"CAST({col.ref} AS DOUBLE)"
        return f"CASE WHEN isfinite(CAST({col.ref} AS DOUBLE)) THEN CAST({col.ref} AS DOUBLE) END"
    if col.is_text:
        return f"crm_number({col.ref})"
    return f"crm_number(CAST({col.ref} AS VARCHAR))"


def timestamp(col: RawColumn, *, dayfirst: bool) -> str:
    fn = "crm_ts_dayfirst" if dayfirst else "crm_ts_monthfirst"
    if col.type.upper().startswith("TIMESTAMP WITH TIME ZONE") or col.type.upper() == "TIMESTAMPTZ":
        return f"crm_ts_checked(timezone('UTC', {col.ref}))"
    if col.is_temporal:
        return f"crm_ts_checked(CAST({col.ref} AS TIMESTAMP))"
    if col.is_text:
        return f"{fn}({col.ref})"
    return f"{fn}(CAST({col.ref} AS VARCHAR))"


def boolean(col: RawColumn) -> str:
    if col.type.upper() == "BOOLEAN":
        return col.ref
    if col.is_number:
        return f"CASE WHEN {col.ref} = 1 THEN true WHEN {col.ref} = 0 THEN false END"
    return f"crm_bool({col.ref})"


def lit(text_value: str) -> str:
    return "'" + text_value.replace("'", "''") + "'"


def original_json(columns: list[RawColumn]) -> str:
    """The raw row (alias ``r``) as a JSON object, for the rejected table."""
    parts = ", ".join(f"{lit(c.name)}, r.{c.ref}" for c in columns)
    return f"json_object({parts})" if columns else "json_object()"



class StagePlan:
    """Builds a layered parse query so no costly expression is ever computed twice.

    DuckDB inlines macro arguments: a macro that uses its argument twice, called on an
    expression, evaluates that expression twice (and nested macros multiply it). So each
    messy text value goes through levels of sub-queries, and every macro that repeats an
    argument gets a column reference:

    1. ``__v``: the normalised text (``crm_value``), once per column;
    2. numbers: the plain cast ``__f`` and, only where it fails, the text stripped of
       currency signs ``__s``; dates: the ISO fast path ``__tf`` and, only where it fails,
       separators unified ``__tn``;
    3. numbers: ``__n`` = the stripped text parsed; dates: ``__t`` = every other format;
    4. (in the caller's query) the final value, range- and finiteness-checked.
    """

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._levels: list[list[str]] = [[], [], []]
        self._done: set[str] = set()

    def value(self, col: RawColumn) -> str:
        """Reference to the normalised text of a text column."""
        if col.name not in self._values:
            alias = f"__v{len(self._values)}"
            self._values[col.name] = alias
            self._levels[0].append(f"crm_value({col.ref}) AS {alias}")
        return self._values[col.name]

    def number(self, col: RawColumn) -> str:
        if not col.is_text:
            return number(col)
        v = self.value(col)
        i = v[3:]
        if f"n{i}" not in self._done:
            self._done.add(f"n{i}")
            self._levels[1] += [f"try_cast({v} AS DOUBLE) AS __f{i}",
                                f"crm_money_strip({v}) AS __s{i}"]
            self._levels[2].append(f"crm_num_stripped(__s{i}) AS __n{i}")
        return f"coalesce(crm_finite(__f{i}), crm_finite(__n{i}))"

    def timestamp(self, col: RawColumn, *, dayfirst: bool) -> str:
        if not col.is_text:
            return timestamp(col, dayfirst=dayfirst)
        v = self.value(col)
        i = v[3:]
        key = f"t{i}{'d' if dayfirst else 'm'}"
        if key not in self._done:
            self._done.add(key)
            fn = "crm_ts_dayfirst_n" if dayfirst else "crm_ts_monthfirst_n"
            if f"tf{i}" not in self._done:
                self._done.add(f"tf{i}")
                self._levels[1] += [f"crm_ts_fast({v}) AS __tf{i}",
                                    f"crm_ts_normed({v}) AS __tn{i}"]
            self._levels[2].append(
                f"coalesce(__tf{i}, CASE WHEN __tf{i} IS NULL AND {v} IS NOT NULL "
                f"THEN {fn}({v}, __tn{i}) END) AS __{key}")
        return f"crm_ts_checked(__{key})"

    def present(self, col: RawColumn) -> str:
        return f"({self.value(col)} IS NOT NULL)" if col.is_text else present(col)

    def source(self, raw: str) -> str:
        """The inner queries: the raw table plus the levels of intermediate values."""
        query = raw
        for level in self._levels:
            if level:
                query = f"(SELECT *, {', '.join(level)} FROM {query})"
        return query
