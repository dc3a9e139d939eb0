"""The report's churn (or response) prediction section, read from the current churn run.

Everything shown comes from the churn tables of the store (:mod:`crmlens.predict.store`): what
was predicted and how it was trained, the grade of the best model against the naive baseline,
leakage warnings, the share of customers in each risk band, the model comparison, the ROC,
lift and calibration curves, the permutation importance, and the high-risk customers with the
most value at stake (probability × CLV of the current CLV run; else × past spend from the
customer features; else by probability alone), each with the factors that raise their risk.
Without a current churn run the section is left out.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from crmlens.i18n import has
from crmlens.predict import store as churn_store
from crmlens.report import churn_charts
from crmlens.report.sections import (
    Finding,
    Kpi,
    ReportContext,
    Section,
    SectionContent,
    register_section,
)

logger = logging.getLogger(__name__)

BANDS = ("high", "medium", "low")
TOP_CUSTOMERS = 20
TOP_FACTORS = 2
# Columns of the comparison table after the model's name (churn_models columns).
TABLE_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "lift_top_decile",
                 "capture_top_decile", "precision", "recall", "f1", "fit_seconds")


def current_run(ctx: ReportContext) -> dict[str, Any] | None:
    """The current churn run (a ``churn_runs`` row as a dict), or None when there is none.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.

    Returns
    -------
    dict or None
        As :func:`crmlens.predict.store.get_run` returns it (JSON columns decoded).
    """
    if not {"churn_runs", "churn_scores"} <= set(ctx.tables()):
        return None

    def compute() -> dict[str, Any] | None:
        row = ctx.con.execute("SELECT run_id FROM churn_runs WHERE is_current "
                              "ORDER BY created_at DESC, run_id DESC LIMIT 1").fetchone()
        return None if row is None else churn_store.get_run(ctx.con, row[0])

    return ctx.memo("churn.run", compute)


def build_churn(ctx: ReportContext) -> SectionContent | None:
    """The churn section, or None when the workspace holds no current churn run.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.

    Returns
    -------
    SectionContent or None
    """
    run = current_run(ctx)
    if run is None:
        return None
    # A scoring run reuses the fit (comparison, curves, importance) of its training run.
    fitted = str(run.get("fitted_in") or run["run_id"])
    models = churn_store.read_models(ctx.con, fitted)
    names = {m["model"]: model_name(ctx, m["model"]) for m in models}
    names.setdefault(run["best_model"], model_name(ctx, run["best_model"]))
    names.setdefault("baseline", model_name(ctx, "baseline"))
    labels = feature_labels(ctx, run)
    content = SectionContent(intro=ctx.t("report.churn.intro"))
    _headline(ctx, content, run, models, names)
    _comparison(ctx, content, models, names)
    _curve_charts(ctx, content, run, fitted, names)
    _importance(ctx, content, fitted, labels)
    _at_risk(ctx, content, run, labels)
    return content


def model_name(ctx: ReportContext, name: str | None) -> str:
    """Display name of a model family (its own name when the catalogue does not know it)."""
    key = f"predict.model.{name}"
    return ctx.t(key) if name and has(key) else str(name or "–")


def feature_labels(ctx: ReportContext, run: dict[str, Any]) -> dict[str, str]:
    """Readable feature labels in the report's language.

    Transactions features come from the feature catalogue, so they are labelled in the report's
    language; the columns of a labelled table keep the label stored with the run.
    """
    stored = {f["name"]: f.get("label") or f["name"] for f in run.get("features") or []}
    if run.get("mode") != "transactions":
        return stored
    from crmlens.features import feature_catalogue
    from crmlens.segment.labels import feature_label

    names = [item["name"] for item in feature_catalogue(ctx.lang)]
    prefixes = tuple(n.split("{")[0] for n in names if "{" in n)
    return {name: feature_label(name, lang=ctx.lang)
            if name in names or name.startswith(prefixes) else label
            for name, label in stored.items()}


def _auc(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


# --- headline ----------------------------------------------------------------------------


def _headline(ctx: ReportContext, content: SectionContent, run: dict[str, Any],
              models: list[dict[str, Any]], names: dict[str, str]) -> None:
    leakage = [_leakage_text(ctx, item) for item in run.get("leakage") or []]
    content.add_findings(Finding(text, "warning") for text in leakage if text)
    best = next((m for m in models if m.get("is_best")), None)
    baseline = next((m for m in models if m.get("is_baseline")), None)
    bands = churn_store.band_counts(ctx.con, run["run_id"])
    scored = sum(bands.values())
    cards = [Kpi(ctx.t("report.churn.kpi.customers"), ctx.num(scored)),
             Kpi(ctx.t("report.churn.kpi.best_model"), names[run["best_model"]],
                 ctx.t("report.churn.kpi.auc_note", auc=_auc(best and best.get("roc_auc")),
                       baseline=_auc(baseline and baseline.get("roc_auc"))))]
    for band in BANDS:
        n = bands.get(band, 0)
        cards.append(Kpi(ctx.t(f"report.churn.kpi.{band}"),
                         ctx.pct(n / scored if scored else None),
                         ctx.tn("report.churn.kpi.customers_note", n, n=ctx.num(n))))
    content.add_kpis(cards)
    content.add_paragraph(_target_line(ctx, run))
    content.add_paragraph(_training_line(ctx, run, scored), note=True)
    grade = run.get("grade")
    if grade and has(f"predict.grade.{grade}"):
        text = ctx.t(f"predict.grade.{grade}", best=_auc(best and best.get("roc_auc")),
                     baseline=_auc(baseline and baseline.get("roc_auc")))
        content.add_findings([Finding(text, "warning" if grade == "no_better" else "info")])


def _leakage_text(ctx: ReportContext, item: dict[str, Any]) -> str | None:
    key = item.get("message_key") or "predict.leakage.warning"
    if not has(key):
        key = "predict.leakage.warning"
    auc, others = item.get("auc"), item.get("others_auc")
    return ctx.t(key, feature=str(item.get("feature", "–")),
                 auc=_auc(auc), others_auc=_auc(others))


def _target_line(ctx: ReportContext, run: dict[str, Any]) -> str:
    target = run.get("target")
    if run.get("mode") == "transactions" and target in ("churn", "buy_next"):
        return ctx.t(f"report.churn.target.{target}", window=ctx.num(run.get("window_days")))
    return ctx.t("report.churn.target.labelled", target=str(target),
                 positive=str(run.get("positive") or "–"))


def _training_line(ctx: ReportContext, run: dict[str, Any], scored: int) -> str:
    cutoffs = [str(c)[:10] for c in run.get("cutoffs") or []]
    common = {"rows": ctx.num(run.get("n_train")), "rate": ctx.pct(run.get("positive_rate")),
              "scored": ctx.num(scored), "run": run["run_id"]}
    if cutoffs:
        line = ctx.t("report.churn.training.cutoffs", n=ctx.num(len(cutoffs)),
                     first=cutoffs[0], last=cutoffs[-1],
                     as_of=ctx.date(run.get("as_of")) if run.get("as_of") else "–", **common)
    else:
        line = ctx.t("report.churn.training.labelled", **common)
    fitted = run.get("fitted_in")
    if fitted and str(fitted) != str(run["run_id"]):
        line += " " + ctx.t("report.churn.rescored", fitted=str(fitted))
    return line


# --- model comparison --------------------------------------------------------------------


def _comparison(ctx: ReportContext, content: SectionContent, models: list[dict[str, Any]],
                names: dict[str, str]) -> None:
    if not models:
        return
    content.add_heading(ctx.t("report.churn.models_title"))
    header = [ctx.t(f"report.churn.col.{c}") for c in ("model", *TABLE_METRICS)]
    rows = []
    for m in models:
        name = names.get(m["model"], m["model"])
        if m.get("is_best"):
            name = ctx.t("report.churn.best_mark", model=name)
        elif m.get("is_baseline"):
            name = ctx.t("report.churn.baseline_mark", model=name)
        if m.get("error"):
            rows.append([name] + [None] * (len(TABLE_METRICS) - 1)
                        + [ctx.t("report.churn.failed", error=str(m["error"]))])
            continue
        auc = _auc(m.get("roc_auc"))
        if m.get("roc_auc") is not None and m.get("roc_auc_std") is not None:
            auc = f"{auc} ± {float(m['roc_auc_std']):.3f}"
        rows.append([name, auc, _auc(m.get("pr_auc")), ctx.num(m.get("log_loss"), 3),
                     ctx.num(m.get("brier"), 3), ctx.num(m.get("lift_top_decile"), 2),
                     ctx.pct(m.get("capture_top_decile")), ctx.pct(m.get("precision")),
                     ctx.pct(m.get("recall")), _auc(m.get("f1")),
                     ctx.num(m.get("fit_seconds"), 1)])
    content.add_table(header, rows, caption=ctx.t("report.churn.models_caption"),
                      note=ctx.t("report.churn.models_note"),
                      numeric=(False,) + (True,) * len(TABLE_METRICS))


# --- charts ------------------------------------------------------------------------------


def _curve_charts(ctx: ReportContext, content: SectionContent, run: dict[str, Any],
                  fitted: str, names: dict[str, str]) -> None:
    curves = churn_store.read_curves(ctx.con, fitted)
    if curves.empty:
        return
    drawn = [m for m in dict.fromkeys((run["best_model"], "baseline"))
             if (curves["model"] == m).any()]
    if not drawn:
        return
    content.add_heading(ctx.t("report.churn.curves_title"))
    kinds = set(curves["kind"])
    best = names[run["best_model"]]
    if "roc" in kinds:
        content.add_chart(churn_charts.roc_chart(curves, drawn, names, ctx.lang),
                          title=ctx.t("report.churn.roc_chart", model=best))
    if "lift" in kinds:
        content.add_chart(churn_charts.lift_chart(curves, drawn, names, ctx.lang),
                          title=ctx.t("report.churn.lift_chart", model=best))
        content.add_paragraph(ctx.t("report.churn.lift_note"), note=True)
    if "calibration" in kinds:
        content.add_chart(churn_charts.calibration_chart(curves, drawn, names, ctx.lang),
                          title=ctx.t("report.churn.calibration_chart", model=best))
        content.add_paragraph(ctx.t("report.churn.calibration_note"), note=True)


def _importance(ctx: ReportContext, content: SectionContent, fitted: str,
                labels: dict[str, str]) -> None:
    importance = churn_store.read_importance(ctx.con, fitted)
    if importance.empty:
        return
    content.add_heading(ctx.t("report.churn.importance_title"))
    top = min(len(importance), churn_charts.TOP_FEATURES)
    content.add_chart(churn_charts.importance_chart(importance, labels, ctx.lang),
                      title=ctx.t("report.churn.importance_chart", n=top))
    content.add_paragraph(ctx.t("report.churn.importance_note"), note=True)


# --- the high-risk customers with the most value -----------------------------------------


def value_source(ctx: ReportContext, run: dict[str, Any]) -> tuple[str, Any]:
    """What the at-risk customers are ranked by, and where its values are.

    Returns
    -------
    (str, object)
        ``("clv", clv run id)`` when a current CLV run exists; else ``("monetary", as-of
        date)`` when the customer features hold past spend (the churn run's as-of date if
        stored, else the latest); else ``("probability", None)``.
    """
    from crmlens.report.clv import current_run as current_clv_run

    clv_run = current_clv_run(ctx)
    if clv_run is not None:
        return "clv", clv_run["run_id"]
    if "monetary" in ctx.tables().get("customer_features", {}):
        row = ctx.con.execute(
            "SELECT as_of FROM customer_features WHERE monetary IS NOT NULL "
            "ORDER BY (as_of = TRY_CAST(? AS DATE)) DESC NULLS LAST, as_of DESC LIMIT 1",
            [run.get("as_of")]).fetchone()
        if row is not None:
            return "monetary", row[0]
    return "probability", None


def at_risk_customers(ctx: ReportContext, run: dict[str, Any], *, limit: int = TOP_CUSTOMERS
                      ) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """The high-band customers with the most value at risk, and the band's totals.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.
    run : dict
        The churn run.
    limit : int, default 20
        How many customers.

    Returns
    -------
    (str, pandas.DataFrame, dict)
        The value source (see :func:`value_source`); ``customer_id``, ``probability``,
        ``value``, ``at_risk`` (probability × value), ``expected_days_to_next``, ranked by
        value at risk (then probability); and ``n`` (high-band customers) and ``total``
        (their summed value at risk).
    """
    source, key = value_source(ctx, run)
    if source == "clv":
        values, params = "SELECT customer_id, clv AS value FROM clv_scores WHERE run_id = ?", [key]
    elif source == "monetary":
        values = ("SELECT customer_id, monetary AS value FROM customer_features "
                  "WHERE as_of = ?")
        params = [key]
    else:
        values, params = "SELECT NULL::VARCHAR AS customer_id, NULL::DOUBLE AS value LIMIT 0", []
    query = f"""
        SELECT s.customer_id, s.probability, v.value, s.probability * v.value AS at_risk,
               s.expected_days_to_next
        FROM churn_scores s LEFT JOIN ({values}) v ON v.customer_id = s.customer_id
        WHERE s.run_id = ? AND s.risk_band = 'high'"""
    args = [*params, run["run_id"]]
    top = ctx.con.execute(f"{query} ORDER BY at_risk DESC NULLS LAST, s.probability DESC, "
                          f"s.customer_id LIMIT {int(limit)}", args).df()
    n, total = ctx.con.execute(f"SELECT count(*), sum(at_risk) FROM ({query})", args).fetchone()
    return source, top, {"n": int(n), "total": total}


def _at_risk(ctx: ReportContext, content: SectionContent, run: dict[str, Any],
             labels: dict[str, str]) -> None:
    source, top, totals = at_risk_customers(ctx, run)
    buy = run.get("mode") == "transactions" and run.get("target") == "buy_next"
    content.add_heading(ctx.t("report.churn.likely_title" if buy else "report.churn.at_risk_title",
                              n=ctx.num(len(top) or TOP_CUSTOMERS)))
    if top.empty:
        content.add_paragraph(ctx.t("report.churn.no_high_risk"))
        return
    if source != "probability":
        content.add_paragraph(ctx.t(f"report.churn.value_total.{source}",
                                    n=ctx.num(totals["n"]), total=ctx.money(totals["total"], 0)))
    why = _reasons(ctx, run["run_id"], [str(c) for c in top["customer_id"]], labels)
    days = run.get("mode") == "transactions" and top["expected_days_to_next"].notna().any()
    header = ["#", ctx.t("report.churn.col.customer"), ctx.t("report.churn.col.probability")]
    if source != "probability":
        header += [ctx.t(f"report.churn.col.value.{source}"), ctx.t("report.churn.col.at_risk")]
    if days:
        header.append(ctx.t("report.churn.col.days_to_next"))
    header.append(ctx.t("report.churn.col.why"))
    rows = []
    for i, r in enumerate(top.to_dict("records"), start=1):
        cid = str(r["customer_id"])
        row: list[Any] = [i, cid, ctx.pct(r["probability"])]
        if source != "probability":
            row += [ctx.money(_float(r["value"])), ctx.money(_float(r["at_risk"]))]
        if days:
            row.append(ctx.num(_float(r["expected_days_to_next"]), 0))
        row.append(ctx.t("report.churn.reason_separator").join(why.get(cid, [])) or "–")
        rows.append(row)
    numeric = (True, False) + (True,) * (len(header) - 3) + (False,)
    content.add_table(header, rows, note=ctx.t(f"report.churn.at_risk_note.{source}"),
                      numeric=numeric)


def _float(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _reasons(ctx: ReportContext, run_id: str, customer_ids: list[str],
             labels: dict[str, str]) -> dict[str, list[str]]:
    """Each customer's top risk-raising factors, in words in the report's language."""
    factors = churn_store.read_factors(ctx.con, run_id, customer_ids)
    if factors.empty:
        return {}
    raising = factors[factors["effect"].fillna(0.0) > 0].sort_values(["customer_id", "rank"])
    picked = raising.groupby("customer_id", sort=False).head(TOP_FACTORS)
    if picked.empty:
        return {}
    from crmlens.predict.explain import describe_factor

    out: dict[str, list[str]] = {}
    for f in picked.to_dict("records"):
        out.setdefault(str(f["customer_id"]), []).append(describe_factor(
            labels.get(f["feature"], f["feature"]), f["value"], f["reference"],
            float(f["effect"]), lang=ctx.lang))
    return out

register_section(Section("churn", 45, "report.churn.title", build_churn))
