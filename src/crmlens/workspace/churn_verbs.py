"""Churn and behaviour prediction verbs of :class:`~crmlens.Workspace` (kept apart, like the
CLV verbs). Each writing verb runs in one transaction and records a ``runs`` row; the fitted
model is saved under ``models/`` only once that transaction has committed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmlens.errors import InputError, WorkspaceError
from crmlens.progress import NO_PROGRESS, Progress
from crmlens.workspace import store
from crmlens.workspace.runs import RunRecord

if TYPE_CHECKING:
    import pandas as pd

    from crmlens.predict.run import ChurnResult

# How many of the riskiest customers `churn_show` lists (with their factors).
AT_RISK = 20


def _model_name(run_id: int | str) -> str:
    return f"churn_{run_id}.joblib"


class ChurnVerbs:
    """Train, score and evaluate churn (or response) models; show stored runs."""

    def _churn_writer(self):
        if not self.exists():  # type: ignore[attr-defined]
            raise WorkspaceError("error.workspace_missing", path=str(self.path))  # type: ignore[attr-defined]
        return self.writer()  # type: ignore[attr-defined]

    @property
    def models_dir(self) -> Path:
        """Where fitted models are kept (``models/`` in the workspace)."""
        return self.path / "models"  # type: ignore[attr-defined]

    def _save_model(self, model: Any, run_id: int | str) -> Path:
        """Write the model beside its final name; :meth:`_publish_model` renames it."""
        import joblib

        self.models_dir.mkdir(exist_ok=True)
        tmp = self.models_dir / f".{_model_name(run_id)}.tmp"
        joblib.dump(model, tmp, compress=3)
        return tmp

    def _publish_model(self, tmp: Path, run_id: int | str) -> None:
        os.replace(tmp, self.models_dir / _model_name(run_id))

    def _load_model(self, run: dict[str, Any]) -> Any:
        import joblib

        name = run.get("model_file")
        path = self.models_dir / name if name else None
        if path is None or not path.is_file():
            raise InputError("error.churn_model_missing", run=run["run_id"],
                             path=str(path or self.models_dir))
        return joblib.load(path)

    def churn_train(self, *, target: str = "churn", window_days: int = 90,
                    step_days: int = 30, n_cutoffs: int | None = 6,
                    label: str | None = None, source: str | Path | None = None,
                    positive: str | None = None, id_column: str | None = None,
                    exclude: Sequence[str] = (), models: Sequence[str] | None = None,
                    time_budget: float | None = 120.0, search: bool = True,
                    bands: Sequence[float] = (0.3, 0.6), random_state: int = 0,
                    progress: Progress = NO_PROGRESS) -> ChurnResult:
        """Compare the model families, fit the best, score every customer and store it all.

        Two modes: without ``label``, churn (or ``buy_next``) labels come from the
        transactions at rolling cutoffs; with ``label``, a yes/no column of the customers
        table (or of ``source``) is the target and the other columns are the features.

        Parameters
        ----------
        target : {"churn", "buy_next"}, default "churn"
            Transactions mode only.
        window_days : int, default 90
            Days after a cutoff in which a purchase means "not churned".
        step_days : int, default 30
            Days between rolling cutoffs.
        n_cutoffs : int or None, default 6
            Cutoffs to train on (None: all the history allows).
        label : str, optional
            Labelled mode: the target column.
        source : str or Path, optional
            Labelled mode: a file instead of the customers table.
        positive : str, optional
            Labelled mode: the value counted as yes.
        id_column : str, optional
            Labelled mode: the id column of ``source``.
        exclude : sequence of str
            Labelled mode: columns not to use.
        models : sequence of str, optional
            Families to compare (default: all).
        time_budget : float or None, default 120
            Seconds for the hyperparameter search.
        search : bool, default True
        bands : (float, float), default (0.3, 0.6)
            Probability bounds of the medium and high risk bands.
        random_state : int, default 0
        progress : Progress, optional

        Returns
        -------
        crmlens.predict.run.ChurnResult
            With ``run_id`` set; the run becomes the current one.
        """
        from crmlens.predict import store as churn_store
        from crmlens.predict.run import train_churn, train_labelled

        if source is not None and label is None:
            raise InputError("error.churn_source_needs_label", source=str(source))
        params = {"target": label or target, "mode": "labelled" if label else "transactions",
                  "window_days": window_days, "step_days": step_days,
                  "n_cutoffs": n_cutoffs, "source": source and str(source),
                  "positive": positive, "exclude": list(exclude),
                  "models": list(models) if models else None, "time_budget": time_budget,
                  "search": search, "bands": list(bands)}
        tmp = None
        # a labelled file needs no data in the workspace: create it like ingest does (a failure
        # removes what was created)
        opened = self.writer() if source is not None else self._churn_writer()  # type: ignore[attr-defined]
        with opened as con, store.transaction(con):
            run = RunRecord("churn.train", params=params)
            if label is not None:
                result = train_labelled(con, target=label, source=source, positive=positive,
                                        id_column=id_column, exclude=exclude, models=models,
                                        time_budget=time_budget, search=search, bands=bands,
                                        random_state=random_state, progress=progress)
            else:
                result = train_churn(con, target=target, window_days=window_days,
                                     step_days=step_days, n_cutoffs=n_cutoffs, models=models,
                                     time_budget=time_budget, search=search, bands=bands,
                                     random_state=random_state, progress=progress)
            run.reserve_id(con)
            tmp = self._save_model(result.model, run.run_id)
            try:
                churn_store.save_run(
                    con, run.run_id,
                    run={**result.run_row(), "step": "churn.train",
                         "model_file": _model_name(run.run_id)},
                    models=result.comparison, curves=result.curves,
                    importance=result.importance, scores=result.scores,
                    factors=result.factors)
                run.row_counts = {"training_rows": result.n_train,
                                  "customers_scored": int(len(result.scores)),
                                  "models_compared": len(result.comparison)}
                result.run_id = str(run.write(con))
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        self._publish_model(tmp, result.run_id)
        return result

    def churn_score(self, *, run: int | str | None = None, as_of: str | date | None = None,
                    progress: Progress = NO_PROGRESS) -> dict[str, Any]:
        """Score the customers again with a stored model (no refit), e.g. after new data.

        Parameters
        ----------
        run : int or str, optional
            The run whose model scores (default: the current run).
        as_of : str or date, optional
            Features as of this date (default: the day after the last transaction).
        progress : Progress, optional

        Returns
        -------
        dict
            The new run as :meth:`churn_show` gives it.
        """
        from crmlens.predict import store as churn_store
        from crmlens.predict.run import DEFAULT_BANDS, rescore

        with self._churn_writer() as con, store.transaction(con):
            source = churn_store.get_run(con, run)
            if source["mode"] != "transactions":
                raise InputError("error.churn_score_labelled", run=source["run_id"])
            model = self._load_model(source)
            fitted_in = source.get("fitted_in") or source["run_id"]
            step = RunRecord("churn.score", params={"as_of": as_of and str(as_of),
                                                    "fitted_in": fitted_in})
            bands = (source.get("settings") or {}).get("bands") or DEFAULT_BANDS
            features = [f["name"] for f in source.get("features") or []]
            progress.stage("progress.churn_score")
            scores, factors, day = rescore(con, model, features=features, as_of=as_of,
                                           bands=bands, progress=progress)
            step.reserve_id(con)
            row = {k: source.get(k) for k in ("mode", "target", "positive", "window_days",
                                               "cutoffs", "best_model", "grade", "threshold",
                                               "positive_rate", "n_train", "features",
                                               "leakage", "metrics", "settings",
                                               "model_file")}
            churn_store.save_run(con, step.run_id,
                                 run={**row, "step": "churn.score", "fitted_in": fitted_in,
                                      "as_of": day, "n_scored": int(len(scores))},
                                 scores=scores, factors=factors)
            step.row_counts = {"customers_scored": int(len(scores))}
            step.write(con)
        return self.churn_show(step.run_id)

    def churn_evaluate(self, run: int | str | None = None) -> dict[str, Any]:
        """The evaluation of a run: comparison table, grade, leakage, importance, curves.

        Parameters
        ----------
        run : int or str, optional
            Default: the current run (a scoring run shows the evaluation of its fit).

        Returns
        -------
        dict
        """
        from crmlens.predict import store as churn_store

        with self.reader() as con:  # type: ignore[attr-defined]
            found = churn_store.get_run(con, run)
            fitted = str(found.get("fitted_in") or found["run_id"])
            models = churn_store.read_models(con, fitted)
            curves = churn_store.read_curves(con, fitted)
            importance = churn_store.read_importance(con, fitted)
        return {**found, "evaluated_in": fitted, "models": models,
                "importance": importance.to_dict("records"),
                "curves": curves.to_dict("records")}

    def churn_show(self, run: int | str | None = None, *, top: int = AT_RISK
                   ) -> dict[str, Any]:
        """A stored run: settings, grade, band counts and the riskiest customers with factors.

        Parameters
        ----------
        run : int or str, optional
            Default: the current run.
        top : int, default 20
            How many of the riskiest customers to list.

        Returns
        -------
        dict
        """
        from crmlens.predict import store as churn_store
        from crmlens.segment.clv_join import current_clv_run_id

        with self.reader() as con:  # type: ignore[attr-defined]
            found = churn_store.get_run(con, run)
            rid = found["run_id"]
            bands = churn_store.band_counts(con, rid)
            risky = churn_store.read_scores(con, rid, limit=top)
            factors = churn_store.read_factors(con, rid, list(risky["customer_id"]))
            clv_run = current_clv_run_id(con)
            clv = {}
            if clv_run is not None and len(risky):
                clv = dict(con.execute(
                    "SELECT customer_id, clv FROM clv_scores WHERE run_id = ? AND customer_id "
                    "IN (SELECT unnest(?::VARCHAR[]))",
                    [clv_run, list(risky["customer_id"])]).fetchall())
        by_customer: dict[str, list[dict[str, Any]]] = {}
        for f in factors.to_dict("records"):
            by_customer.setdefault(str(f["customer_id"]), []).append(f)
        rows = []
        for r in risky.to_dict("records"):
            cid = str(r["customer_id"])
            rows.append({**_plain(r), "clv": clv.get(cid), "factors": by_customer.get(cid, [])})
        return {**found, "bands": bands, "at_risk": rows}

    def churn_customer(self, customer_id: str, *, run: int | str | None = None
                       ) -> dict[str, Any]:
        """One customer's score, risk band and factors in a run (default: the current one).

        Raises InputError when the run did not score that customer.
        """
        from crmlens.predict import store as churn_store

        with self.reader() as con:  # type: ignore[attr-defined]
            found = churn_store.get_run(con, run)
            scores = churn_store.read_scores(con, found["run_id"],
                                             customer_id=str(customer_id))
            factors = churn_store.read_factors(con, found["run_id"], [str(customer_id)])
        if scores.empty:
            raise InputError("error.churn_unknown_customer", customer=str(customer_id),
                             run=found["run_id"])
        return {"run_id": found["run_id"], "target": found["target"],
                "features": found.get("features") or [],
                **_plain(scores.iloc[0].to_dict()),
                "factors": [_plain(f) for f in factors.to_dict("records")]}

    def churn_scores(self, run: int | str | None = None) -> pd.DataFrame:
        """Per-customer scores of a run (default: the current one), riskiest first."""
        from crmlens.predict import store as churn_store

        with self.reader() as con:  # type: ignore[attr-defined]
            return churn_store.read_scores(con, churn_store.get_run(con, run)["run_id"])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Row values as plain Python (NaN and pandas NA become None)."""
    import math

    out = {}
    for k, v in row.items():
        if hasattr(v, "item"):
            v = v.item()
        if v is not None and not isinstance(v, str):
            try:
                if v != v or (isinstance(v, float) and math.isinf(v)):  # NaN / NA
                    v = None
            except TypeError:  # pandas.NA compares to NA
                v = None
        out[k] = v
    return out
