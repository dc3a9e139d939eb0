"""The :class:`Workspace` object: every CLI verb is a method here."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from crmlens.errors import WorkspaceError
from crmlens.progress import NO_PROGRESS, Progress
from crmlens.workspace import runs as runs_mod
from crmlens.workspace import store
from crmlens.workspace.basket_verbs import BasketVerbs
from crmlens.workspace.churn_verbs import ChurnVerbs
from crmlens.workspace.clv_verbs import ClvVerbs
from crmlens.workspace.recommend_verbs import RecommendVerbs
from crmlens.workspace.segment_verbs import SegmentVerbs
from crmlens.workspace.settings import load_settings, save_settings

log = logging.getLogger(__name__)

DB_NAME = "crmlens.duckdb"
SETTINGS_NAME = "crmlens.toml"
REPORTS_DIR = "reports"
MODELS_DIR = "models"


class Workspace(SegmentVerbs, ClvVerbs, ChurnVerbs, BasketVerbs, RecommendVerbs):
    """A crmlens workspace folder.

    Parameters
    ----------
    path : str or Path, default "."
        The folder. It is created, with its database and settings, by the first command that
        writes (or by :meth:`init`); reading commands need an existing workspace.

    Examples
    --------
    >>> ws = Workspace("shop")                                   # doctest: +SKIP
    >>> ws.ingest("transactions", "orders.csv")                  # doctest: +SKIP
    >>> ws.quality()["sources"][0]["rows_read"]                  # doctest: +SKIP
    """

    def __init__(self, path: str | Path = ".") -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # -- locations ---------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def settings_path(self) -> Path:
        return self.path / SETTINGS_NAME

    @property
    def reports_dir(self) -> Path:
        return self.path / REPORTS_DIR

    def exists(self) -> bool:
        """Whether the folder already holds a workspace database."""
        return self.db_path.is_file()

    @property
    def settings(self) -> dict[str, Any]:
        """The settings in force (``crmlens.toml`` over the defaults)."""
        return load_settings(self.settings_path)

    def save_settings(self, settings: Mapping[str, Any]) -> None:
        """Write ``settings`` to ``crmlens.toml`` (atomically: temp file, then rename)."""
        save_settings(self.settings_path, dict(settings))

    # -- connections -------------------------------------------------------------------------
    def _check_writable(self) -> None:
        for p in (self.path, self.db_path, self.settings_path):
            if p.exists() and store.is_write_protected(p):
                raise WorkspaceError("error.workspace_readonly", path=str(self.path))
        if self.path.exists() and not self.path.is_dir():
            raise WorkspaceError("error.workspace_not_dir", path=str(self.path))

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection; a workspace made by this call is removed if it fails.

        Steps open their own transaction on it (see :func:`crmlens.workspace.store.transaction`).
        """
        self._check_writable()
        created_dir = not self.path.exists()
        created_db = not self.db_path.exists()
        created_settings = not self.settings_path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError("error.workspace_create", path=str(self.path),
                                 detail=exc.strerror or str(exc)) from None
        con = None
        ok = False
        try:
            con = store.connect(self.db_path, engine=self.settings.get("engine"))
            if created_db:
                store.ensure_schema(con)
                con.execute("CHECKPOINT")
            else:
                store.ensure_schema(con)
            yield con
            ok = True
        finally:
            if con is not None:
                store.close(con)
            if not ok:
                self._remove_new(created_dir, created_db, created_settings)
        if created_settings:
            self._init_files()

    def _remove_new(self, created_dir: bool, created_db: bool, created_settings: bool) -> None:
        # A failed first command leaves no half-made workspace behind.
        if created_dir:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        if created_db:
            for name in (DB_NAME, DB_NAME + ".wal"):
                (self.path / name).unlink(missing_ok=True)
        if created_settings:
            self.settings_path.unlink(missing_ok=True)

    def _init_files(self) -> None:
        self.reports_dir.mkdir(exist_ok=True)
        if not self.settings_path.exists():
            save_settings(self.settings_path, self.settings)

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to an existing workspace."""
        if not self.exists():
            raise WorkspaceError("error.workspace_missing", path=str(self.path))
        con = store.connect(self.db_path, read_only=True, engine=self.settings.get("engine"))
        try:
            yield con
        finally:
            store.close(con)

    # -- verbs -------------------------------------------------------------------------------
    def init(self) -> Workspace:
        """Create the workspace (folder, database, settings, reports folder) if needed."""
        with self.writer():
            pass
        self._init_files()
        return self

    def ingest(
        self,
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
        save_mapping: bool = True,
        progress: Progress = NO_PROGRESS,
    ):
        """Read a source, map its columns, clean it and store it, accounting for every row.

        Parameters
        ----------
        kind : {"transactions", "customers", "events"}
            Which table the source feeds.
        source : str or Path
            A file (CSV/TSV/TXT, XLSX, Parquet, JSON lines) or a database URL
            (``sqlite:///shop.db``, ``postgresql://...``, ``mysql://...``) with ``table`` or
            ``query``.
        sheet : str or int, optional
            Excel sheet name or 0-based index (default: the first sheet).
        encoding, delimiter : str, optional
            Override detection for text files.
        mapping : sequence of "role=column" or mapping role -> column, optional
            Role overrides; ``role=`` (empty) unmaps a role.
        dayfirst : bool, optional
            Read ``9/12/2011`` as 9 December. Default: the setting, else detected from values.
        keep_duplicates : bool, optional
            Keep exact duplicate rows (default: reject them, reason ``duplicate_row``).
        drop_flags : sequence of str, optional
            Reject rows carrying these flags instead of keeping them flagged.
        replace : bool, default False
            Replace every earlier source of this kind (a source with the same location is
            always replaced).
        save_mapping : bool, default True
            Save the resulting column mapping in ``crmlens.toml`` for the next ingest.

        Returns
        -------
        crmlens.ingest.pipeline.IngestResult
        """
        from crmlens.ingest.pipeline import ingest_source
        from crmlens.ingest.readers import resolve_source

        resolve_source(source, table=table, query=query, sheet=sheet)  # fail before creating
        settings = self.settings
        with self.writer() as con, store.transaction(con):
            result = ingest_source(
                con, settings, kind, source, table=table, query=query, sheet=sheet,
                encoding=encoding, delimiter=delimiter, mapping=mapping, dayfirst=dayfirst,
                keep_duplicates=keep_duplicates, drop_flags=drop_flags, replace=replace,
                progress=progress,
            )
        if save_mapping:
            settings = self.settings
            settings.setdefault("mappings", {})[kind] = result.mapping
            self.save_settings(settings)
        return result

    def clean(
        self,
        *,
        source_ids: Sequence[int] | None = None,
        dayfirst: bool | None = None,
        keep_duplicates: bool | None = None,
        drop_flags: Sequence[str] | None = None,
        progress: Progress = NO_PROGRESS,
    ) -> list[dict[str, Any]]:
        """Clean the stored raw tables again (e.g. after changing a cleaning setting)."""
        from crmlens.ingest.pipeline import reclean

        if not self.exists():
            raise WorkspaceError("error.workspace_missing", path=str(self.path))
        settings = self.settings
        with self.writer() as con, store.transaction(con):
            return reclean(con, settings, source_ids=source_ids, dayfirst=dayfirst,
                           keep_duplicates=keep_duplicates, drop_flags=drop_flags,
                           progress=progress)

    def run(
        self,
        transactions: str | Path,
        *,
        customers: str | Path | None = None,
        events: str | Path | None = None,
        langs: Sequence[str] = ("en",),
        progress: Progress = NO_PROGRESS,
        **ingest_options: Any,
    ):
        """The whole pipeline: ingest the files, run every analysis stage, write the report(s).

        Returns
        -------
        crmlens.runner.RunSummary
        """
        from crmlens.runner import run_pipeline

        return run_pipeline(self, transactions, customers=customers, events=events,
                            langs=langs, ingest_options=ingest_options, progress=progress)

    def quality(self) -> dict[str, Any]:
        """The data-quality summary: per source, rows read/loaded/rejected and findings."""
        from crmlens.clean.quality import quality_summary

        with self.reader() as con:
            return quality_summary(con)

    def features(self, *, as_of: str | date | None = None, lang: str = "en",
                 progress: Progress = NO_PROGRESS):
        """Compute customer features as of a date and store them (table ``customer_features``).

        Parameters
        ----------
        as_of : str (YYYY-MM-DD) or date, optional
            Only transactions before this date are used. Default: the day after the last
            transaction. Features already stored for this date are replaced.
        lang : {"en", "zh"}, default "en"
            Language of the labels in the result's summary.

        Returns
        -------
        crmlens.features.FeatureResult
            With ``summary`` filled and ``run_id`` the step's row in ``runs``.
        """
        from crmlens.features import compute_features, store_features, summarise
        from crmlens.features._compute import parse_as_of

        day = parse_as_of(as_of)  # a bad date fails before the workspace is touched
        if not self.exists():
            raise WorkspaceError("error.workspace_missing", path=str(self.path))
        with self.writer() as con, store.transaction(con):
            run = runs_mod.RunRecord("features", params={"as_of": as_of and str(day)})
            result = compute_features(con, as_of=day, progress=progress)
            run.reserve_id(con)
            store_features(con, result, run_id=run.run_id)
            summarise(con, result, lang)
            con.execute(f"DROP TABLE IF EXISTS {result.table}")
            run.params["as_of"] = result.as_of.isoformat()
            run.row_counts = {"customers": result.n_customers, "features": len(result.columns)}
            result.run_id = run.write(con)
        return result

    def read_features(self, *, as_of: str | date | None = None):
        """The stored features of one as-of date (default: the latest) as a DataFrame.

        Parameters
        ----------
        as_of : str (YYYY-MM-DD) or date, optional

        Returns
        -------
        pandas.DataFrame
            ``as_of``, ``customer_id`` and one column per feature.
        """
        from crmlens.features import read_features

        with self.reader() as con:
            return read_features(con, as_of=as_of)

    def report(self, *, lang: str = "en", out: str | Path | None = None,
               title: str | None = None) -> Path:
        """Write the HTML report and return its path (default ``reports/report-<lang>.html``)."""
        from crmlens.report import write_report

        target = (Path(out) if out else self.reports_dir / f"report-{lang}.html").resolve()
        if not self.exists():
            raise WorkspaceError("error.workspace_missing", path=str(self.path))
        self._check_writable()
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.reader() as con:
            return write_report(con, target, lang=lang, title=title,
                                generated_at=datetime.now())

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent steps recorded in the ``runs`` table."""
        with self.reader() as con:
            return runs_mod.list_runs(con, limit)

    def status(self) -> dict[str, Any]:
        """Tables and row counts, sources, last runs."""
        with self.reader() as con:
            tables = con.execute(
                "SELECT table_name, estimated_size FROM duckdb_tables() "
                "WHERE NOT temporary ORDER BY table_name").fetchall()
            sources = con.execute(
                "SELECT source_id, kind, name, format, rows_read, rows_loaded, rows_rejected, "
                "strftime(ingested_at, '%Y-%m-%d %H:%M:%S') FROM sources ORDER BY source_id"
            ).fetchall()
        return {
            "workspace": str(self.path.resolve()),
            "tables": {name: int(n) for name, n in tables if not name.startswith("raw_")},
            "sources": [dict(zip(("source_id", "kind", "name", "format", "rows_read",
                                  "rows_loaded", "rows_rejected", "ingested_at"), s))
                        for s in sources],
        }

    def sql(self, query: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Run a read-only query on the workspace (for notebooks and debugging)."""
        with self.reader() as con:
            return con.execute(query, params or []).fetchall()
