"""Data-quality summary of a workspace: what was read, kept, rejected and flagged, and why.

:func:`quality_summary` is the one place that turns the ``sources``, ``rejected`` and clean
tables into figures and plain-language findings; the ``crmlens quality`` command prints it and
the HTML report renders it. It only reads, and it reads each clean table in one grouped pass
(plus one pass over its flags), so it stays fast on tens of millions of rows.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from crmlens.i18n import has, t
from crmlens.workspace.schema import KINDS

logger = logging.getLogger(__name__)

# Clean columns described per table, each with the mapping role that feeds it. Derived columns
# (line_type, return_of_order_id, flags, attributes) are left out: they have no source column.
COLUMN_ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    "transactions": (
        ("order_id", "order_id"), ("customer_id", "customer_id"), ("ts", "timestamp"),
        ("product_id", "product_id"), ("product_name", "product_name"),
        ("category", "category"), ("quantity", "quantity"), ("unit_price", "unit_price"),
        ("amount", "amount"), ("channel", "channel"), ("region", "region"),
        ("is_return", "return_flag"),
    ),
    "customers": (
        ("customer_id", "customer_id"), ("name", "name"), ("email", "email"),
        ("phone", "phone"), ("gender", "gender"), ("birth_date", "birth_date"),
        ("age", "age"), ("income", "income"), ("region", "region"),
        ("signup_date", "signup_date"), ("labels", "label"),
    ),
    "events": (
        ("customer_id", "customer_id"), ("ts", "timestamp"), ("event_type", "event_type"),
        ("value", "value"), ("channel", "channel"), ("order_id", "order_id"),
        ("product_id", "product_id"), ("text", "text"),
    ),
}

# The column whose range is the source's date span.
DATE_COLUMNS = {"transactions": "ts", "customers": "signup_date", "events": "ts"}

# Roles the analyses cannot do without; most of them are NOT NULL in the store, but a
# transaction's customer id may be missing (anonymous), and then customer-level results shrink.
REQUIRED_ROLES = {
    "transactions": ("customer_id", "order_id", "timestamp", "amount"),
    "customers": ("customer_id",),
    "events": ("customer_id", "timestamp"),
}

# Share of missing values from which a column is "mostly missing".
MOSTLY_MISSING = 0.5

# How many findings the workspace-level list keeps, and how many codes a non-product finding
# names before it says "…".
TOP_FINDINGS = 12
NAMED_CODES = 5

# Rejections and flags that are routine housekeeping rather than something to look into.
_INFO_REASONS = frozenset({"blank_row", "duplicate_row", "dropped_by_rule"})
_INFO_FLAGS = frozenset({"anonymous", "cancellation", "return", "non_product", "zero_price",
                         "derived_order_id"})

# Column types whose min and max mean something (strings sort, but their range says little).
_RANGE_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE",
                "DECIMAL", "DATE", "TIMESTAMP")


def format_count(n: float) -> str:
    """A count with thousands separators: ``9288`` -> ``'9,288'``."""
    return f"{round(n):,}"


def format_share(x: float | None, digits: int = 1) -> str:
    """A share as a percentage; tiny non-zero shares read ``<0.1%`` rather than ``0.0%``."""
    if x is None or not math.isfinite(x):
        return "–"
    floor = 10 ** -(digits + 2)
    if 0 < x < floor:
        return f"<{floor:.{digits}%}"
    return f"{x:,.{digits}%}"


def t_count(key: str, count: int, /, *, lang: str | None = None, **params: Any) -> str:
    """Translate ``key`` for ``count`` things: its ``.one`` variant, if any, when count is 1.

    English needs a singular ("1 line has"); Chinese has none, and its ``.one`` texts repeat the
    plural ones, so both languages keep the same keys.
    """
    if count == 1 and has(f"{key}.one"):
        key = f"{key}.one"
    return t(key, lang=lang, **params)


def quality_summary(con: duckdb.DuckDBPyConnection, *, lang: str | None = None) -> dict[str, Any]:
    """Summarise the quality of the loaded data, per source and for the whole workspace.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to the workspace store; only read. Missing or empty tables are fine.
    lang : str, optional
        Language of the findings' texts (``en`` or ``zh``); default: the current language.

    Returns
    -------
    dict
        JSON-serialisable: ``{"sources": [...], "totals": {...}, "findings": [...]}``. Each
        source has its identity (``source_id``, ``kind``, ``name``, ``location``, ``format``,
        ``options``, ``mapping``), its accounting (``rows_read`` = ``rows_loaded`` +
        ``rows_rejected``), ``rejected_by_reason``, ``flags_by_reason``, per-column
        ``columns`` statistics, ``date_span``, ``non_product_codes`` (transactions) and
        ``findings``. A finding is ``{"code", "severity", "count", "text"}``; the
        workspace-level ``findings`` are the most important ones of all sources, warnings
        first, each also naming its ``source_id`` and ``source``.
    """
    present = store_tables(con)
    sources = _read_sources(con) if "sources" in present else {}
    rejected = _rejected_counts(con) if "rejected" in present else {}
    stats: dict[int, _TableStats] = {}
    flags: dict[int, dict[str, int]] = {}
    non_product: dict[int, list[dict[str, Any]]] = {}
    for kind in KINDS:
        if kind not in present:
            continue
        stats.update(_table_stats(con, kind, present[kind]))
        if "flags" in present[kind]:
            flags.update(_flag_counts(con, kind))
    if "transactions" in present and {"line_type", "product_id"} <= present["transactions"].keys():
        non_product = _non_product_codes(con, present["transactions"])

    orphans = (set(rejected) | set(stats)) - set(sources)
    if orphans:
        logger.warning("rows of source ids %s have no entry in the sources table", sorted(orphans))
        kinds = _rejected_kinds(con) if rejected else {}
        for sid in orphans:
            sources[sid] = _unregistered(sid, stats.get(sid), rejected.get(sid), kinds.get(sid))
    entries = [
        _source_entry(sources[sid], stats.get(sid), rejected.get(sid, {}), flags.get(sid, {}),
                      non_product.get(sid, []), lang)
        for sid in sorted(sources)
    ]
    return {"sources": entries, "totals": _totals(entries), "findings": _top_findings(entries)}


def rejected_examples(con: duckdb.DuckDBPyConnection, *, per_reason: int = 3
                      ) -> list[dict[str, Any]]:
    """The first rejected rows of each source and reason, to show what went wrong.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to the workspace store.
    per_reason : int, default 3
        Rows kept per (source, reason), lowest source row numbers first.

    Returns
    -------
    list of dict
        ``{"source_id", "reason", "source_row", "detail", "original"}`` sorted by source,
        reason and row; ``original`` is the parsed JSON of the row's source values (usually a
        ``{column: value}`` mapping). Empty when there is no ``rejected`` table.
    """
    if "rejected" not in store_tables(con):
        return []
    rows = con.execute(
        """
        SELECT source_id, reason, source_row, detail, original
        FROM rejected
        QUALIFY row_number() OVER (PARTITION BY source_id, reason ORDER BY source_row) <= ?
        ORDER BY source_id, reason, source_row
        """,
        [per_reason],
    ).fetchall()
    return [
        {"source_id": sid, "reason": reason, "source_row": row, "detail": detail,
         "original": _parse_json(original, default=None)}
        for sid, reason, row, detail, original in rows
    ]


# --- reading the store -------------------------------------------------------------------


@dataclass
class _TableStats:
    """One source's figures from one grouped pass over its clean table."""

    kind: str
    rows: int
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)


def store_tables(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """``{table: {column: type}}`` of the tables and views in the store's current schema.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to the workspace store.

    Returns
    -------
    dict
        Column types (DuckDB type names) by column, by table; empty for an empty store.
    """
    rows = con.execute(
        """
        SELECT table_name, column_name, data_type
        FROM information_schema.columns
        WHERE table_catalog = current_database() AND table_schema = current_schema()
        ORDER BY table_name, ordinal_position
        """
    ).fetchall()
    tables: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        tables.setdefault(table, {})[column] = dtype
    return tables


def _read_sources(con: duckdb.DuckDBPyConnection) -> dict[int, dict[str, Any]]:
    rows = con.execute(
        """
        SELECT source_id, kind, name, location, format, options, mapping, columns,
               rows_read, rows_loaded, rows_rejected, ingested_at
        FROM sources ORDER BY source_id
        """
    ).fetchall()
    sources = {}
    for (sid, kind, name, location, fmt, options, mapping, columns, read, loaded, rejected,
         ingested_at) in rows:
        sources[sid] = {
            "source_id": sid, "kind": kind, "name": name, "location": location, "format": fmt,
            "options": _parse_json(options, default={}),
            "mapping": _parse_json(mapping, default={}),
            "source_columns": _parse_json(columns, default=[]),
            "rows_read": int(read), "rows_loaded": int(loaded), "rows_rejected": int(rejected),
            "ingested_at": _jsonable(ingested_at),
        }
    return sources


def _unregistered(sid: int, stats: _TableStats | None, rejected: dict[str, int] | None,
                  kind: str | None) -> dict[str, Any]:
    """A stand-in for rows whose source is not in ``sources`` (e.g. a half-written workspace)."""
    loaded = stats.rows if stats else 0
    dropped = sum((rejected or {}).values())
    return {
        "source_id": sid, "kind": stats.kind if stats else (kind or "transactions"),
        "name": f"#{sid}",
        "location": "", "format": "", "options": {}, "mapping": {}, "source_columns": [],
        "rows_read": loaded + dropped, "rows_loaded": loaded, "rows_rejected": dropped,
        "ingested_at": None,
    }


def _rejected_counts(con: duckdb.DuckDBPyConnection) -> dict[int, dict[str, int]]:
    rows = con.execute(
        "SELECT source_id, reason, count(*) AS n FROM rejected GROUP BY ALL "
        "ORDER BY source_id, n DESC, reason"
    ).fetchall()
    counts: dict[int, dict[str, int]] = {}
    for sid, reason, n in rows:
        counts.setdefault(sid, {})[reason] = int(n)
    return counts


def _rejected_kinds(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """The kind of each source id in ``rejected``, for sources missing from ``sources``."""
    rows = con.execute("SELECT source_id, any_value(kind) FROM rejected GROUP BY 1").fetchall()
    return dict(rows)


def _flag_counts(con: duckdb.DuckDBPyConnection, kind: str) -> dict[int, dict[str, int]]:
    rows = con.execute(
        f"""
        SELECT source_id, flag, count(*) AS n
        FROM (SELECT source_id, unnest(flags) AS flag FROM "{kind}")
        GROUP BY ALL ORDER BY source_id, n DESC, flag
        """
    ).fetchall()
    counts: dict[int, dict[str, int]] = {}
    for sid, flag, n in rows:
        counts.setdefault(sid, {})[flag] = int(n)
    return counts


def _table_stats(con: duckdb.DuckDBPyConnection, kind: str, types: dict[str, str]
                 ) -> dict[int, _TableStats]:
    """Row count and, per described column, missing / distinct / min / max, per source."""
    columns = [c for c, _ in COLUMN_ROLES[kind] if c in types]
    ranged = {c for c in columns if types[c].upper().startswith(_RANGE_TYPES)}
    parts = ["count(*)"]
    for c in columns:
        parts += [f'count(*) - count("{c}")', f'count(DISTINCT "{c}")']
        if c in ranged:
            parts += [f'min("{c}")', f'max("{c}")']
    rows = con.execute(
        f'SELECT source_id, {", ".join(parts)} FROM "{kind}" GROUP BY source_id'
    ).fetchall()
    result = {}
    for sid, n, *values in rows:
        it = iter(values)
        stats = _TableStats(kind=kind, rows=int(n))
        for c in columns:
            col = {"missing": int(next(it)), "distinct": int(next(it)), "min": None, "max": None}
            if c in ranged:
                col["min"], col["max"] = _jsonable(next(it)), _jsonable(next(it))
            stats.columns[c] = col
        result[sid] = stats
    return result


def _non_product_codes(con: duckdb.DuckDBPyConnection, types: dict[str, str]
                       ) -> dict[int, list[dict[str, Any]]]:
    # The filter leaves a handful of rows, so mode() for the usual name costs nothing.
    name = "mode(product_name)" if "product_name" in types else "NULL"
    rows = con.execute(
        f"""
        SELECT source_id, product_id, {name} AS product_name, line_type,
               count(*) AS n, sum(amount) AS amount
        FROM transactions WHERE line_type <> 'product'
        GROUP BY source_id, product_id, line_type
        ORDER BY source_id, n DESC, product_id
        """
    ).fetchall()
    codes: dict[int, list[dict[str, Any]]] = {}
    for sid, pid, pname, line_type, n, amount in rows:
        codes.setdefault(sid, []).append({
            "product_id": pid, "product_name": pname, "line_type": line_type, "rows": int(n),
            "amount": None if amount is None else round(amount, 6),  # drop float noise
        })
    return codes


# --- assembling a source ------------------------------------------------------------------


def _source_entry(src: dict[str, Any], stats: _TableStats | None, rejected: dict[str, int],
                  flags: dict[str, int], non_product: list[dict[str, Any]], lang: str | None
                  ) -> dict[str, Any]:
    kind = src["kind"]
    entry = {k: src[k] for k in ("source_id", "kind", "name", "location", "format", "options",
                                 "mapping", "rows_read", "rows_loaded", "rows_rejected")}
    entry["source_columns"] = src["source_columns"]
    entry["ingested_at"] = src["ingested_at"]
    entry["rejected_by_reason"] = dict(rejected)
    entry["flags_by_reason"] = dict(flags)
    entry["columns"] = _column_entries(kind, src["mapping"], stats, src["rows_loaded"])
    entry["date_span"] = _date_span(kind, stats)
    entry["non_product_codes"] = non_product if kind == "transactions" else []
    stored = {"loaded": stats.rows if stats else 0, "rejected": sum(rejected.values())}
    entry["findings"] = _findings(entry, stored, lang)
    return entry


def _column_entries(kind: str, mapping: dict[str, Any], stats: _TableStats | None,
                    rows_loaded: int) -> list[dict[str, Any]]:
    if kind not in COLUMN_ROLES:
        return []
    rows = stats.rows if stats else rows_loaded
    entries = []
    for column, role in COLUMN_ROLES[kind]:
        col = stats.columns.get(column) if stats else None
        if stats and col is None:
            continue  # the table has no such column (an older or newer schema)
        col = col or {"missing": 0, "distinct": 0, "min": None, "max": None}
        entries.append({
            "column": column, "role": role, "source_column": mapping.get(role),
            "missing": col["missing"], "missing_share": _share(col["missing"], rows),
            "distinct": col["distinct"], "min": col["min"], "max": col["max"],
        })
    return entries


def _date_span(kind: str, stats: _TableStats | None) -> dict[str, str] | None:
    col = stats.columns.get(DATE_COLUMNS.get(kind, "")) if stats else None
    if not col or col["min"] is None:
        return None
    return {"min": col["min"], "max": col["max"]}


def _totals(entries: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rows_read", "rows_loaded", "rows_rejected")
    by_kind: dict[str, dict[str, int]] = {}
    for e in entries:
        k = by_kind.setdefault(e["kind"], {"sources": 0, **dict.fromkeys(keys, 0)})
        k["sources"] += 1
        for key in keys:
            k[key] += e[key]
    totals: dict[str, Any] = {"sources": len(entries)}
    totals.update({key: sum(e[key] for e in entries) for key in keys})
    totals["by_kind"] = by_kind
    return totals


# --- findings -----------------------------------------------------------------------------


def _finding(code: str, severity: str, count: int, text: str) -> dict[str, Any]:
    return {"code": code, "severity": severity, "count": int(count), "text": text}


def _findings(entry: dict[str, Any], stored: dict[str, int], lang: str | None
              ) -> list[dict[str, Any]]:
    """Plain-language findings for one source, warnings first, then by size."""
    found = _accounting_findings(entry, stored, lang)
    found += _rejection_findings(entry, lang)
    found += _flag_findings(entry, lang)
    found += _missing_findings(entry, lang)
    found.sort(key=lambda f: (f["severity"] != "warning", -f["count"]))
    span = _span_finding(entry, lang)  # context rather than a problem: always last
    return found + ([span] if span else [])


def _accounting_findings(entry: dict[str, Any], stored: dict[str, int], lang: str | None
                         ) -> list[dict[str, Any]]:
    read, loaded, dropped = entry["rows_read"], entry["rows_loaded"], entry["rows_rejected"]
    found = []
    if read != loaded + dropped:
        found.append(_finding("accounting_mismatch", "warning", abs(read - loaded - dropped), t(
            "quality.finding.accounting_mismatch", lang=lang, read=format_count(read),
            loaded=format_count(loaded), rejected=format_count(dropped))))
    if (stored["loaded"], stored["rejected"]) != (loaded, dropped):
        found.append(_finding("store_mismatch", "warning",
                              abs(stored["loaded"] - loaded) + abs(stored["rejected"] - dropped),
                              t("quality.finding.store_mismatch", lang=lang,
                                loaded=format_count(loaded), rejected=format_count(dropped),
                                stored_loaded=format_count(stored["loaded"]),
                                stored_rejected=format_count(stored["rejected"]))))
    if read > 0 and loaded == 0:
        found.append(_finding("nothing_loaded", "warning", read, t_count(
            "quality.finding.nothing_loaded", read, lang=lang, read=format_count(read))))
    return found


def _rejection_findings(entry: dict[str, Any], lang: str | None) -> list[dict[str, Any]]:
    found = []
    for reason, n in entry["rejected_by_reason"].items():
        params = {"count": format_count(n), "share": format_share(_share(n, entry["rows_read"])),
                  "reason": reason_label(reason, lang)}
        key = f"quality.finding.rejected.{reason}"
        text = t_count(key if has(key) else "quality.finding.rejected_other", n, lang=lang,
                       **params)
        severity = "info" if reason in _INFO_REASONS else "warning"
        found.append(_finding(f"rejected.{reason}", severity, n, text))
    return found


def _flag_findings(entry: dict[str, Any], lang: str | None) -> list[dict[str, Any]]:
    found = []
    for flag, n in entry["flags_by_reason"].items():
        params = {"count": format_count(n),
                  "share": format_share(_share(n, entry["rows_loaded"])),
                  "flag": flag_label(flag, lang)}
        if flag == "non_product":
            params["codes"] = _codes_text(entry["non_product_codes"], lang)
        key = f"quality.finding.flag.{flag}"
        text = t_count(key if has(key) else "quality.finding.flag_other", n, lang=lang, **params)
        severity = "info" if flag in _INFO_FLAGS else "warning"
        found.append(_finding(f"flag.{flag}", severity, n, text))
    return found


def _codes_text(codes: list[dict[str, Any]], lang: str | None) -> str:
    """``POSTAGE (POST) 1,126, Manual (M) 465, …``: the commonest non-product codes."""
    parts = []
    for c in codes[:NAMED_CODES]:
        name, pid = c["product_name"], c["product_id"]
        label = f"{name} ({pid})" if name and pid and name != pid else (name or pid or "–")
        parts.append(f"{label} {format_count(c['rows'])}")
    if len(codes) > NAMED_CODES:
        parts.append("…")
    return t("quality.list_separator", lang=lang).join(parts)


def _missing_findings(entry: dict[str, Any], lang: str | None) -> list[dict[str, Any]]:
    required = REQUIRED_ROLES.get(entry["kind"], ())
    found = []
    for col in entry["columns"]:
        share = col["missing_share"]
        if not col["missing"] or share is None or share < MOSTLY_MISSING:
            continue
        params = {"column": role_label(col["role"], lang), "count": format_count(col["missing"]),
                  "share": format_share(share), "source_column": col["source_column"] or ""}
        if col["role"] in required:
            found.append(_finding("required_mostly_missing", "warning", col["missing"],
                                  t_count("quality.finding.required_mostly_missing",
                                          col["missing"], lang=lang, **params)))
        elif col["source_column"]:
            # An unmapped optional column is empty by design; a mapped one is a surprise.
            found.append(_finding("mapped_mostly_missing", "info", col["missing"],
                                  t_count("quality.finding.mapped_mostly_missing",
                                          col["missing"], lang=lang, **params)))
    return found


def _span_finding(entry: dict[str, Any], lang: str | None) -> dict[str, Any] | None:
    span = entry["date_span"]
    if not span:
        return None
    start, end = _as_date(span["min"]), _as_date(span["max"])
    days = (end - start).days + 1
    text = t_count(f"quality.finding.date_span.{entry['kind']}", days, lang=lang,
                   start=start.isoformat(), end=end.isoformat(), days=format_count(days))
    return _finding("date_span", "info", entry["rows_loaded"], text)


def _top_findings(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The workspace's most important findings: warnings first, then the largest counts."""
    found = [
        {**f, "source_id": e["source_id"], "source": e["name"]}
        for e in entries for f in e["findings"]
    ]
    found.sort(key=lambda f: (f["severity"] != "warning", f["code"] == "date_span", -f["count"]))
    return found[:TOP_FINDINGS]


# --- labels -------------------------------------------------------------------------------


def reason_label(reason: str, lang: str | None = None) -> str:
    """Short name of a reject reason in ``lang``; unknown reasons show their code."""
    key = f"quality.reason.{reason}"
    return t(key, lang=lang) if has(key) else reason


def flag_label(flag: str, lang: str | None = None) -> str:
    """Short name of a flag in ``lang``; unknown flags show their code."""
    key = f"quality.flag.{flag}"
    return t(key, lang=lang) if has(key) else flag


def role_label(role: str | None, lang: str | None = None) -> str:
    """Name of a column role in ``lang``; unknown roles show their code."""
    key = f"quality.role.{role}"
    return t(key, lang=lang) if role and has(key) else (role or "")


# --- values -------------------------------------------------------------------------------


def _share(n: int, total: int) -> float | None:
    return n / total if total else None


def _as_date(value: str) -> date:
    return datetime.fromisoformat(value).date()


def _jsonable(value: Any) -> Any:
    """DuckDB values as JSON values: ISO strings for times, None for NaN and infinities."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)  # Decimal, UUID, intervals ...


def _parse_json(text: str | None, *, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        logger.warning("ignoring a JSON value the store could not parse: %.80r", text)
        return default
