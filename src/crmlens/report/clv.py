"""The report's customer lifetime value section, read from the current CLV run.

Everything shown comes from the CLV tables of the store (``clv_runs``, ``clv_scores``,
``clv_validations``, ``clv_validation_curves``): the headline and settings of the run, value
tiers and how concentrated predicted value is, P(alive), the fitted parameters, the model's
assumptions and their checks, the holdout validation, and the most valuable customers. Without
a current run the section is left out.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import date
from types import ModuleType
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from crmlens.report.sections import (
    Finding,
    Kpi,
    ReportContext,
    Section,
    SectionContent,
    register_section,
)

logger = logging.getLogger(__name__)

TIERS = ("top", "high", "medium", "low")
TOP_CUSTOMERS = 20
P_ALIVE_BINS = 20
# Points of the concentration curve (percentiles of customers ranked by CLV).
CURVE_POINTS = 100
MODEL_LABELS = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD",
                "bgbb": "BG/BB", "gamma_gamma": "Gamma-Gamma"}
# Known assumption texts on one-time buyers (report.clv.one_time.<model>).
ONE_TIME_MODELS = ("bgnbd", "mbgnbd", "pareto_nbd", "bgbb")


def _has_key(key: str) -> bool:
    from crmlens.i18n import has

    return has(key)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value or {}


def _model_label(name: str | None) -> str:
    return MODEL_LABELS.get(name or "", name or "–")


def _discrete_time() -> frozenset[str]:
    # The registry imports the clv package (scipy ...); only when a validation is shown.
    from crmlens.clv.registry import DISCRETE_TIME

    return DISCRETE_TIME


def _clv_charts() -> ModuleType | None:
    """The CLV chart builders, or None when that module is not installed (charts skipped)."""
    try:
        from crmlens.report import clv_charts
    except ImportError:
        logger.info("crmlens.report.clv_charts is not available: validation charts skipped")
        return None
    return clv_charts


def current_run(ctx: ReportContext) -> dict[str, Any] | None:
    """The current CLV run (a ``clv_runs`` row as a dict), or None when there is none.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.

    Returns
    -------
    dict or None
        Its ``params``, ``se`` and ``diagnostics`` are decoded from JSON.
    """
    if not {"clv_runs", "clv_scores"} <= set(ctx.tables()):
        return None

    def compute() -> dict[str, Any] | None:
        cur = ctx.con.execute("SELECT * FROM clv_runs WHERE is_current "
                              "ORDER BY created_at DESC, run_id DESC LIMIT 1")
        row = cur.fetchone()
        if row is None:
            return None
        run = dict(zip([d[0] for d in cur.description], row))
        for key in ("params", "se", "diagnostics"):
            run[key] = _json(run.get(key))
        run["run_id"] = str(run["run_id"])
        return run

    return ctx.memo("clv.run", compute)


def build_clv(ctx: ReportContext) -> SectionContent | None:
    """The CLV section, or None when there is no current CLV run with scored customers.

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
    totals = _totals(ctx, run["run_id"])
    if not totals["n"]:
        return None
    validations = _validations(ctx, run)
    content = SectionContent(intro=ctx.t("report.clv.intro"))
    _headline(ctx, content, run, totals, validations)
    _tiers(ctx, content, run["run_id"])
    _p_alive(ctx, content, run["run_id"], totals)
    _parameters(ctx, content, run)
    _assumptions(ctx, content, run)
    if validations is not None:
        _validation(ctx, content, run, validations)
    _top_customers(ctx, content, run["run_id"])
    return content


# --- headline ----------------------------------------------------------------------------


def _totals(ctx: ReportContext, run_id: str) -> dict[str, Any]:
    row = ctx.con.execute("""
        SELECT count(*), sum(clv), avg(clv), avg(p_alive), sum(expected_purchases),
               median(clv)
        FROM clv_scores WHERE run_id = ?""", [run_id]).fetchone()
    keys = ("n", "total", "mean", "mean_p_alive", "purchases", "median")
    return dict(zip(keys, row))


def _validations(ctx: ReportContext, run: dict[str, Any]) -> pd.DataFrame | None:
    """The holdout comparison stored with the run, or with the fit a re-scoring reused."""
    if "clv_validations" not in ctx.tables():
        return None
    for run_id in dict.fromkeys(str(r) for r in (run["run_id"], run.get("fitted_in")) if r):
        # The best model first, then by holdout error; failed fits last.
        frame = ctx.con.execute("SELECT * FROM clv_validations WHERE run_id = ? "
                                "ORDER BY is_best DESC NULLS LAST, rmse NULLS LAST, model",
                                [run_id]).df()
        if not frame.empty:
            return frame
    return None


def _unit(ctx: ReportContext, unit: str | None) -> str:
    key = f"report.clv.unit.{unit}"
    return ctx.t(key) if _has_key(key) else str(unit or "–")


def _headline(ctx: ReportContext, content: SectionContent, run: dict[str, Any],
              totals: dict[str, Any], validations: pd.DataFrame | None) -> None:
    unit = _unit(ctx, run.get("unit"))
    content.add_kpis([
        Kpi(ctx.t("report.clv.kpi.customers"), ctx.num(totals["n"])),
        Kpi(ctx.t("report.clv.kpi.total"), ctx.money(totals["total"], 0),
            ctx.t("report.clv.kpi.horizon_note", horizon=ctx.num(run.get("horizon")),
                  unit=unit)),
        Kpi(ctx.t("report.clv.kpi.mean"), ctx.money(totals["mean"]),
            ctx.t("report.clv.kpi.median_note", value=ctx.money(totals["median"]))),
        Kpi(ctx.t("report.clv.kpi.p_alive"), ctx.pct(totals["mean_p_alive"])),
        Kpi(ctx.t("report.clv.kpi.purchases"), ctx.num(totals["purchases"], 1)),
    ])
    model = _model_label(run.get("purchase_model"))
    spend = run.get("spend_model")
    content.add_paragraph(ctx.t(
        "report.clv.model_line", model=model,
        spend=_model_label(spend) if spend else ctx.t("report.clv.no_spend_model"),
        as_of=ctx.date(run.get("observation_end")), run=run["run_id"]))
    content.add_paragraph(_why(ctx, run, validations))
    content.add_paragraph(ctx.t(
        "report.clv.settings_line", horizon=ctx.num(run.get("horizon")), unit=unit,
        margin=ctx.pct(run.get("margin")), discount=ctx.pct(run.get("discount_rate"), 2),
        period=ctx.num(run.get("period_length"), 2) if run.get("period_length") is not None
        else "–"), note=True)


def _why(ctx: ReportContext, run: dict[str, Any], validations: pd.DataFrame | None) -> str:
    """Why this purchase model: the holdout comparison's pick, BIC, or the user's choice."""
    model = run.get("purchase_model")
    selection = (run.get("diagnostics") or {}).get("selection") or {}
    method = selection.get("method")
    if method == "bic":
        return ctx.t("report.clv.why.bic", n=ctx.num(len(selection.get("candidates") or [])
                                                     or None))
    best_row = None
    if validations is not None and "is_best" in validations:
        best = validations[validations["is_best"].fillna(False).astype(bool)]
        best_row = None if best.empty else best.iloc[0]
    best_name = best_row["model"] if best_row is not None else selection.get("best")
    if method == "fixed" or (method is None and best_row is not None and best_name != model):
        if best_row is not None and best_name != model:
            return ctx.t("report.clv.why.user", best=_model_label(best_name))
        return ctx.t("report.clv.why.fixed")
    if best_name == model and best_row is not None:
        return ctx.t("report.clv.why.best", n=ctx.num(len(validations)),
                     rmse=ctx.num(_float(best_row.get("rmse")), 3))
    if method == "holdout" and best_name == model:
        return ctx.t("report.clv.why.holdout")
    if method == "holdout":
        # e.g. a degenerate BG/NBD fit replaced by MBG/NBD: the notes below say why.
        return ctx.t("report.clv.why.replaced", best=_model_label(best_name))
    return ctx.t("report.clv.why.no_validation")


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


# --- value tiers -------------------------------------------------------------------------


def tier_table(ctx: ReportContext, run_id: str) -> list[dict[str, Any]]:
    """Per value tier: customers, shares of customers and of predicted value, mean CLV and
    P(alive), in the order top, high, medium, low (tiers without customers left out).

    Parameters
    ----------
    ctx : ReportContext
        The report being built.
    run_id : str
        The CLV run.

    Returns
    -------
    list of dict
        Keys ``tier``, ``customers``, ``share_customers``, ``share_value``, ``mean_clv``,
        ``mean_p_alive``.
    """
    rows = ctx.con.execute("""
        SELECT value_tier, count(*) AS customers,
               count(*) / sum(count(*)) OVER () AS share_customers,
               sum(clv) / nullif(sum(sum(clv)) OVER (), 0) AS share_value,
               avg(clv) AS mean_clv, avg(p_alive) AS mean_p_alive,
               avg(p_purchase) AS mean_p_purchase
        FROM clv_scores WHERE run_id = ? GROUP BY value_tier""", [run_id]).fetchall()
    keys = ("tier", "customers", "share_customers", "share_value", "mean_clv", "mean_p_alive",
            "mean_p_purchase")
    found = [dict(zip(keys, r)) for r in rows]
    rank = {tier: i for i, tier in enumerate(TIERS)}
    return sorted(found, key=lambda r: (rank.get(r["tier"], len(TIERS)), str(r["tier"])))


def _tier_label(ctx: ReportContext, tier: str | None) -> str:
    key = f"report.clv.tier.{tier}"
    return ctx.t(key) if _has_key(key) else str(tier or "–")


def _tiers(ctx: ReportContext, content: SectionContent, run_id: str) -> None:
    tiers = tier_table(ctx, run_id)
    content.add_heading(ctx.t("report.clv.tiers_title"))
    header = [ctx.t(f"report.clv.col.{c}") for c in (
        "tier", "customers", "share_customers", "share_value", "mean_clv", "mean_p_alive",
        "mean_p_purchase")]
    rows = [[_tier_label(ctx, r["tier"]), r["customers"], ctx.pct(r["share_customers"]),
             ctx.pct(r["share_value"]), ctx.money(r["mean_clv"]), ctx.pct(r["mean_p_alive"]),
             ctx.pct(r["mean_p_purchase"])]
            for r in tiers]
    content.add_table(header, rows, note=ctx.t("report.clv.tiers_note"))
    top = next((r for r in tiers if r["tier"] == "top"), None)
    if top is not None and top["share_value"] is not None:
        content.add_paragraph(ctx.t("report.clv.top_share",
                                    customers=ctx.pct(top["share_customers"], 0),
                                    value=ctx.pct(top["share_value"], 0)))
    labels = [_tier_label(ctx, r["tier"]) for r in tiers]
    fig = go.Figure([
        go.Bar(name=ctx.t("report.clv.col.share_customers"), x=labels,
               y=[r["share_customers"] for r in tiers], marker_color=ctx.charts.PALETTE[0],
               hovertemplate="%{x}: %{y:.1%}<extra></extra>"),
        go.Bar(name=ctx.t("report.clv.col.share_value"), x=labels,
               y=[r["share_value"] or 0.0 for r in tiers], marker_color=ctx.charts.PALETTE[1],
               hovertemplate="%{x}: %{y:.1%}<extra></extra>"),
    ])
    fig.update_layout(barmode="group", yaxis_tickformat=".0%")
    content.add_chart(ctx.charts.style(fig), title=ctx.t("report.clv.tiers_chart"))
    _concentration(ctx, content, run_id)


def concentration_curve(ctx: ReportContext, run_id: str) -> list[tuple[float, float]]:
    """Share of predicted value held by the top x share of customers (ranked by CLV).

    Parameters
    ----------
    ctx : ReportContext
        The report being built.
    run_id : str
        The CLV run.

    Returns
    -------
    list of (float, float)
        ``(share of customers, share of value)`` from ``(0, 0)`` to ``(1, 1)``, one point per
        percentile of customers; empty when the total CLV is not positive.
    """
    rows = ctx.con.execute(f"""
        SELECT bucket, count(*) AS n, sum(clv) AS value FROM (
            SELECT ntile({CURVE_POINTS}) OVER (ORDER BY clv DESC, customer_id) AS bucket, clv
            FROM clv_scores WHERE run_id = ?)
        GROUP BY bucket ORDER BY bucket""", [run_id]).fetchall()
    n_total = sum(r[1] for r in rows)
    v_total = sum(r[2] or 0.0 for r in rows)
    if not n_total or v_total <= 0:
        return []
    points = [(0.0, 0.0)]
    n_cum = v_cum = 0.0
    for _, n, value in rows:
        n_cum += n
        v_cum += value or 0.0
        points.append((n_cum / n_total, v_cum / v_total))
    return points


def _concentration(ctx: ReportContext, content: SectionContent, run_id: str) -> None:
    points = concentration_curve(ctx, run_id)
    if len(points) < 3:
        return
    fig = go.Figure([
        go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines",
                   name=ctx.t("report.clv.curve_clv"), line={"color": ctx.charts.PALETTE[0],
                                                              "width": 2.5},
                   hovertemplate="%{x:.0%} → %{y:.1%}<extra></extra>"),
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=ctx.t("report.clv.curve_equal"),
                   line={"color": ctx.charts.NEUTRAL, "dash": "dot"}, hoverinfo="skip"),
    ])
    fig.update_xaxes(title=ctx.t("report.clv.curve_x"), tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title=ctx.t("report.clv.curve_y"), tickformat=".0%", range=[0, 1.02])
    content.add_chart(ctx.charts.style(fig), title=ctx.t("report.clv.curve_chart"))


# --- P(alive) ----------------------------------------------------------------------------


def p_alive_histogram(ctx: ReportContext, run_id: str) -> list[int]:
    """Customers per P(alive) bin of width 1 / ``P_ALIVE_BINS`` (P(alive) = 1 in the last).

    Parameters
    ----------
    ctx : ReportContext
        The report being built.
    run_id : str
        The CLV run.

    Returns
    -------
    list of int
        ``P_ALIVE_BINS`` counts, lowest P(alive) first.
    """
    rows = dict(ctx.con.execute(f"""
        SELECT least(greatest(floor(p_alive * {P_ALIVE_BINS}), 0), {P_ALIVE_BINS - 1})::INT,
               count(*)
        FROM clv_scores WHERE run_id = ? AND p_alive IS NOT NULL GROUP BY 1""",
                                [run_id]).fetchall())
    return [int(rows.get(i, 0)) for i in range(P_ALIVE_BINS)]


def _p_alive(ctx: ReportContext, content: SectionContent, run_id: str,
             totals: dict[str, Any]) -> None:
    counts = p_alive_histogram(ctx, run_id)
    if not sum(counts):
        return
    content.add_heading(ctx.t("report.clv.p_alive_title"))
    width = 1 / P_ALIVE_BINS
    labels = [f"{i * width:.2f}–{(i + 1) * width:.2f}" for i in range(P_ALIVE_BINS)]
    content.add_chart(ctx.charts.bar(labels, counts, x_title=ctx.t("report.clv.p_alive_x"),
                                     y_title=ctx.t("report.clv.col.customers"),
                                     name=ctx.t("report.clv.col.customers")),
                      title=ctx.t("report.clv.p_alive_chart"))
    below = sum(counts[: P_ALIVE_BINS // 2])
    content.add_paragraph(ctx.t("report.clv.p_alive_line", share=ctx.pct(below / sum(counts)),
                                mean=ctx.pct(totals["mean_p_alive"])), note=True)


# --- parameters and assumptions ----------------------------------------------------------


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Parameter dicts, possibly nested by model (``{"purchase": {...}, "spend": {...}}``)."""
    out: dict[str, Any] = {}
    if not isinstance(values, dict):
        return out
    for name, value in values.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flatten(value, key + "."))
        else:
            out[key] = value
    return out


def _sig(value: Any) -> str:
    number = _float(value)
    return "–" if number is None else f"{number:.4g}"


def _parameters(ctx: ReportContext, content: SectionContent, run: dict[str, Any]) -> None:
    rows = []
    for model, params_key, se_key in ((run.get("purchase_model"), "params", "se"),
                                      (run.get("spend_model"), "spend_params", "spend_se")):
        params, se = _flatten(_json(run.get(params_key))), _flatten(_json(run.get(se_key)))
        rows += [[_model_label(model), name, _sig(value), _sig(se.get(name))]
                 for name, value in params.items()]
    if not rows:
        return
    content.add_heading(ctx.t("report.clv.params_title"))
    note = ctx.t("report.clv.params_note", ll=ctx.num(_float(run.get("log_likelihood")), 1),
                 aic=ctx.num(_float(run.get("aic")), 1), bic=ctx.num(_float(run.get("bic")), 1))
    content.add_table([ctx.t("report.clv.col.model"), ctx.t("report.clv.col.parameter"),
                       ctx.t("report.clv.col.estimate"), ctx.t("report.clv.col.se")], rows,
                      note=note, numeric=(False, False, True, True))


def _assumptions(ctx: ReportContext, content: SectionContent, run: dict[str, Any]) -> None:
    content.add_heading(ctx.t("report.clv.assumptions_title"))
    findings: list[Finding] = []
    model = run.get("purchase_model")
    one_time = _float(run.get("one_time_share"))
    if model in ONE_TIME_MODELS:
        findings.append(Finding(ctx.t(f"report.clv.one_time.{model}",
                                      share=ctx.pct(one_time), model=_model_label(model))))
    elif one_time is not None:
        findings.append(Finding(ctx.t("report.clv.one_time.other", share=ctx.pct(one_time))))
    diagnostics = run.get("diagnostics") or {}
    corr = _float(diagnostics.get("gg_correlation"))
    if run.get("spend_model") and corr is not None:
        suspect = bool(diagnostics.get("gg_independence_suspect"))
        key = "report.clv.gg_suspect" if suspect else "report.clv.gg_ok"
        findings.append(Finding(ctx.t(key, r=f"{corr:.2f}"), "warning" if suspect else "info"))
    for note in diagnostics.get("notes") or []:
        # The independence note repeats the check above, with its correlation.
        if note == "clv.note.gg_independence_suspect":
            continue
        if isinstance(note, str) and _has_key(note):
            findings.append(Finding(ctx.t(note)))
    content.add_findings(findings)


# --- validation --------------------------------------------------------------------------


def _validation(ctx: ReportContext, content: SectionContent, run: dict[str, Any],
                validations: pd.DataFrame) -> None:
    first = validations.iloc[0]
    content.add_heading(ctx.t("report.clv.validation_title"))
    content.add_paragraph(ctx.t(
        "report.clv.validation_line", calibration_end=ctx.date(_date(first.get(
            "calibration_end"))), observation_end=ctx.date(_date(first.get("observation_end"))),
        holdout=ctx.num(_float(first.get("duration_holdout"))),
        unit=_unit(ctx, first.get("unit") or run.get("unit"))), note=True)
    discrete = _discrete_time()
    header = [ctx.t(f"report.clv.col.{c}") for c in (
        "model", "n_params", "log_likelihood", "aic", "bic", "mae", "rmse", "baseline_mae",
        "aggregate_error", "grade")]
    rows = []
    marked = False
    for _, r in validations.iterrows():
        name = _model_label(r["model"])
        if bool(r.get("is_best")):
            name = ctx.t("report.clv.best_mark", model=name)
        mark = ""
        if r["model"] in discrete:
            mark, marked = " *", True
        error = r.get("error")
        if isinstance(error, str) and error:
            rows.append([name, None, None, None, None, None, None, None, None,
                         ctx.t("report.clv.failed", error=error)])
            continue
        rows.append([
            name, _int(r.get("n_params")),
            _num_mark(ctx, r.get("log_likelihood"), mark), _num_mark(ctx, r.get("aic"), mark),
            _num_mark(ctx, r.get("bic"), mark), ctx.num(_float(r.get("mae")), 3),
            ctx.num(_float(r.get("rmse")), 3), ctx.num(_float(r.get("baseline_mae")), 3),
            ctx.pct(_float(r.get("aggregate_error"))), _grade(ctx, r.get("grade"))])
    notes = [ctx.t("report.clv.comparison_note")]
    if marked:
        notes.append(ctx.t("report.clv.discrete_note"))
    content.add_table(header, rows, caption=ctx.t("report.clv.comparison_caption"),
                      note=" ".join(notes),
                      numeric=(False,) + (True,) * 8 + (False,))
    _validation_charts(ctx, content, run, validations)


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _num_mark(ctx: ReportContext, value: Any, mark: str) -> str:
    number = _float(value)
    return "–" if number is None else ctx.num(number, 1) + mark


def _grade(ctx: ReportContext, grade: Any) -> str:
    key = f"report.clv.grade.{grade}"
    return ctx.t(key) if isinstance(grade, str) and _has_key(key) else str(grade or "–")


def _date(value: Any) -> date | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def validation_curves(ctx: ReportContext, run_id: str, model: str
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored expected-vs-actual curves of one model, as the chart builders take them.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.
    run_id : str
        The CLV run.
    model : str
        Registry name of the purchase model.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        ``by_frequency`` (``frequency``, ``label``, ``expected``, ``actual``, ``baseline``)
        and ``cumulative`` (``period``, ``period_start``, ``expected``, ``actual``); empty
        when nothing is stored.
    """
    if "clv_validation_curves" not in ctx.tables():
        return pd.DataFrame(), pd.DataFrame()
    by_freq = ctx.con.execute("""
        SELECT x::BIGINT AS frequency, label, expected, actual, baseline
        FROM clv_validation_curves WHERE run_id = ? AND model = ? AND chart = 'by_frequency'
        ORDER BY x""", [run_id, model]).df()
    cumulative = ctx.con.execute("""
        SELECT x::BIGINT AS period, label AS period_start, expected, actual
        FROM clv_validation_curves WHERE run_id = ? AND model = ? AND chart = 'cumulative'
        ORDER BY x""", [run_id, model]).df()
    return by_freq, cumulative


def _validation_charts(ctx: ReportContext, content: SectionContent, run: dict[str, Any],
                       validations: pd.DataFrame) -> None:
    builders = _clv_charts()
    if builders is None:
        return
    ok = validations[validations["error"].isna()] if "error" in validations else validations
    if len(ok) > 1:
        table = ok.assign(model=ok["model"].map(_model_label)).reset_index(drop=True)
        content.add_chart(builders.model_comparison_chart(table, ctx.lang),
                          title=ctx.t("report.clv.comparison_chart"))
    # Curves of the model in use, else of the validation's best.
    model, run_id = run.get("purchase_model"), str(validations["run_id"].iloc[0])
    by_freq, cumulative = validation_curves(ctx, run_id, model)
    if by_freq.empty and cumulative.empty and "is_best" in validations:
        best = validations[validations["is_best"].fillna(False).astype(bool)]
        if not best.empty:
            model = best.iloc[0]["model"]
            by_freq, cumulative = validation_curves(ctx, run_id, model)
    label = _model_label(model)
    if not by_freq.empty:
        content.add_chart(builders.by_frequency_chart(by_freq, ctx.lang),
                          title=ctx.t("report.clv.by_frequency_chart", model=label))
    if not cumulative.empty:
        row = validations[validations["model"] == model]
        calibration_end = _date((row if not row.empty else validations).iloc[0]
                                .get("calibration_end"))
        content.add_chart(builders.cumulative_chart(cumulative, calibration_end, ctx.lang),
                          title=ctx.t("report.clv.cumulative_chart", model=label))


# --- top customers -----------------------------------------------------------------------


def _top_customers(ctx: ReportContext, content: SectionContent, run_id: str) -> None:
    rows = ctx.con.execute(f"""
        SELECT customer_id, frequency, recency, "T", monetary_value, p_alive,
               expected_purchases, expected_spend, clv, value_tier, p_purchase
        FROM clv_scores WHERE run_id = ?
        ORDER BY clv DESC NULLS LAST, customer_id LIMIT {TOP_CUSTOMERS}""", [run_id]).fetchall()
    content.add_heading(ctx.t("report.clv.top_title", n=TOP_CUSTOMERS))
    header = ["#"] + [ctx.t(f"report.clv.col.{c}") for c in (
        "customer", "frequency", "recency", "T", "monetary_value", "p_alive",
        "mean_p_purchase", "expected_purchases", "expected_spend", "clv", "tier")]
    table = [[i, r[0], r[1], ctx.num(r[2], 0), ctx.num(r[3], 0), ctx.money(r[4]), ctx.pct(r[5]),
              ctx.pct(r[10]), ctx.num(r[6], 2), ctx.money(r[7]), ctx.money(r[8]),
              _tier_label(ctx, r[9])]
             for i, r in enumerate(rows, start=1)]
    content.add_table(header, table, note=ctx.t("report.clv.top_note"),
                      numeric=(True, False) + (True,) * 9 + (False,))


register_section(Section("clv", 40, "report.clv.title", build_clv))
