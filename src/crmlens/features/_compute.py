"""Computing the features: resolve the inputs, check them, run the SQL of :mod:`._sql`."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Union

import duckdb

from crmlens.errors import InputError
from crmlens.features import _sql
from crmlens.features._catalogue import definition
from crmlens.i18n import t
from crmlens.progress import NO_PROGRESS, Progress, watch_query

log = logging.getLogger(__name__)

Source = Union[str, Path, duckdb.DuckDBPyRelation, None]
DEFAULT_INTO = "_crm_features"
_VIEWS = {"transactions": "_crm_feat_src_tx", "customers": "_crm_feat_src_cust",
          "events": "_crm_feat_src_ev"}


@dataclass
class FeatureResult:
    """Features computed into a temporary table of the connection.

    Attributes
    ----------
    as_of : datetime.date
        Only transactions with ``ts < as_of`` were used.
    n_customers : int
        Rows of the table (customers with at least one purchase order before ``as_of``).
    columns : list of str
        Feature columns, in order (``as_of`` and ``customer_id`` come first in the table).
    shares : list of dict
        The dynamic share columns: ``name``, ``family`` (channel/category), ``value`` (the data
        value; None for an empty channel or for "other") and ``other``.
    table : str
        The temporary table holding the rows (``con.table(result.table)``).
    seconds : float
        Wall time of the computation.
    summary : list of dict
        Per feature: mean, median, min, max and missing share (filled by :func:`summarise`).
    """

    as_of: date
    n_customers: int
    columns: list[str]
    shares: list[dict[str, Any]]
    table: str = DEFAULT_INTO
    seconds: float = 0.0
    summary: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None

    def label(self, column: str, lang: str | None = "en") -> str:
        """The label of a column in ``lang`` (a share column names its value)."""
        d = definition(column)
        if not d.family:
            return d.label(lang)
        share = next((s for s in self.shares if s["name"] == column), None)
        if share is None or share["other"]:
            value = t("features.value.other", lang=lang)
        elif share["value"] is None:
            value = t("features.value.unknown", lang=lang)
        else:
            value = share["value"]
        return d.label(lang, value)

    def to_dict(self, lang: str | None = "en") -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "n_customers": self.n_customers,
                "columns": self.columns, "shares": self.shares,
                "labels": {c: self.label(c, lang) for c in self.columns},
                "seconds": round(self.seconds, 3), "summary": self.summary,
                "run_id": self.run_id}


def _relation(con: duckdb.DuckDBPyConnection, kind: str, source: Source) -> str | None:
    """SQL text naming the relation of ``kind``; None when there is none (or it is empty)."""
    if source is None:
        exists = con.execute("SELECT count(*) FROM information_schema.tables "
                             "WHERE table_name = ?", [kind]).fetchall()[0][0]
        if not exists:
            return None
        return kind
    if isinstance(source, duckdb.DuckDBPyRelation):
        source.create_view(_VIEWS[kind], replace=True)
        return _VIEWS[kind]
    text = str(source)
    if isinstance(source, Path) or text.lower().endswith(".parquet") or "*" in text:
        if "*" not in text and not Path(text).exists():
            raise InputError("error.file_missing", path=text)
        return f"read_parquet({_sql.literal(text)})"
    # Any other string names a table or view of the connection.
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                         [text]).fetchall()[0][0]
    if not exists:
        raise InputError("error.features_no_table", table=text)
    return '"' + text.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, rel: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}


def _has_rows(con: duckdb.DuckDBPyConnection, rel: str | None) -> bool:
    return rel is not None and con.execute(f"SELECT 1 FROM {rel} LIMIT 1").fetchall() != []


def parse_as_of(value: str | date | datetime | None) -> date | None:
    """An as-of date from a ``YYYY-MM-DD`` string, a date or a datetime (its date)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError("error.features_bad_date", value=str(value)) from None


@dataclass
class _Plan:
    source: str
    as_of: date
    side: _sql.SideTables


def _plan(con: duckdb.DuckDBPyConnection, *, as_of: Any, source: Source, customers: Source,
          events: Source) -> _Plan:
    rel = _relation(con, "transactions", source)
    if rel is None:
        raise InputError("error.features_no_transactions")
    missing = [c for c in _sql.REQUIRED_COLUMNS if c not in _columns(con, rel)]
    if missing:
        raise InputError("error.features_missing_columns", columns=", ".join(missing))
    day = parse_as_of(as_of)
    n, first, last = con.execute(f"SELECT count(*), min(ts), max(ts) FROM {rel}").fetchall()[0]
    if not n:
        raise InputError("error.features_no_transactions")
    if day is None:
        day = last.date() + timedelta(days=1)
    if day <= first.date():
        raise InputError("error.features_as_of_before_data", as_of=day.isoformat(),
                         first=first.date().isoformat())
    side = _sql.SideTables()
    cust = _relation(con, "customers", customers)
    if _has_rows(con, cust):
        cols = _columns(con, cust)
        if "customer_id" in cols:
            side = _sql.SideTables(customers=cust, customer_columns=frozenset(cols))
    ev = _relation(con, "events", events)
    if _has_rows(con, ev) and {"customer_id", "ts", "event_type", "value"} <= _columns(con, ev):
        side = _sql.SideTables(side.customers, side.customer_columns, ev)
    return _Plan(rel, day, side)


def _shares(rows_channel: list[tuple], rows_category: list[tuple],
            null_category: bool) -> list[_sql.ShareColumn]:
    out: list[_sql.ShareColumn] = []
    # All channels empty says nothing: no channel columns then.
    if rows_channel and not (len(rows_channel) == 1 and rows_channel[0][0] is None):
        out += _sql.share_columns("channel", [r[0] for r in rows_channel[:_sql.TOP_N]],
                                  more=len(rows_channel) > _sql.TOP_N)
    if rows_category:
        out += _sql.share_columns("category", [r[0] for r in rows_category[:_sql.TOP_N]],
                                  more=len(rows_category) > _sql.TOP_N or null_category)
    return out


def _discover(con: duckdb.DuckDBPyConnection) -> list[_sql.ShareColumn]:
    """The share columns: channels and top categories by gross spend (from the values table)."""
    channels = con.execute(_sql.discovery_sql("channel")).fetchall()
    categories = con.execute(_sql.discovery_sql("category")).fetchall()
    null_category = con.execute(_sql.null_category_sql()).fetchall() != []
    return _shares(channels, categories, null_category)


def _full_step(con: duckdb.DuckDBPyConnection, plan: _Plan, into: str, *,
               execute: bool) -> tuple[list[_sql.ShareColumn], list[str]]:
    """The statements of the full step and its share columns.

    The values table is always created: the share columns and the id counts are read from it
    (and the number of customers, for the bit-set budget, from one quick scan). With
    ``execute`` every statement runs; without, only the values table is made (the caller
    drops it). The distinct counts run first, while no other stage table takes memory, and
    the order table is dropped once rolled up per customer.
    """
    first = _sql.values_sql(plan.source, plan.as_of)
    con.execute(first)
    shares = _discover(con)
    n_products, n_categories = con.execute(_sql.id_counts_sql()).fetchall()[0]
    n_customers = con.execute(_sql.customers_sql(plan.source, plan.as_of)).fetchall()[0][0]
    rest = _sql.distinct_sql(plan.source, plan.as_of, n_products=n_products,
                             n_categories=n_categories,
                             parts=_sql.distinct_parts(n_products, n_categories, n_customers))
    rest += [_sql.orders_sql(plan.source, plan.as_of), *_sql.timing_sql(),
             _sql.money_sql(plan.source, plan.as_of, shares),
             _sql.final_sql(into, plan.as_of, shares, plan.side)]
    if execute:
        for statement in rest:
            con.execute(statement)
    return shares, [first, *rest]


def feature_sql(con: duckdb.DuckDBPyConnection, *, as_of: str | date | None = None,
                source: Source = None, customers: Source = None, events: Source = None,
                into: str = DEFAULT_INTO) -> str:
    """The SQL script that computes the features (what ``crmlens features --show-sql`` prints).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding the tables (a workspace connection, or any with ``source``).
    as_of : str (YYYY-MM-DD) or date, optional
        Default: the day after the date of the last transaction.
    source, customers, events : str, Path or DuckDBPyRelation, optional
        As for :func:`compute_features`.
    into : str, default "_crm_features"
        Temporary table the script creates.

    Returns
    -------
    str
        Statements separated by ``;``. The share columns depend on the data (the channels and
        top categories by spend before ``as_of``), and so does how the distinct products are
        counted (the number of product ids and customers): the first statement (the values
        table) is run to look them up, then dropped again.
    """
    plan = _plan(con, as_of=as_of, source=source, customers=customers, events=events)
    try:
        _, statements = _full_step(con, plan, into, execute=False)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute(_sql.cleanup_sql())
    statements.append(_sql.cleanup_sql())
    return ";\n\n".join(statements) + ";\n"


def compute_features(con: duckdb.DuckDBPyConnection, *, as_of: str | date | None = None,
                     source: Source = None, customers: Source = None, events: Source = None,
                     rfm_only: bool = False, into: str = DEFAULT_INTO,
                     progress: Progress = NO_PROGRESS) -> FeatureResult:
    """Compute one row of features per customer as of a date, point-in-time correct.

    Only transactions with ``ts < as_of`` and a customer id are used; a customer gets a row
    when they have at least one purchase order before ``as_of``. Definitions:
    ``docs/features.md`` (or :func:`feature_catalogue`).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Where the SQL runs. The rows land in the temporary table ``into`` of this connection.
    as_of : str (YYYY-MM-DD) or date, optional
        Default: the day after the date of the last transaction of ``source``.
    source : str, Path or DuckDBPyRelation, optional
        The transactions (columns as the workspace ``transactions`` table; at least
        ``order_id, customer_id, ts, product_id, category, quantity, amount, channel,
        is_return, line_type``). Default: the ``transactions`` table of ``con``. A path
        ending in ``.parquet`` (or a glob) is read with ``read_parquet``; another string names
        a table or view of ``con``.
    customers, events : str, Path or DuckDBPyRelation, optional
        Customer attributes and events, same forms. Default: the ``customers`` / ``events``
        tables of ``con`` when they exist and have rows.
    rfm_only : bool, default False
        Compute only ``recency_days``, ``frequency`` and ``monetary`` (one aggregation).
    into : str, default "_crm_features"
        Name of the temporary table to (re)create.
    progress : Progress, optional
        Receives the stage and DuckDB's query progress.

    Returns
    -------
    FeatureResult

    Raises
    ------
    crmlens.errors.InputError
        No transactions, a bad or too early ``as_of``, missing columns, or no customer with a
        purchase before ``as_of``.

    Examples
    --------
    >>> import duckdb                                                     # doctest: +SKIP
    >>> con = duckdb.connect()                                            # doctest: +SKIP
    >>> res = compute_features(con, source="transactions.parquet")        # doctest: +SKIP
    >>> con.table(res.table).df().head()                                  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    plan = _plan(con, as_of=as_of, source=source, customers=customers, events=events)
    progress.stage("progress.features")
    shares: list[_sql.ShareColumn] = []
    # Row order of the temporary tables does not matter; not keeping it saves memory.
    keep_order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("SET preserve_insertion_order = false")
    with watch_query(con, progress), _restore(con, "preserve_insertion_order", keep_order):
        if rfm_only:
            con.execute(_sql.rfm_sql(into, plan.source, plan.as_of))
            columns = list(_sql.RFM_COLUMNS)
        else:
            try:
                shares, _ = _full_step(con, plan, into, execute=True)
            finally:
                # In an aborted transaction the drop fails too; the rollback removes them.
                with contextlib.suppress(duckdb.Error):
                    con.execute(_sql.cleanup_sql())
            columns = list(_sql.STATIC_TYPES) + [c.name for c in shares]
    n = con.execute(f"SELECT count(*) FROM {into}").fetchall()[0][0]
    if not n:
        con.execute(f"DROP TABLE IF EXISTS {into}")
        raise InputError("error.features_no_customers", as_of=plan.as_of.isoformat())
    log.info("features as of %s: %d customers", plan.as_of, n)
    return FeatureResult(
        as_of=plan.as_of, n_customers=int(n), columns=columns, table=into,
        shares=[{"name": c.name, "family": c.family, "value": c.value, "other": c.other}
                for c in shares],
        seconds=time.perf_counter() - t0)


@contextlib.contextmanager
def _restore(con: duckdb.DuckDBPyConnection, setting: str, value: Any):
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"SET {setting} = {'true' if value else 'false'}")


def summarise(con: duckdb.DuckDBPyConnection, result: FeatureResult,
              lang: str | None = "en") -> list[dict[str, Any]]:
    """Per feature of ``result``: label, unit, mean, median, min, max, missing share.

    Categorical features give their most common value as ``mode`` instead of the moments.
    """
    rows = []
    for name in result.columns:
        d = definition(name)
        q = '"' + name + '"'
        if d.kind == "categorical":
            mode, missing = con.execute(
                f"SELECT mode({q}), avg(CAST({q} IS NULL AS DOUBLE)) "
                f"FROM {result.table}").fetchall()[0]
            stats = {"mode": mode}
        else:
            mean, median, lo, hi, missing = con.execute(
                f"SELECT avg({q}), median({q}), min({q}), max({q}), "
                f"avg(CAST({q} IS NULL AS DOUBLE)) FROM {result.table}").fetchall()[0]
            stats = {"mean": mean, "median": median, "min": lo, "max": hi}
        rows.append({"name": name, "label": result.label(name, lang), "unit": d.unit,
                     "kind": d.kind, **stats, "missing_share": missing})
    result.summary = rows
    return rows
