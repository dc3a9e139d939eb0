"""One ingest step: read a source, map its columns, clean it, account for every row.

Everything happens in one transaction on the workspace connection: if anything fails - bad
input, a kill, an accounting mismatch - the workspace keeps its previous state.
"""

from __future__ import annotations

import json
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from crmlens.clean.customers import clean_customers
from crmlens.clean.events import clean_events
from crmlens.clean.expressions import RawColumn
from crmlens.clean.options import CleanOptions
from crmlens.clean.transactions import ORDERS_VIEW, clean_transactions, match_returns
from crmlens.errors import CrmlensError, InputError
from crmlens.ingest.dates import detect_dayfirst
from crmlens.ingest.fingerprint import file_fingerprint
from crmlens.ingest.readers import (
    RawStage, SourceSpec, raw_table_name, resolve_source, sample_values, stage_raw,
)
from crmlens.ingest.roles import (
    ROLES, RoleMapping, apply_overrides, check_required, detect_roles, parse_overrides,
)
from crmlens.progress import NO_PROGRESS, Progress, watch_query
from crmlens.workspace.runs import RunRecord
from crmlens.workspace.schema import KINDS

log = logging.getLogger(__name__)

CLEANERS = {
    "transactions": clean_transactions,
    "customers": clean_customers,
    "events": clean_events,
}
DATE_ROLES = ("timestamp", "birth_date", "signup_date")


class AccountingError(CrmlensError):
    """Rows read differ from rows loaded + rejected: a bug, never shown as success."""

    exit_code = 70


@dataclass
class IngestResult:
    """What an ingest did, per source."""

    source_id: int
    kind: str
    name: str
    location: str
    format: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    flags_by_reason: dict[str, int]
    mapping: dict[str, Any]
    how: dict[str, str]
    options: dict[str, Any]
    unmapped_columns: list[str]
    replaced_sources: list[int]
    run_id: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_clean_options(settings: Mapping[str, Any], *, dayfirst: bool,
                        keep_duplicates: bool | None, drop_flags: Sequence[str] | None,
                        now: datetime | None = None) -> CleanOptions:
    clean = settings.get("clean", {})
    return CleanOptions(
        dayfirst=dayfirst,
        keep_duplicates=bool(clean.get("keep_duplicates", False)
                             if keep_duplicates is None else keep_duplicates),
        drop_flags=tuple(clean.get("drop_flags", []) if drop_flags is None else drop_flags),
        outlier_fence=float(clean.get("outlier_fence", 3.0)),
        now=now or datetime.now(),
        line_type_rules=list(clean.get("line_types", [])),
    )


def _choose_dayfirst(con: duckdb.DuckDBPyConnection, stage: RawStage, mapping: RoleMapping,
                     requested: bool | None, setting: Any, notes: list[str]) -> bool:
    if requested is not None:
        return requested
    if isinstance(setting, bool):
        return setting
    cols = {c.name: c for c in stage.columns}
    votes = [detect_dayfirst(con, stage.table, cols[mapping.roles[r]])
             for r in DATE_ROLES if r in mapping.roles]
    decided = [v for v in votes if v is not None]
    if decided:
        return decided[0]
    return False


def _mapping_from_json(kind: str, data: Mapping[str, Any], columns: Sequence[str]) -> dict[str, str | None]:
    """Saved roles that still fit this source's columns."""
    out: dict[str, str | None] = {}
    for role, column in data.items():
        if role not in ROLES[kind]:
            continue
        if isinstance(column, list):
            kept = [c for c in column if c in columns]
            if kept:
                out[role] = kept[0]
        elif column in columns:
            out[role] = column
    return out


def _counts(con: duckdb.DuckDBPyConnection, kind: str, source_id: int) -> tuple[int, int, dict, dict]:
    loaded = con.execute(f"SELECT count(*) FROM {kind} WHERE source_id = ?", [source_id]).fetchone()[0]
    reasons = dict(con.execute(
        "SELECT reason, count(*) FROM rejected WHERE source_id = ? GROUP BY 1 ORDER BY 2 DESC",
        [source_id]).fetchall())
    flags = dict(con.execute(
        f"SELECT f, count(*) FROM (SELECT unnest(flags) AS f FROM {kind} WHERE source_id = ?) "
        "GROUP BY 1 ORDER BY 2 DESC", [source_id]).fetchall())
    return int(loaded), int(sum(reasons.values())), reasons, flags


def delete_source(con: duckdb.DuckDBPyConnection, source_id: int, kind: str) -> None:
    con.execute(f"DELETE FROM {kind} WHERE source_id = ?", [source_id])
    con.execute("DELETE FROM rejected WHERE source_id = ?", [source_id])
    con.execute("DELETE FROM sources WHERE source_id = ?", [source_id])
    con.execute(f"DROP TABLE IF EXISTS {raw_table_name(kind, source_id)}")


def run_clean(con: duckdb.DuckDBPyConnection, kind: str, *, stage: RawStage, source_id: int,
              mapping: RoleMapping, options: CleanOptions, progress: Progress) -> None:
    """Clean one raw table into its clean table, and refresh what depends on all sources."""
    progress.stage("progress.cleaning", kind=kind)
    with watch_query(con, progress):
        CLEANERS[kind](con, raw=stage.table, source_id=source_id, mapping=mapping,
                       columns=stage.columns, options=options)
        if kind == "transactions":
            progress.stage("progress.netting_returns")
            match_returns(con, source_id)
            con.execute(ORDERS_VIEW)


def ingest_source(
    con: duckdb.DuckDBPyConnection,
    settings: Mapping[str, Any],
    kind: str,
    source: str | Path,
    *,
    table: str | None = None,
    query: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    mapping: Sequence[str] | Mapping[str, str | None] = (),
    dayfirst: bool | None = None,
    keep_duplicates: bool | None = None,
    drop_flags: Sequence[str] | None = None,
    replace: bool = False,
    progress: Progress = NO_PROGRESS,
) -> IngestResult:
    """Ingest one source into the workspace open on ``con`` (inside the caller's transaction).

    See :meth:`crmlens.Workspace.ingest` for the parameters.
    """
    if kind not in KINDS:
        raise InputError("error.unknown_kind", kind=kind, kinds=", ".join(KINDS))
    spec: SourceSpec = resolve_source(source, table=table, query=query, sheet=sheet)
    run = RunRecord(step=f"ingest.{kind}")
    run_id = run.reserve_id(con)
    inputs: dict[str, Any] = {"location": spec.location, "format": spec.format}
    hashing = None
    if spec.path is not None:
        # hashlib and DuckDB both release the GIL: hash the file while DuckDB reads it.
        hashing = ThreadPoolExecutor(max_workers=1)
        fingerprint = hashing.submit(file_fingerprint, spec.path)
        inputs["bytes"] = spec.path.stat().st_size
    try:
        source_id = int(con.execute("SELECT coalesce(max(source_id), 0) + 1 FROM sources").fetchone()[0])
        raw = raw_table_name(kind, source_id)
        notes: list[str] = []
        with tempfile.TemporaryDirectory(prefix="crmlens-") as tmp:
            stage = stage_raw(con, spec, raw, source_id=source_id, kind=kind, tmpdir=Path(tmp),
                              encoding=encoding, delimiter=delimiter, progress=progress)
        if stage.rows_read == 0:
            raise InputError("error.no_rows", path=spec.location)
        if stage.malformed == stage.rows_read:
            raise InputError("error.all_malformed", path=spec.location,
                             delimiter=stage.options.get("delimiter", ","))
        names = [c.name for c in stage.columns]
        cols = {c.name: c for c in stage.columns}
        samples = sample_values(con, raw, stage.columns)
        detected = detect_roles(
            kind, names, samples,
            numeric_columns=frozenset(c.name for c in stage.columns if c.is_number),
            temporal_columns=frozenset(c.name for c in stage.columns if c.is_temporal),
        )
        saved = settings.get("mappings", {}).get(kind, {})
        if saved:
            apply_overrides(detected, _mapping_from_json(kind, saved, names), "saved")
        user = (parse_overrides(list(mapping), kind, names) if not isinstance(mapping, Mapping)
                else parse_overrides([f"{k}={v or ''}" for k, v in mapping.items()], kind, names))
        role_map = apply_overrides(detected, user, "user")
        check_required(role_map, spec.location, names)

        chosen_dayfirst = _choose_dayfirst(con, stage, role_map, dayfirst,
                                           settings.get("clean", {}).get("dayfirst", "auto"), notes)
        options = build_clean_options(settings, dayfirst=chosen_dayfirst,
                                      keep_duplicates=keep_duplicates, drop_flags=drop_flags)

        replaced = [int(r[0]) for r in con.execute(
            "SELECT source_id FROM sources WHERE kind = ? AND (location = ? OR ?)",
            [kind, spec.location, replace]).fetchall()]
        for old in replaced:
            delete_source(con, old, kind)

        run_clean(con, kind, stage=stage, source_id=source_id, mapping=role_map, options=options,
                  progress=progress)
        loaded, rejected, reasons, flags = _counts(con, kind, source_id)
        if loaded + rejected != stage.rows_read:
            raise AccountingError("error.accounting", path=spec.location, read=stage.rows_read,
                                  loaded=loaded, rejected=rejected)
        if hashing is not None:
            inputs["fingerprint"] = fingerprint.result()
        used_options = {**stage.options, "dayfirst": options.dayfirst,
                        "keep_duplicates": options.keep_duplicates,
                        "drop_flags": list(options.drop_flags)}
        con.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP, ?)",
            [source_id, kind, spec.name, spec.location, spec.format, inputs.get("fingerprint"),
             json.dumps(used_options), json.dumps(role_map.as_dict(), ensure_ascii=False),
             json.dumps(names, ensure_ascii=False), stage.rows_read, loaded, rejected, run_id],
        )
    finally:
        if hashing is not None:
            hashing.shutdown(wait=False)
    run.params = {"kind": kind, "source": spec.location, "options": used_options,
                  "mapping": role_map.as_dict(), "replaced_sources": replaced}
    run.inputs = [inputs]
    run.row_counts = {"read": stage.rows_read, "loaded": loaded, "rejected": rejected,
                      "rejected_by_reason": reasons}
    run.write(con)
    return IngestResult(
        source_id=source_id, kind=kind, name=spec.name, location=spec.location,
        format=spec.format, rows_read=stage.rows_read, rows_loaded=loaded,
        rows_rejected=rejected, rejected_by_reason=reasons, flags_by_reason=flags,
        mapping=role_map.as_dict(), how=dict(role_map.how), options=used_options,
        unmapped_columns=[n for n in names if n not in role_map.mapped_columns()],
        replaced_sources=replaced, run_id=run_id, notes=notes,
    )


def reclean(
    con: duckdb.DuckDBPyConnection, settings: Mapping[str, Any], *,
    source_ids: Sequence[int] | None = None, dayfirst: bool | None = None,
    keep_duplicates: bool | None = None, drop_flags: Sequence[str] | None = None,
    progress: Progress = NO_PROGRESS,
) -> list[dict[str, Any]]:
    """Clean stored raw tables again with new settings, without reading the files again."""
    rows = con.execute(
        "SELECT source_id, kind, location, mapping, options, rows_read FROM sources "
        + ("WHERE list_contains(?, source_id) " if source_ids else "")
        + "ORDER BY source_id", [list(source_ids)] if source_ids else []).fetchall()
    run = RunRecord(step="clean")
    run.reserve_id(con)
    done = []
    for source_id, kind, location, mapping_json, options_json, rows_read in rows:
        old = json.loads(options_json)
        table = raw_table_name(kind, source_id)
        columns = [RawColumn(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()
                   if r[0] != "_row"]
        saved = json.loads(mapping_json)
        role_map = RoleMapping(kind=kind, roles={k: v for k, v in saved.items() if k != "label"},
                               labels=list(saved.get("label", [])))
        options = build_clean_options(
            settings, dayfirst=old.get("dayfirst", False) if dayfirst is None else dayfirst,
            keep_duplicates=keep_duplicates, drop_flags=drop_flags)
        con.execute(f"DELETE FROM {kind} WHERE source_id = ?", [source_id])
        con.execute("DELETE FROM rejected WHERE source_id = ? AND reason <> 'malformed_line'",
                    [source_id])
        malformed = con.execute("SELECT count(*) FROM rejected WHERE source_id = ?",
                                [source_id]).fetchone()[0]
        stage = RawStage(table=table, columns=columns, rows_read=int(rows_read),
                         malformed=int(malformed))
        run_clean(con, kind, stage=stage, source_id=source_id, mapping=role_map,
                  options=options, progress=progress)
        loaded, rejected, reasons, _flags = _counts(con, kind, source_id)
        if loaded + rejected != rows_read:
            raise AccountingError("error.accounting", path=location, read=rows_read,
                                  loaded=loaded, rejected=rejected)
        new_options = {**old, "dayfirst": options.dayfirst,
                       "keep_duplicates": options.keep_duplicates,
                       "drop_flags": list(options.drop_flags)}
        con.execute("UPDATE sources SET rows_loaded = ?, rows_rejected = ?, options = ? "
                    "WHERE source_id = ?", [loaded, rejected, json.dumps(new_options), source_id])
        done.append({"source_id": source_id, "kind": kind, "rows_read": int(rows_read),
                     "rows_loaded": loaded, "rows_rejected": rejected,
                     "rejected_by_reason": reasons})
    run.params = {"source_ids": list(source_ids or []), "dayfirst": dayfirst,
                  "keep_duplicates": keep_duplicates, "drop_flags": drop_flags}
    run.row_counts = {"sources": done}
    run.write(con)
    return done
