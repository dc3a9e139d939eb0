"""Training and scoring frames for churn and behaviour prediction.

Two modes:

* **transactions**: point-in-time customer features (:func:`crmlens.features.compute_features`,
  only ``ts < cutoff``) at several rolling cutoffs, each row labelled from what the customer did
  in ``[cutoff, cutoff + window)`` (:mod:`crmlens.predict.labels`). Every cutoff is computed
  into temporary tables of the connection and the rows are put together in SQL and fetched
  once (Arrow), so a million customers times six cutoffs never pass through Python row by row.
  The evaluation splits are out of time: a test cutoff ``T`` is predicted by a model trained on
  cutoffs whose label windows ended by ``T``.
* **labelled**: one row per customer of the workspace ``customers`` table or of a file, with a
  yes/no column as the target and the other columns as features (stratified K-fold splits).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmlens.errors import InputError
from crmlens.features._catalogue import definition
from crmlens.features._compute import FeatureResult, compute_features, parse_as_of
from crmlens.i18n import get_language, t
from crmlens.predict.labels import TARGETS, churn_labels, data_span, rolling_cutoffs
from crmlens.progress import NO_PROGRESS, Progress

log = logging.getLogger(__name__)

_FEATURES = "_crm_pred_feat_{}"
_LABELS = "_crm_pred_lab_{}"
_FRAME = "_crm_pred_frame"
_SCORING = "_crm_pred_score"
_SOURCE = "_crm_pred_src"
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
# Pairs of target values whose positive side is clear (compared in lower case).
YES_NO = (("yes", "no"), ("true", "false"), ("1", "0"), ("是", "否"), ("y", "n"), ("t", "f"))
N_GROUP_FOLDS = 5


@dataclass
class TrainingFrame:
    """Rows to train and evaluate a model on, with their out-of-sample splits.

    Attributes
    ----------
    X : pandas.DataFrame
        Features only (no ids, no dates), one row per (customer, cutoff).
    y : numpy.ndarray
        Int 0/1 for classification, float for ``days_to_next``.
    customer_id : numpy.ndarray
        Customer id of each row (str).
    cutoff : numpy.ndarray
        ``datetime64[D]`` cutoff of each row (NaT in labelled mode).
    numeric, categorical : list of str
        Columns of ``X`` to treat as numbers / as categories (strings, None for missing).
    labels : dict
        Column -> readable label in the current language.
    splits : list of (numpy.ndarray, numpy.ndarray, str)
        ``(train_idx, test_idx, split_label)``.
    mode : {"transactions", "labelled"}
    target : str
        ``churn``, ``buy_next``, ``days_to_next`` or the labelled column's name.
    window_days : int or None
    cutoffs : list of datetime.date
        Oldest first (empty in labelled mode).
    positive : str or None
        Labelled mode: the target value counted as 1.
    baseline_rule : dict or None
        ``{"feature": "recency_days", "threshold": window_days}`` in transactions mode for
        churn ("no purchase in the last window"); for buy_next the same rule predicts 0.
    days_to_next : numpy.ndarray or None
        Transactions mode: ``min(days to the next order, window_days)`` of every row, whatever
        the target (the expected-days model trains on it).
    dropped : dict
        Columns left out of ``X`` -> reason code (``constant``, ``all_missing``,
        ``identifier``, ``unsupported_type``, ``excluded``, ``target``, ``id``).
    n_rows_dropped : int
        Labelled mode: rows left out because their target is empty.
    """

    X: pd.DataFrame
    y: np.ndarray
    customer_id: np.ndarray
    cutoff: np.ndarray
    numeric: list[str]
    categorical: list[str]
    labels: dict[str, str]
    splits: list[tuple[np.ndarray, np.ndarray, str]]
    mode: str
    target: str
    window_days: int | None
    cutoffs: list[date]
    positive: str | None
    baseline_rule: dict | None
    days_to_next: np.ndarray | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    n_rows_dropped: int = 0

    def positive_rates(self) -> list[dict[str, Any]]:
        """Rows and positive rate (mean of ``y``) per cutoff (one row in labelled mode)."""
        if self.mode != "transactions":
            return [{"cutoff": None, "rows": len(self.y),
                     "positive_rate": float(np.mean(self.y)) if len(self.y) else float("nan")}]
        cut = np.asarray(self.cutoff, dtype="datetime64[D]")
        out = []
        for c in self.cutoffs:
            rows = cut == np.datetime64(c, "D")
            out.append({"cutoff": c, "rows": int(rows.sum()),
                        "positive_rate": float(np.mean(self.y[rows])) if rows.any()
                        else float("nan")})
        return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _kind(column: str) -> str:
    try:
        return definition(column).kind
    except KeyError:
        return "numeric"


def _is_share(column: str) -> bool:
    return column.startswith("share_")


def _feature_expr(column: str, kind: str) -> str:
    """A feature column as the frame holds it: DOUBLE, or VARCHAR for a category."""
    if kind == "categorical":
        return f"CAST({_q(column)} AS VARCHAR) AS {_q(column)}"
    return f"CAST({_q(column)} AS DOUBLE) AS {_q(column)}"


def _check_columns(results: Sequence[FeatureResult]) -> list[str]:
    """Columns every cutoff has: the fixed ones and the share columns found at every cutoff.

    The share columns are the top channels and categories by spend before each cutoff, so
    they can differ between cutoffs; a column missing at one cutoff would mean "counted in
    other" there and "own share" elsewhere, so only those found at every cutoff are kept.
    """
    common = set(results[0].columns)
    for res in results[1:]:
        common &= set(res.columns)
    return [c for c in results[-1].columns if c in common]


def _informative(con: duckdb.DuckDBPyConnection, table: str,
                 columns: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The columns of ``table`` with at least two different values; the others and why."""
    if not columns:
        return [], {}
    parts = ", ".join(f"count({_q(c)}), min({_q(c)}) IS NOT DISTINCT FROM max({_q(c)})"
                      for c in columns)
    row = con.execute(f"SELECT {parts} FROM {table}").fetchall()[0]
    keep, dropped = [], {}
    for i, c in enumerate(columns):
        n, same = row[2 * i], row[2 * i + 1]
        if not n:
            dropped[c] = "all_missing"
        elif same:
            dropped[c] = "constant"
        else:
            keep.append(c)
    return keep, dropped


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run ``sql`` and fetch the result once as Arrow, converted column by column."""
    rel = con.sql(sql)
    # DuckDB 1.4 renamed arrow() to to_arrow_table(); 2.0 dropped the old names
    table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _drop_tables(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    for name in names:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP TABLE IF EXISTS {name}")


def _cutoff_list(cutoffs: Sequence[date | str], first: date, last: date,
                 window_days: int) -> list[date]:
    out = sorted({parse_as_of(c) for c in cutoffs})
    if not out:
        raise InputError("error.predict_short_history", first=first.isoformat(),
                         last=last.isoformat(), days=(last - first).days + 1,
                         needed=window_days)
    for c in out:
        # A label window must end by the day after the last transaction to be fully observed.
        if c <= first or c + timedelta(days=window_days) > last + timedelta(days=1):
            raise InputError("error.predict_bad_cutoff", cutoff=c.isoformat(),
                             first=first.isoformat(), last=last.isoformat(),
                             window=window_days)
    return out


def out_of_time_splits(cutoff_index: np.ndarray, cutoffs: Sequence[date], *, window_days: int,
                       n_test_cutoffs: int = 1) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Out-of-time splits: each of the latest cutoffs ``T`` against the cutoffs before it.

    A row of cutoff ``c`` may train for test cutoff ``T`` only when ``c + window_days <= T``:
    its label window has closed by ``T``, so no label information from on or after ``T``
    reaches the model.

    Parameters
    ----------
    cutoff_index : numpy.ndarray
        Index into ``cutoffs`` of every row.
    cutoffs : sequence of datetime.date
        Oldest first.
    window_days : int
    n_test_cutoffs : int, default 1
        How many of the latest cutoffs are test cutoffs (one split each).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray, str)
        ``(train_idx, test_idx, label)``, oldest test cutoff first; empty when no test cutoff
        has a cutoff early enough to train on.
    """
    out = []
    n = len(cutoffs)
    for k in range(max(0, n - max(1, int(n_test_cutoffs))), n):
        test_day = cutoffs[k]
        train_cuts = [i for i, c in enumerate(cutoffs)
                      if c + timedelta(days=window_days) <= test_day]
        if not train_cuts:
            continue
        train = np.flatnonzero(np.isin(cutoff_index, train_cuts))
        test = np.flatnonzero(cutoff_index == k)
        if not len(train) or not len(test):
            continue
        label = t("predict.split.out_of_time", first=cutoffs[train_cuts[0]].isoformat(),
                  last=cutoffs[train_cuts[-1]].isoformat(), n=len(train_cuts),
                  test=test_day.isoformat())
        out.append((train, test, label))
    return out


def group_splits(groups: np.ndarray, n_folds: int = N_GROUP_FOLDS
                 ) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """K-fold splits keeping all rows of a customer on one side (GroupKFold)."""
    from sklearn.model_selection import GroupKFold

    n = min(int(n_folds), len(np.unique(groups)))
    if n < 2:
        return []
    folds = GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups)
    return [(np.asarray(train), np.asarray(test),
             t("predict.split.group_fold", fold=i + 1, n=n))
            for i, (train, test) in enumerate(folds)]


def build_training_frame(con: duckdb.DuckDBPyConnection, *, target: str = "churn",
                         window_days: int = 90, step_days: int = 30,
                         n_cutoffs: int | None = 6, cutoffs: Sequence[date] | None = None,
                         n_test_cutoffs: int = 1,
                         progress: Progress = NO_PROGRESS) -> TrainingFrame:
    """Point-in-time features at rolling cutoffs, labelled by what happened after each.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A workspace connection (``transactions``; ``customers`` and ``events`` when present).
        Only temporary tables are written, so a read-only connection works.
    target : {"churn", "buy_next", "days_to_next"}, default "churn"
        churn: 1 when no purchase order in ``[cutoff, cutoff + window_days)``; buy_next: 1
        when there is one; days_to_next: ``min(days to the next order, window_days)``.
    window_days : int, default 90
        Length of the label window.
    step_days : int, default 30
        Days between rolling cutoffs.
    n_cutoffs : int or None, default 6
        How many rolling cutoffs (the latest ones); None for all the data allows.
    cutoffs : sequence of datetime.date, optional
        Use these cutoffs instead of rolling ones (each needs a fully observed window).
    n_test_cutoffs : int, default 1
        How many of the latest cutoffs are evaluated out of time (one split each).
    progress : Progress, optional

    Returns
    -------
    TrainingFrame
        Rows sorted by cutoff, then customer id. When no test cutoff has an earlier cutoff
        whose window closed before it, the splits are GroupKFold(5) by customer instead (the
        split labels say so).

    Raises
    ------
    crmlens.errors.InputError
        Unknown target, no customers, history too short for any cutoff, a bad cutoff.

    Examples
    --------
    >>> with Workspace("shop").reader() as con:                        # doctest: +SKIP
    ...     frame = build_training_frame(con, target="churn", window_days=90)
    >>> frame.X.shape, frame.y.mean()                                  # doctest: +SKIP
    """
    if target not in TARGETS:
        raise InputError("error.predict_bad_target", target=target, allowed=", ".join(TARGETS))
    window_days = int(window_days)
    first, last = data_span(con)
    if cutoffs is None:
        days = rolling_cutoffs(first, last, window_days=window_days, step_days=step_days,
                               n_cutoffs=n_cutoffs)
    else:
        days = _cutoff_list(cutoffs, first, last, window_days)
    lang = get_language()
    temps = [_FRAME] + [_FEATURES.format(i) for i in range(len(days))] + \
        [_LABELS.format(i) for i in range(len(days))]
    try:
        results: list[FeatureResult] = []
        for i, day in enumerate(days):
            progress.stage("progress.predict_cutoff", i=i + 1, n=len(days),
                           cutoff=day.isoformat())
            results.append(compute_features(con, as_of=day, into=_FEATURES.format(i)))
            churn_labels(con, cutoff=day, window_days=window_days, into=_LABELS.format(i))
        progress.stage("progress.predict_frame")
        columns = _check_columns(results)
        kinds = {c: _kind(c) for c in columns}
        feats = "".join(", " + _feature_expr(c, kinds[c]) for c in columns)
        union = "\nUNION ALL\n".join(
            f"SELECT {i} AS _k, customer_id{feats}, label, days_to_next "
            f"FROM {_FEATURES.format(i)} JOIN {_LABELS.format(i)} USING (customer_id)"
            for i in range(len(days)))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_FRAME} AS {union}")
        for i in range(len(days)):  # the union holds them now
            _drop_tables(con, [_FEATURES.format(i), _LABELS.format(i)])
        keep, dropped = _informative(con, _FRAME, columns)
        if target == "churn":
            y_sql = "CAST(label AS INTEGER)"
        elif target == "buy_next":
            y_sql = "CAST(NOT label AS INTEGER)"
        else:
            y_sql = f"CAST(least(coalesce(days_to_next, {window_days}), {window_days}) AS DOUBLE)"
        cols = "".join(f", {_q(c)}" for c in keep)
        df = _fetch(con, f"SELECT _k, customer_id, {y_sql} AS _y, CAST(least(coalesce("
                         f"days_to_next, {window_days}), {window_days}) AS DOUBLE) AS _days"
                         f"{cols} FROM {_FRAME} ORDER BY _k, customer_id")
    finally:
        _drop_tables(con, temps)
    if df.empty:
        raise InputError("error.predict_no_customers")
    k = df.pop("_k").to_numpy()
    y = df.pop("_y").to_numpy()
    days_next = df.pop("_days").to_numpy()
    ids = df.pop("customer_id").to_numpy(dtype=object)
    cut = np.asarray(days, dtype="datetime64[D]")[k]
    splits = out_of_time_splits(k, days, window_days=window_days,
                                n_test_cutoffs=n_test_cutoffs)
    if not splits:
        log.info("no cutoff early enough for an out-of-time split: GroupKFold by customer")
        splits = group_splits(ids)
    latest = results[-1]
    labels = {c: latest.label(c, lang) for c in keep}
    rule = ({"feature": "recency_days", "threshold": window_days}
            if "recency_days" in keep and target != "days_to_next" else None)
    log.info("training frame: %d rows, %d features, %d cutoffs", len(y), len(keep), len(days))
    return TrainingFrame(
        X=df, y=y if target == "days_to_next" else y.astype(np.int64),
        customer_id=ids, cutoff=cut,
        numeric=[c for c in keep if kinds[c] != "categorical"],
        categorical=[c for c in keep if kinds[c] == "categorical"],
        labels=labels, splits=splits, mode="transactions", target=target,
        window_days=window_days, cutoffs=list(days), positive=None, baseline_rule=rule,
        days_to_next=days_next, dropped=dropped)


def build_scoring_frame(con: duckdb.DuckDBPyConnection, *, columns: Sequence[str],
                        as_of: date | None = None, progress: Progress = NO_PROGRESS
                        ) -> tuple[pd.DataFrame, np.ndarray, date]:
    """Features of every customer as of a date, with exactly the columns a model was trained on.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A workspace connection.
    columns : sequence of str
        The training frame's ``X.columns``. A share column the data no longer has is filled
        with 0 (no spend there), any other missing column with missing values.
    as_of : datetime.date, optional
        Default: the day after the last transaction.
    progress : Progress, optional

    Returns
    -------
    X : pandas.DataFrame
    customer_id : numpy.ndarray
    as_of : datetime.date

    Examples
    --------
    >>> X_now, ids, as_of = build_scoring_frame(con, columns=frame.X.columns)  # doctest: +SKIP
    """
    progress.stage("progress.predict_scoring")
    try:
        res = compute_features(con, as_of=as_of, into=_SCORING)
        have = set(res.columns)
        parts = []
        for c in columns:
            kind = _kind(c)
            if c in have:
                parts.append(_feature_expr(c, kind))
            elif _is_share(c):
                parts.append(f"CAST(0 AS DOUBLE) AS {_q(c)}")
            else:
                sql_type = "VARCHAR" if kind == "categorical" else "DOUBLE"
                parts.append(f"CAST(NULL AS {sql_type}) AS {_q(c)}")
        cols = "".join(", " + p for p in parts)
        df = _fetch(con, f"SELECT customer_id{cols} FROM {_SCORING} ORDER BY customer_id")
    finally:
        _drop_tables(con, [_SCORING])
    ids = df.pop("customer_id").to_numpy(dtype=object)
    return df, ids, res.as_of


# -- labelled mode --------------------------------------------------------------------------

@dataclass
class _Column:
    name: str
    expr: str        # SQL over the source relation
    origin: str      # "column", "attributes", "labels"


def _json_path(key: str) -> str:
    return _lit('$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _json_keys(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
    rows = con.execute(f"SELECT k, min(_o) FROM (SELECT unnest(json_keys({column})) AS k, "
                       f"source_id * 1e12 + source_row AS _o FROM {table} "
                       f"WHERE {column} IS NOT NULL) GROUP BY k ORDER BY 2, 1").fetchall()
    return [r[0] for r in rows]


def _customer_columns(con: duckdb.DuckDBPyConnection) -> tuple[str, list[_Column], str]:
    """The workspace customers: (relation, columns, id expression)."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_name = 'customers'").fetchall()[0][0]
    if not exists or not con.execute("SELECT 1 FROM customers LIMIT 1").fetchall():
        raise InputError("error.predict_no_customer_table")
    cols = [_Column("age", "age", "column"), _Column("gender", "gender", "column"),
            _Column("income", "income", "column"), _Column("region", "region", "column")]
    # Tenure up to the latest signup in the table (not today): the same data, the same rows.
    cols.append(_Column(
        "signup_tenure_days",
        "date_diff('day', CAST(signup_date AS DATE), "
        "CAST(max(signup_date) OVER () AS DATE))", "column"))
    for origin in ("attributes", "labels"):
        for key in _json_keys(con, "customers", origin):
            cols.append(_Column(key, f"json_extract_string({origin}, {_json_path(key)})",
                                origin))
    return "(SELECT * FROM customers ORDER BY source_id, source_row)", cols, "customer_id"


def _looks_like_id(con: duckdb.DuckDBPyConnection, rel: str, name: str) -> bool:
    from crmlens.ingest.roles import SYNONYMS, normalize_header

    if normalize_header(name) not in SYNONYMS["customer_id"]:
        return False
    n, distinct = con.execute(f"SELECT count({_q(name)}), count(DISTINCT {_q(name)}) "
                              f"FROM {rel}").fetchall()[0]
    return n > 0 and n == distinct


def _file_columns(con: duckdb.DuckDBPyConnection, source: str | Path, id_column: str | None,
                  tmpdir: Path) -> tuple[str, list[_Column], str, str | None]:
    """A file read into ``_SOURCE`` of ``con``: (relation, columns, id expression, id name)."""
    from crmlens.ingest.readers import resolve_source, stage_raw
    from crmlens.workspace.schema import DDL

    spec = resolve_source(source)
    con.execute(DDL["rejected"])  # the CSV reader records unreadable lines there
    stage = stage_raw(con, spec, _SOURCE, source_id=0, kind="customers", tmpdir=tmpdir)
    names = [c.name for c in stage.columns]
    if not stage.rows_read:
        raise InputError("error.predict_empty_source", path=str(source))
    rel = f"(SELECT * FROM {_SOURCE} ORDER BY _row)"
    if id_column is not None:
        if id_column not in names:
            raise InputError("error.predict_unknown_column", column=id_column,
                             columns=", ".join(names))
        found = id_column
    else:
        found = next((c for c in names if _looks_like_id(con, _SOURCE, c)), None)
    id_expr = f"CAST({_q(found)} AS VARCHAR)" if found else "CAST(_row AS VARCHAR)"
    cols = [_Column(c, _q(c), "column") for c in names if c != found]
    return rel, cols, id_expr, found


def _resolve_target(target: str, cols: Sequence[_Column]) -> _Column:
    """The target column: labels first, then attributes, then mapped columns (exact name,
    else the only case-insensitive match)."""
    for origin in ("labels", "attributes", "column"):
        hit = [c for c in cols if c.origin == origin and c.name == target]
        if hit:
            return hit[0]
    folded = [c for c in cols if c.name.casefold() == target.strip().casefold()]
    if len({c.name for c in folded}) == 1:
        return sorted(folded, key=lambda c: ("labels", "attributes", "column").index(c.origin))[0]
    names = list(dict.fromkeys(c.name for c in cols))
    raise InputError("error.predict_unknown_column", column=target, columns=", ".join(names))


def _typed(con: duckdb.DuckDBPyConnection, rel: str, cols: Sequence[_Column]
           ) -> tuple[list[tuple[_Column, str, str]], dict[str, str]]:
    """Each column as (column, kind, SQL expression of its frame value) and the left-out ones.

    Numbers stay numbers; text whose every value parses as a number becomes a number; dates
    become days before the column's latest date; booleans 0/1; other text is a category.
    """
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT "
                             + ", ".join(f"{c.expr} AS {_q('c' + str(i))}"
                                         for i, c in enumerate(cols))
                             + f" FROM {rel})").fetchall()) if cols else {}
    checks, text_cols = [], []
    out: list[tuple[_Column, str, str]] = []
    dropped: dict[str, str] = {}
    for i, c in enumerate(cols):
        typ = types.get(f"c{i}", "VARCHAR").upper()
        base = typ.split("(")[0]
        if base in _NUMERIC_TYPES or base == "BOOLEAN":
            out.append((c, "numeric", f"CAST({c.expr} AS DOUBLE)"))
        elif base in ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S",
                      "TIMESTAMP WITH TIME ZONE"):
            out.append((c, "numeric", f"CAST(date_diff('day', CAST({c.expr} AS DATE), "
                                      f"max(CAST({c.expr} AS DATE)) OVER ()) AS DOUBLE)"))
        elif base in ("VARCHAR", "JSON"):
            text = f"nullif(trim(CAST({c.expr} AS VARCHAR)), '')"
            text_cols.append((c, text))
            checks.append(f"count({text}), count(TRY_CAST({text} AS DOUBLE)), "
                          f"count(DISTINCT {text})")
        else:
            dropped[c.name] = "unsupported_type"
    if text_cols:
        row = con.execute(f"SELECT count(*), {', '.join(checks)} FROM {rel}").fetchall()[0]
        n_rows = row[0]
        for j, (c, text) in enumerate(text_cols):
            n, n_num, n_distinct = row[1 + 3 * j: 4 + 3 * j]
            if n and n_num == n:
                out.append((c, "numeric", f"TRY_CAST({text} AS DOUBLE)"))
            elif n_distinct > 100 and n_distinct > 0.5 * n_rows:
                dropped[c.name] = "identifier"  # a name or a free text: nothing to learn
            else:
                out.append((c, "categorical", text))
    order = {c.name: i for i, c in enumerate(cols)}
    out.sort(key=lambda x: order[x[0].name])
    return out, dropped


def _target_text(con: duckdb.DuckDBPyConnection, rel: str, col: _Column) -> str:
    """SQL of the target as text: integral numbers without ``.0``, trimmed text."""
    typ = con.execute(f"SELECT column_type FROM (DESCRIBE SELECT {col.expr} AS t FROM {rel})"
                      ).fetchall()[0][0].upper().split("(")[0]
    if typ in _NUMERIC_TYPES:
        x = f"CAST({col.expr} AS DOUBLE)"
        return (f"CASE WHEN {x} = round({x}) THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({x} AS VARCHAR) END")
    return f"nullif(trim(CAST({col.expr} AS VARCHAR)), '')"


def choose_positive(values: Sequence[str], positive: str | None, *, column: str) -> str:
    """The target value counted as 1.

    Parameters
    ----------
    values : sequence of str
        The distinct non-empty target values, most frequent first.
    positive : str, optional
        The user's choice (matched exactly, else ignoring case).
    column : str
        The target's name (for messages).

    Returns
    -------
    str

    Raises
    ------
    crmlens.errors.InputError
        One value only; ``positive`` not among the values; no ``positive`` and the values are
        not a yes/no pair.
    """
    shown = ", ".join(values[:12]) + (" ..." if len(values) > 12 else "")
    if len(values) < 2:
        raise InputError("error.predict_one_class", column=column, values=shown or "-")
    if positive is not None:
        text = str(positive).strip()
        if text in values:
            return text
        folded = [v for v in values if v.casefold() == text.casefold()]
        if len(folded) == 1:
            return folded[0]
        raise InputError("error.predict_positive_unknown", column=column, positive=text,
                         values=shown)
    if len(values) == 2:
        low = {v.casefold(): v for v in values}
        for yes, no in YES_NO:
            if set(low) == {yes, no}:
                return low[yes]
    raise InputError("error.predict_positive_needed", column=column, n=len(values),
                     values=shown)


def build_labelled_frame(con: duckdb.DuckDBPyConnection | None, *, target: str,
                         source: str | Path | None = None, positive: str | None = None,
                         id_column: str | None = None, exclude: Sequence[str] = (),
                         n_folds: int = 5, random_state: int = 0) -> TrainingFrame:
    """One row per customer with a yes/no target column and the other columns as features.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection or None
        A workspace connection (needed when ``source`` is None).
    target : str
        The target column: looked up in the customers' labels, then their attributes, then
        the mapped columns (or the file's columns); exact name first, then ignoring case.
    source : str or Path, optional
        A file (csv, tsv, xlsx, parquet, jsonl) instead of the workspace ``customers`` table;
        read with the ingest readers (encoding and delimiter detection), never into the
        workspace.
    positive : str, optional
        The target value counted as 1. Found automatically for yes/no, true/false, 1/0, 是/否
        and y/n; required otherwise.
    id_column : str, optional
        The file's customer id column. Default: a column whose header names a customer id
        and whose values are unique; without one, row numbers ``"1"`` .. ``"n"``.
    exclude : sequence of str
        Columns not to use as features (e.g. ``duration`` in Bank Marketing).
    n_folds : int, default 5
        Stratified K-fold splits (fewer when the smaller class has fewer rows).
    random_state : int, default 0
        Shuffling of the folds.

    Returns
    -------
    TrainingFrame
        Rows in source order; rows with an empty target are left out (``n_rows_dropped``).

    Raises
    ------
    crmlens.errors.InputError
        No customers table, an unknown target or id column, a target with one value, a
        target needing ``positive``, a ``positive`` that is not a value.

    Examples
    --------
    >>> frame = build_labelled_frame(None, target="y",                  # doctest: +SKIP
    ...                              source="bank-full.parquet", exclude=["duration"])
    >>> frame.positive, frame.y.mean()                                 # doctest: +SKIP
    ('yes', 0.117)
    """
    if int(n_folds) < 2:
        raise InputError("error.predict_bad_folds", n=n_folds)
    lang = get_language()
    with contextlib.ExitStack() as stack:
        if source is None:
            if con is None:
                raise InputError("error.predict_no_customer_table")
            work = con
            rel, cols, id_expr = _customer_columns(con)
            id_name = "customer_id"
        else:
            # A private in-memory database: the workspace is never written.
            work = stack.enter_context(contextlib.closing(duckdb.connect()))
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crmlens_")))
            rel, cols, id_expr, id_name = _file_columns(work, source, id_column, tmp)
        target_col = _resolve_target(target, cols)
        dropped: dict[str, str] = {target_col.name: "target"}
        if id_name:
            dropped[id_name] = "id"
        excluded = {str(e).casefold() for e in exclude}
        unknown = [e for e in exclude if str(e).casefold() not in
                   {c.name.casefold() for c in cols}]
        if unknown:
            raise InputError("error.predict_unknown_column", column=", ".join(map(str, unknown)),
                             columns=", ".join(dict.fromkeys(c.name for c in cols)))
        seen = {target_col.name}
        candidates = []
        for c in cols:
            if c.name in seen:
                continue
            seen.add(c.name)
            if c.name.casefold() in excluded:
                dropped[c.name] = "excluded"
                continue
            candidates.append(c)
        typed, more = _typed(work, rel, candidates)
        dropped.update(more)
        y_text = _target_text(work, rel, target_col)
        values = [r[0] for r in work.execute(
            f"SELECT v FROM (SELECT {y_text} AS v FROM {rel}) WHERE v IS NOT NULL "
            "GROUP BY v ORDER BY count(*) DESC, v").fetchall()]
        pos = choose_positive(values, positive, column=target_col.name)
        names = [f"f{i}" for i in range(len(typed))]
        feats = "".join(f", {expr} AS {_q(n)}" for (c, _, expr), n in zip(typed, names))
        work.execute(f"CREATE OR REPLACE TEMP TABLE {_FRAME} AS SELECT {id_expr} AS _id, "
                     f"{y_text} AS _t{feats} FROM {rel}")
        try:
            keep, empty = _informative(work, f"(SELECT * FROM {_FRAME} WHERE _t IS NOT NULL)",
                                       names)
            n_dropped = work.execute(f"SELECT count(*) FROM {_FRAME} WHERE _t IS NULL"
                                     ).fetchall()[0][0]
            df = _fetch(work, f"SELECT _id, _t = {_lit(pos)} AS _y"
                              + "".join(f", {_q(n)}" for n in keep)
                              + f" FROM {_FRAME} WHERE _t IS NOT NULL")
        finally:
            _drop_tables(work, [_FRAME, _SOURCE])
    by_name = dict(zip(names, typed))
    for n, why in empty.items():
        dropped[by_name[n][0].name] = why
    ids = df.pop("_id").to_numpy(dtype=object)
    y = df.pop("_y").to_numpy().astype(np.int64)
    df.columns = [by_name[n][0].name for n in keep]
    numeric = [by_name[n][0].name for n in keep if by_name[n][1] == "numeric"]
    categorical = [by_name[n][0].name for n in keep if by_name[n][1] == "categorical"]
    for c in categorical:
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    splits = stratified_splits(y, n_folds=n_folds, random_state=random_state)
    labels = {c: _column_label(c, lang) for c in df.columns}
    log.info("labelled frame: %d rows, %d features, target %s = %s (%.3f)", len(y),
             df.shape[1], target_col.name, pos, float(y.mean()) if len(y) else float("nan"))
    return TrainingFrame(
        X=df, y=y, customer_id=ids, cutoff=np.full(len(y), np.datetime64("NaT"),
                                                   dtype="datetime64[D]"),
        numeric=numeric, categorical=categorical, labels=labels, splits=splits,
        mode="labelled", target=target_col.name, window_days=None, cutoffs=[],
        positive=pos, baseline_rule=None, dropped=dropped, n_rows_dropped=int(n_dropped))


def _column_label(column: str, lang: str) -> str:
    """The catalogue label of a mapped customer column; a source column's own name."""
    if column in ("age", "gender", "income", "region", "signup_tenure_days"):
        return definition(column).label(lang)
    return column


def stratified_splits(y: np.ndarray, *, n_folds: int = 5, random_state: int = 0
                      ) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Stratified K-fold splits (shuffled), fewer folds when the smaller class is small.

    Raises
    ------
    crmlens.errors.InputError
        The smaller class has fewer than two rows.
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=2)
    n = min(int(n_folds), int(counts.min()))
    if n < 2:
        raise InputError("error.predict_too_few_rows", n_positive=int(counts[1]),
                         n_negative=int(counts[0]))
    folds = StratifiedKFold(n_splits=n, shuffle=True, random_state=random_state)
    return [(train, test, t("predict.split.fold", fold=i + 1, n=n))
            for i, (train, test) in enumerate(folds.split(np.zeros(len(y)), y))]
