"""The report's recommendations section, read from the current recommendation run: method,
the evaluation against the popularity baseline with its grade, a precision/recall chart and
example recommendations with their reasons. Without a run the section is left out.
"""

from __future__ import annotations

import plotly.graph_objects as go

from crmlens.report.sections import (
    Kpi,
    ReportContext,
    Section,
    SectionContent,
    register_section,
)

EXAMPLE_CUSTOMERS = 3


def build_recommend(ctx: ReportContext) -> SectionContent | None:
    """The recommendations section, or None when there is no current run."""
    from crmlens.recommend import store as rec_store

    if "recommend_runs" not in ctx.tables():
        return None
    try:
        run = rec_store.get_run(ctx.con)
    except Exception:  # noqa: BLE001 - no current run: nothing to show
        return None
    rows = rec_store.read_evaluations(ctx.con, run["run_id"])
    n = ctx.con.execute("SELECT count(DISTINCT customer_id) FROM recommendations "
                        "WHERE run_id = ?", [run["run_id"]]).fetchone()[0]
    content = SectionContent(intro=ctx.t("report.recommend.intro"))
    hybrid = next((r for r in rows if r["method"] == run["method"]), None)
    kpis = [Kpi(ctx.t("report.recommend.kpi.customers"), ctx.num(n))]
    if hybrid:
        lift = (hybrid["precision"] / hybrid["baseline_precision"]
                if hybrid["baseline_precision"] else None)
        kpis += [Kpi(ctx.t("report.recommend.kpi.lift"),
                     f"×{lift:.2f}" if lift is not None else "–",
                     ctx.t(f"recommend.grade.{hybrid['grade']}")),
                 Kpi(ctx.t("report.recommend.kpi.hit_rate"), ctx.pct(hybrid["hit_rate"]))]
    content.add_kpis(kpis)
    repeats = (run.get("params") or {}).get("allow_repeats")
    content.add_paragraph(ctx.t(
        "report.recommend.method_line", method=ctx.t(f"recommend.method.{run['method']}"),
        k=run["k"], n=ctx.num(n),
        repeats=ctx.t("report.recommend.repeats_allowed" if repeats
                      else "report.recommend.repeats_excluded")))
    if rows:
        _evaluation(ctx, content, run, rows)
    _examples(ctx, content, run["run_id"])
    return content


def _evaluation(ctx: ReportContext, content: SectionContent, run: dict, rows: list[dict]
                ) -> None:
    metrics = run.get("metrics") or {}
    base = metrics.get("baseline") or {}
    content.add_heading(ctx.t("report.recommend.eval_title"))
    header = [ctx.t(f"cli.recommend.col.{c}") for c in
              ("method", "precision", "recall", "hit_rate", "coverage", "grade")]
    table = [[ctx.t(f"recommend.method.{r['method']}"), ctx.pct(r["precision"]),
              ctx.pct(r["recall"]), ctx.pct(r["hit_rate"]), ctx.pct(r["coverage"]),
              ctx.t(f"recommend.grade.{r['grade']}")] for r in rows]
    if base:
        table.append([ctx.t("recommend.method.baseline"), ctx.pct(base.get("precision")),
                      ctx.pct(base.get("recall")), ctx.pct(base.get("hit_rate")),
                      ctx.pct(base.get("coverage")), "–"])
    content.add_table(header, table, note=ctx.t(
        "report.recommend.eval_note", test_start=metrics.get("test_start", "–"),
        n=ctx.num(rows[0]["n_customers"])))
    labels = [ctx.t(f"recommend.method.{r['method']}") for r in rows]
    precision = [r["precision"] for r in rows]
    recall = [r["recall"] for r in rows]
    if base:
        labels.append(ctx.t("recommend.method.baseline"))
        precision.append(base.get("precision"))
        recall.append(base.get("recall"))
    fig = go.Figure([go.Bar(name=ctx.t("cli.recommend.col.precision"), x=labels, y=precision),
                     go.Bar(name=ctx.t("cli.recommend.col.recall"), x=labels, y=recall)])
    fig.update_layout(barmode="group", yaxis_tickformat=".0%")
    content.add_chart(fig, title=ctx.t("report.recommend.chart_title"))


def _examples(ctx: ReportContext, content: SectionContent, run_id: str) -> None:
    from crmlens.recommend import store as rec_store

    firsts = [r[0] for r in ctx.con.execute(
        "SELECT DISTINCT customer_id FROM recommendations WHERE run_id = ? "
        "ORDER BY customer_id LIMIT ?", [run_id, EXAMPLE_CUSTOMERS]).fetchall()]
    frame = rec_store.read_recommendations(ctx.con, run_id)
    frame = frame[frame["customer_id"].isin(firsts) & (frame["rank"] <= 5)]
    content.add_heading(ctx.t("report.recommend.examples_title"))
    header = [ctx.t(f"cli.recommend.col.{c}") for c in
              ("customer", "rank", "product", "reason")]
    table = [[r["customer_id"], r["rank"], f"{r['product_id']} {r['product_name'] or ''}",
              ctx.t(r["reason_key"], item=r["reason_item_name"] or r["reason_item"] or "")]
             for r in frame.to_dict("records")]
    content.add_table(header, table, numeric=(False, True, False, False))


register_section(Section("recommend", 60, "report.recommend.title", build_recommend))
