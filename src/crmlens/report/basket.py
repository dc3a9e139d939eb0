"""The report's market-basket section, read from the current basket run.

Shown: a headline (baskets, items, itemsets, rules, the support used), the top rules by lift
with support, confidence and lift, a matrix of lift between the items of the strongest
one-to-one rules, the itemsets by length, and the top rules of each segment when the run was
made per segment. Without a current run the section is left out.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from crmlens.report import charts
from crmlens.report.sections import Kpi, ReportContext, SectionContent, register_section, Section

TOP_RULES = 15
TOP_SEGMENT_RULES = 5
# Items in the association matrix (the items of the strongest one-to-one rules).
MATRIX_ITEMS = 12
NAME_WIDTH = 28


def current_run(ctx: ReportContext) -> dict[str, Any] | None:
    """The current basket run (``basket_runs`` row, params decoded), or None."""
    if not {"basket_runs", "basket_rules", "basket_itemsets"} <= set(ctx.tables()):
        return None

    def compute() -> dict[str, Any] | None:
        cur = ctx.con.execute("SELECT * FROM basket_runs WHERE is_current "
                              "ORDER BY created_at DESC LIMIT 1")
        row = cur.fetchone()
        if row is None:
            return None
        run = dict(zip([d[0] for d in cur.description], row, strict=True))
        params = run.get("params")
        run["params"] = json.loads(params) if isinstance(params, str) else (params or {})
        return run

    return ctx.memo("basket.run", compute)


def _label(ids: Any, names: Any) -> str:
    parts = []
    for i, n in zip(list(ids), list(names), strict=False):
        text = str(n) if n else str(i)
        parts.append(text if len(text) <= NAME_WIDTH else text[:NAME_WIDTH - 1] + "…")
    return " + ".join(parts)


def _rules(ctx: ReportContext, run_id: str, segment: str | None, limit: int) -> pd.DataFrame:
    where = "segment IS NULL" if segment is None else "segment = ?"
    return ctx.con.execute(
        f"SELECT * FROM basket_rules WHERE run_id = ? AND {where} "
        "ORDER BY lift DESC, confidence DESC, count DESC, antecedent, consequent "
        f"LIMIT {int(limit)}", [run_id] + ([] if segment is None else [segment])).df()


def _rule_rows(ctx: ReportContext, rules: pd.DataFrame) -> list[list[Any]]:
    return [[_label(r.antecedent, r.antecedent_names), _label(r.consequent, r.consequent_names),
             ctx.pct(r.support, 2), ctx.pct(r.confidence), ctx.num(r.lift, 2), int(r.count)]
            for r in rules.itertuples()]


def _header(ctx: ReportContext) -> list[str]:
    return [ctx.t(f"report.basket.col.{c}") for c in (
        "antecedent", "consequent", "support", "confidence", "lift", "count")]


def association_matrix(ctx: ReportContext, run_id: str) -> go.Figure | None:
    """A heatmap of lift between the items of the strongest one-to-one rules (None if
    fewer than two such items)."""
    pairs = ctx.con.execute("""
        SELECT antecedent[1] AS a, consequent[1] AS b, antecedent_names[1] AS a_name,
               consequent_names[1] AS b_name, lift, confidence
        FROM basket_rules WHERE run_id = ? AND segment IS NULL
          AND len(antecedent) = 1 AND len(consequent) = 1
        ORDER BY lift DESC, confidence DESC, a, b LIMIT 400""", [run_id]).df()
    if pairs.empty:
        return None
    order: list[str] = []
    names: dict[str, str] = {}
    for r in pairs.itertuples():
        for item, name in ((r.a, r.a_name), (r.b, r.b_name)):
            names[item] = name or item
            if item not in order and len(order) < MATRIX_ITEMS:
                order.append(item)
    if len(order) < 2:
        return None
    lift = {(r.a, r.b): (r.lift, r.confidence) for r in pairs.itertuples()}
    z, text = [], []
    for row in order:
        z.append([lift.get((row, col), (None, None))[0] for col in order])
        text.append([ctx.t("report.basket.matrix_hover", a=names[row], b=names[col],
                           lift=ctx.num(lift[(row, col)][0], 2),
                           confidence=ctx.pct(lift[(row, col)][1]))
                     if (row, col) in lift else "" for col in order])
    labels = [_label([i], [names[i]]) for i in order]
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, text=text, hovertemplate="%{text}<extra></extra>",
        colorscale="Blues", colorbar={"title": {"text": ctx.t("report.basket.col.lift")}},
        hoverongaps=False))
    charts.style(fig, height=140 + 28 * len(order), legend=False)
    fig.update_layout(margin={"l": 180, "r": 24, "t": 16, "b": 160})
    fig.update_xaxes(title_text=ctx.t("report.basket.matrix_x"), tickangle=-45,
                     showgrid=False)
    fig.update_yaxes(title_text=ctx.t("report.basket.matrix_y"), autorange="reversed",
                     showgrid=False)
    return fig


def build_basket(ctx: ReportContext) -> SectionContent | None:
    """The basket section, or None without a current basket run.

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
    rid = str(run["run_id"])
    content = SectionContent(intro=ctx.t("report.basket.intro"))
    support = run.get("min_support")
    support_text = ("–" if support is None else ctx.num(support) if support >= 1
                    else ctx.pct(support, 2 if support < 0.01 else 1))
    content.add_kpis([
        Kpi(ctx.t("report.basket.kpi.baskets"), ctx.num(run.get("n_baskets")),
            ctx.t(f"report.basket.basket_is.{run.get('basket', 'order')}")),
        Kpi(ctx.t("report.basket.kpi.items"), ctx.num(run.get("n_items"))),
        Kpi(ctx.t("report.basket.kpi.itemsets"), ctx.num(run.get("n_itemsets")),
            ctx.t("report.basket.kpi.support_note", support=support_text,
                  count=ctx.num(run.get("min_count")))),
        Kpi(ctx.t("report.basket.kpi.rules"), ctx.num(run.get("n_rules")),
            ctx.t("report.basket.kpi.confidence_note", confidence=ctx.pct(
                _float(run["params"].get("min_confidence")), 0))
            if run["params"].get("min_confidence") is not None else None),
    ])
    rules = _rules(ctx, rid, None, TOP_RULES)
    if rules.empty:
        content.add_paragraph(ctx.t("report.basket.no_rules"))
    else:
        best = rules.iloc[0]
        content.add_paragraph(ctx.t(
            "report.basket.headline", a=_label(best.antecedent, best.antecedent_names),
            b=_label(best.consequent, best.consequent_names),
            confidence=ctx.pct(best.confidence), lift=ctx.num(best.lift, 1)))
        content.add_heading(ctx.t("report.basket.top_title", n=len(rules)))
        content.add_table(_header(ctx), _rule_rows(ctx, rules),
                          note=ctx.t("report.basket.metrics_note"),
                          numeric=(False, False, True, True, True, True))
        fig = association_matrix(ctx, rid)
        if fig is not None:
            content.add_chart(fig, title=ctx.t("report.basket.matrix_title"))
    by_length = ctx.con.execute(
        "SELECT length, count(*), max(support) FROM basket_itemsets "
        "WHERE run_id = ? AND segment IS NULL GROUP BY length ORDER BY length",
        [rid]).fetchall()
    if by_length:
        content.add_heading(ctx.t("report.basket.length_title"))
        content.add_table([ctx.t("report.basket.col.length"),
                           ctx.t("report.basket.col.itemsets"),
                           ctx.t("report.basket.col.max_support")],
                          [[int(n), int(c), ctx.pct(s, 2)] for n, c, s in by_length])
    _segments(ctx, content, run, rid)
    return content


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _segments(ctx: ReportContext, content: SectionContent, run: dict[str, Any],
              rid: str) -> None:
    segments = run["params"].get("segments") or []
    if not segments:
        return
    content.add_heading(ctx.t("report.basket.segments_title"))
    skipped = [s["segment"] for s in segments if s.get("skipped")]
    for seg in segments:
        if seg.get("skipped"):
            continue
        rules = _rules(ctx, rid, seg["segment"], TOP_SEGMENT_RULES)
        if rules.empty:
            continue
        content.add_table(_header(ctx), _rule_rows(ctx, rules),
                          caption=ctx.t("report.basket.segment_caption",
                                        segment=seg["segment"],
                                        baskets=ctx.num(seg.get("baskets"))),
                          numeric=(False, False, True, True, True, True))
    if skipped:
        content.add_paragraph(ctx.t("report.basket.segments_skipped",
                                    segments=", ".join(skipped)), note=True)


register_section(Section("basket", 50, "report.basket.title", build_basket))
