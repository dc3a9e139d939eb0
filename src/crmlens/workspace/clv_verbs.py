"""Customer-lifetime-value verbs of :class:`~crmlens.Workspace` (kept apart, like the segment
verbs). Each writing verb runs in one transaction and records a ``runs`` row: a failure
leaves the workspace as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from crmlens.errors import InputError, WorkspaceError
from crmlens.progress import NO_PROGRESS, Progress
from crmlens.workspace import store
from crmlens.workspace.runs import RunRecord

if TYPE_CHECKING:
    import pandas as pd

    from crmlens.clv.scoring import ClvResult

# How many of the best customers `clv_show` lists.
TOP_CUSTOMERS = 10


class ClvVerbs:
    """Fit, score and validate CLV models; show stored runs."""

    def _clv_writer(self):
        if not self.exists():  # type: ignore[attr-defined]
            raise WorkspaceError("error.workspace_missing", path=str(self.path))  # type: ignore[attr-defined]
        return self.writer()  # type: ignore[attr-defined]

    def clv_fit(self, *, model: str = "auto", unit: str = "weeks",
                as_of: str | date | None = None, horizon: int = 52,
                period_length: float | None = None, discount_rate: float = 0.0,
                margin: float = 1.0, penalizer_coef: float = 0.0,
                spend_model: str | None = "gamma_gamma",
                progress: Progress = NO_PROGRESS) -> ClvResult:
        """Fit the purchase and spend models, score every customer and store it all.

        Parameters
        ----------
        model : str, default "auto"
            ``auto`` (holdout comparison when the history allows, else BIC) or a registry
            name: ``bgnbd``, ``mbgnbd``, ``pareto_nbd``, ``bgbb``.
        unit : {"days", "weeks", "months"}, default "weeks"
            Time unit of the summaries, ``horizon`` and ``period_length``.
        as_of : str or date, optional
            Exclusive end of the history (default: the day after the last purchase).
        horizon : int, default 52
            Prediction horizon in units.
        period_length : float, optional
            Discounting period in units (default: 1 unit).
        discount_rate : float, default 0.0
            Per discounting period.
        margin : float, default 1.0
            Share of spend kept as profit.
        penalizer_coef : float, default 0.0
            L2 penalty of the models.
        spend_model : {"gamma_gamma", None}, default "gamma_gamma"
            None uses the observed mean spend.
        progress : Progress, optional

        Returns
        -------
        crmlens.clv.scoring.ClvResult
            With ``run_id`` set; the run becomes the current one (``clv_runs.is_current``).
        """
        from crmlens.clv import store as clv_store
        from crmlens.clv.scoring import check_options, score_customers

        options = dict(model=model, unit=unit, horizon=horizon, period_length=period_length,
                       discount_rate=discount_rate, margin=margin,
                       penalizer_coef=penalizer_coef, spend_model=spend_model)
        check_options(**options)  # bad options fail before the workspace is touched
        with self._clv_writer() as con, store.transaction(con):
            run = RunRecord("clv.fit", params={**options, "as_of": as_of and str(as_of)})
            result = score_customers(con, as_of=as_of, progress=progress, **options)
            run.reserve_id(con)
            clv_store.save_run(con, result, run.run_id, step="clv.fit")
            n_models = 0
            if result.comparison is not None:
                n_models = clv_store.save_validation(con, result.comparison, run.run_id)
            run.params.update(as_of=result.observation_end.isoformat(),
                              chosen_model=result.purchase_model)
            run.row_counts = {"customers": result.n_customers, "models_compared": n_models}
            result.run_id = run.write(con)
        return result

    def clv_predict(self, *, run: int | str | None = None, as_of: str | date | None = None,
                    horizon: int | None = None, period_length: float | None = None,
                    discount_rate: float | None = None, margin: float | None = None,
                    progress: Progress = NO_PROGRESS) -> ClvResult:
        """Score customers again with a stored fit (no refit): new horizon, margin, discount.

        Parameters
        ----------
        run : int or str, optional
            The CLV run whose fitted parameters are used (default: the current run).
        as_of : str or date, optional
            End of the history to score (default: the run's).
        horizon, period_length, discount_rate, margin : optional
            Default: the run's values.
        progress : Progress, optional

        Returns
        -------
        crmlens.clv.scoring.ClvResult
            Stored as a new current run.
        """
        from crmlens.clv import store as clv_store
        from crmlens.clv.scoring import rebuild_purchase_model, rescore

        with self._clv_writer() as con, store.transaction(con):
            source = clv_store.get_run(con, run)
            step = RunRecord("clv.predict")
            options = dict(
                unit=source["unit"],
                as_of=as_of if as_of is not None else source["observation_end"],
                horizon=horizon if horizon is not None else source["horizon"],
                period_length=(period_length if period_length is not None
                               else source["period_length"]),
                discount_rate=(discount_rate if discount_rate is not None
                               else source["discount_rate"]),
                margin=margin if margin is not None else source["margin"])
            step.params = {**options, "as_of": str(options["as_of"]),
                           "fitted_in": source.run_id}
            model = rebuild_purchase_model(
                source["purchase_model"], source["params"], se=source["se"],
                log_likelihood=source["log_likelihood"], n_customers=source["n_customers"])
            result = rescore(con, purchase_model=model, spend_params=source["spend_params"],
                             diagnostics=source["diagnostics"], progress=progress, **options)
            step.reserve_id(con)
            clv_store.save_run(con, result, step.run_id, step="clv.predict",
                               fitted_in=source["fitted_in"] or source.run_id,
                               fit_stats={k: source[k] for k in ("log_likelihood", "aic",
                                                                 "bic")})
            step.row_counts = {"customers": result.n_customers}
            result.run_id = step.write(con)
        return result

    def clv_validate(self, *, unit: str = "weeks", as_of: str | date | None = None,
                     horizon: int = 52, calibration_end: str | date | None = None,
                     models: Sequence[str] | None = None, penalizer_coef: float = 0.0,
                     progress: Progress = NO_PROGRESS) -> dict[str, Any]:
        """Compare purchase models on a calibration/holdout split and store the comparison.

        Parameters
        ----------
        unit : {"days", "weeks", "months"}, default "weeks"
        as_of : str or date, optional
            End of the holdout (default: the day after the last purchase).
        horizon : int, default 52
            Holdout length in units when ``calibration_end`` is not given (at least one
            quarter; two such windows of history are needed).
        calibration_end : str or date, optional
            Split date (a period start).
        models : sequence of str, optional
            Registry names (default: every available model).
        penalizer_coef : float, default 0.0
        progress : Progress, optional

        Returns
        -------
        dict
            ``run_id``, ``calibration_end``, ``observation_end``, ``best`` and ``models``
            (one row per model, as stored in ``clv_validations``).
        """
        from crmlens.clv import store as clv_store
        from crmlens.clv.registry import purchase_model_class
        from crmlens.clv.scoring import check_options, holdout_split_dates
        from crmlens.clv.summary import (
            _default_end,
            _parse_date,
            _relation,
            calibration_and_holdout,
        )

        check_options(model="auto", unit=unit, horizon=horizon, period_length=None,
                      discount_rate=0.0, margin=1.0, penalizer_coef=penalizer_coef,
                      spend_model=None)
        for name in models or ():
            purchase_model_class(name)
        try:
            from crmlens.clv.validation import compare_models
        except ImportError:
            raise InputError("error.clv_validation_unavailable") from None
        with self._clv_writer() as con, store.transaction(con):
            run = RunRecord("clv.validate", params={
                "unit": unit, "as_of": as_of and str(as_of), "horizon": horizon,
                "calibration_end": calibration_end and str(calibration_end),
                "models": list(models) if models else None, "penalizer_coef": penalizer_coef})
            end = (_parse_date(as_of, "as_of") if as_of is not None
                   else _default_end(con, _relation(con, "transactions")))
            if calibration_end is not None:
                cal = _parse_date(calibration_end, "calibration_end")
            else:
                first = con.execute("SELECT min(ts)::DATE FROM transactions WHERE customer_id "
                                    "IS NOT NULL AND line_type = 'product'").fetchall()[0][0]
                split_at = holdout_split_dates(first, end, unit=unit, horizon=horizon)
                if split_at is None:
                    raise InputError("error.clv_history_too_short", unit=unit,
                                     horizon=horizon, first=str(first), end=end.isoformat())
                cal = split_at[0]
            progress.stage("progress.clv_validate")
            split = calibration_and_holdout(con, calibration_end=cal, observation_end=end,
                                            unit=unit)
            comparison = compare_models(split, models=list(models) if models else None,
                                        con=con, penalizer_coef=penalizer_coef)
            run.reserve_id(con)
            n = clv_store.save_validation(con, comparison, run.run_id)
            run.params.update(calibration_end=cal.isoformat(), as_of=end.isoformat())
            run.row_counts = {"customers": len(split), "models_compared": n}
            run.write(con)
            rows = clv_store.read_validation(con, run.run_id)
        return {"run_id": run.run_id, "calibration_end": cal.isoformat(),
                "observation_end": end.isoformat(), "best": comparison.best, "models": rows}

    def clv_runs(self) -> list[dict[str, Any]]:
        """Stored CLV runs, newest first (``clv_runs`` rows, JSON decoded)."""
        from crmlens.clv import store as clv_store

        with self.reader() as con:  # type: ignore[attr-defined]
            return [r.to_dict() for r in clv_store.list_runs(con)]

    def clv_scores(self, run: int | str | None = None) -> pd.DataFrame:
        """Per-customer scores of a run (default: the current one), best first."""
        from crmlens.clv import store as clv_store

        with self.reader() as con:  # type: ignore[attr-defined]
            return clv_store.read_scores(con, clv_store.get_run(con, run).run_id)

    def clv_show(self, run: int | str | None = None, *, lang: str | None = None
                 ) -> dict[str, Any]:
        """A stored CLV run: parameters with standard errors, tiers, notes, comparison.

        Parameters
        ----------
        run : int or str, optional
            Run id (default: the current run).
        lang : {"en", "zh"}, optional
            Language of the notes (default: the current language).

        Returns
        -------
        dict
        """
        from crmlens.clv import store as clv_store
        from crmlens.i18n import t

        with self.reader() as con:  # type: ignore[attr-defined]
            found = clv_store.get_run(con, run)
            tiers = clv_store.read_tiers(con, found.run_id)
            validation = clv_store.read_validation(con, found.run_id)
            top = clv_store.read_scores(con, found.run_id).head(TOP_CUSTOMERS)
        data = found.to_dict()
        diag = data.get("diagnostics") or {}

        def params(values: dict | None, errors: dict | None) -> list[dict[str, Any]]:
            return [{"name": k, "value": v, "se": (errors or {}).get(k)}
                    for k, v in (values or {}).items()]

        data["parameters"] = params(data["params"], data["se"])
        data["spend_parameters"] = params(data["spend_params"], data["spend_se"])
        data["notes_text"] = [t(key, lang=lang) for key in diag.get("notes", [])]
        data["one_time_text"] = t(diag.get("one_time_note", "clv.one_time.can_drop_out"),
                                  lang=lang)
        data["tiers"] = tiers
        data["clv_total"] = sum(tier["clv_total"] or 0.0 for tier in tiers)
        data["comparison"] = validation
        data["top_customers"] = top.to_dict("records")
        return data
