"""The report's segmentation section: every saved segmentation (latest run of each name) with
its profiles, charts, rule explanations, the choice of k, and migration between runs.

Everything shown is read from the store (``segment_runs``, ``segments``, ``segment_profiles``,
``customer_features``); the section computes nothing that a later reader could not trace.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from crmlens.report.sections import ReportContext, Section, SectionContent, register_section

# Methods shown first; anything else (rule-based, waterfall ...) follows by name.
METHOD_ORDER = {"rfm": 0}
MAX_RUNS = 6
# Customers drawn for the scatter chart (a page must stay light).
SCATTER_POINTS = 2500
HEATMAP_FEATURES = 10


def _feature_label(ctx: ReportContext, name: str) -> str:
    from crmlens.segment.labels import feature_label

    return feature_label(name, lang=ctx.lang)


def _latest_runs(ctx: ReportContext) -> list[dict[str, Any]]:
    from crmlens.segment.store import get_run

    rows = ctx.con.execute("""
        SELECT name, max(run_id) AS latest, count(*) AS n FROM segment_runs GROUP BY name
    """).fetchall()
    runs = []
    for name, latest, n in rows:
        run = get_run(ctx.con, int(latest))
        runs.append({"run": run, "n_runs": int(n)})
    runs.sort(key=lambda r: (METHOD_ORDER.get(r["run"].method, 1), r["run"].run_id))
    return runs[:MAX_RUNS]


def build_segments(ctx: ReportContext) -> SectionContent | None:
    """The segmentation section, or None when nothing has been segmented yet.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.

    Returns
    -------
    SectionContent or None
    """
    if not ctx.has_rows("segment_runs"):
        return None
    content = SectionContent(intro=ctx.t("report.segments.intro"))
    for entry in _latest_runs(ctx):
        _one_run(ctx, content, entry["run"])
        if entry["n_runs"] > 1:
            _migration(ctx, content, entry["run"])
    return content


def _profiles(ctx: ReportContext, run_id: int) -> list[dict[str, Any]]:
    from crmlens.segment.store import read_profiles

    return read_profiles(ctx.con, run_id)


def _name(ctx: ReportContext, profile: dict[str, Any]) -> str:
    name = profile.get("name")
    if isinstance(name, dict):
        name = name.get(ctx.lang) or name.get("en")
    return str(name or profile["segment"])


def _one_run(ctx: ReportContext, content: SectionContent, run) -> None:
    method = ctx.t(f"report.segments.method.{run.method}") \
        if _has_key(f"report.segments.method.{run.method}") else run.method
    content.add_heading(ctx.t("report.segments.run_title", name=run.name, method=method))
    content.add_paragraph(ctx.t("report.segments.run_line", customers=ctx.num(run.n_customers),
                                segments=ctx.num(run.n_segments),
                                as_of=ctx.date(run.as_of), run=run.run_id), note=True)
    for note in _notes_text(ctx, run.notes):
        content.add_paragraph(note, note=True)
    profiles = _profiles(ctx, run.run_id)
    if not profiles:
        return
    names = {p["segment"]: _name(ctx, p) for p in profiles}
    _profile_table(ctx, content, profiles, names, _segment_clv(ctx, run.run_id),
                   _segment_churn(ctx, run.run_id))
    _sizes_chart(ctx, content, profiles, names)
    _heatmap(ctx, content, profiles, names)
    _scatter(ctx, content, run, names)
    _rules(ctx, content, run, names)
    _k_choice(ctx, content, run)
    _preprocessing(ctx, content, run)


def _has_key(key: str) -> bool:
    from crmlens.i18n import has

    return has(key)


def _localized(value: Any, lang: str) -> Any:
    if isinstance(value, dict) and ("en" in value or "zh" in value):
        return value.get(lang) or value.get("en")
    return value


def _notes_text(ctx: ReportContext, notes: dict[str, Any]) -> list[str]:
    out = []
    for key in ("preprocessing", "sampling", "k_reason"):
        text = _localized(notes.get(key), ctx.lang)
        if isinstance(text, str) and text:
            out.append(text)
    return out


def _segment_clv(ctx: ReportContext, run_id: int) -> dict[str, dict[str, float | None]]:
    from crmlens.segment.clv_join import segment_clv_by_name

    return segment_clv_by_name(ctx.con, run_id)


def _segment_churn(ctx: ReportContext, run_id: int) -> dict[str, dict[str, float | None]]:
    from crmlens.segment.churn_join import segment_churn_by_name

    return segment_churn_by_name(ctx.con, run_id)


def _profile_table(ctx: ReportContext, content: SectionContent, profiles: list[dict],
                   names: dict[str, str], clv: dict[str, dict[str, float | None]],
                   churn: dict[str, dict[str, float | None]] | None = None) -> None:
    def med(p: dict, feature: str) -> Any:
        stat = p.get("headline", {}).get(feature) or p.get("features", {}).get(feature)
        return None if not stat else stat.get("median")

    header = [ctx.t("report.segments.col.segment"), ctx.t("report.segments.col.customers"),
              ctx.t("report.segments.col.share_customers"),
              ctx.t("report.segments.col.share_revenue"),
              _feature_label(ctx, "recency_days"), _feature_label(ctx, "frequency"),
              _feature_label(ctx, "monetary"), ctx.t("report.segments.col.distinguishing"),
              ctx.t("report.segments.col.action")]
    churn = churn or {}
    if churn:  # observed churn rate and mean risk of the current churn run
        header[7:7] = [ctx.t("report.churn.col.churn_rate"), ctx.t("report.churn.col.mean_risk")]
    if clv:  # mean CLV and P(alive) of the current CLV run, after the value figures
        header[7:7] = [ctx.t("report.clv.col.mean_clv"), ctx.t("report.clv.col.mean_p_alive")]
    rows = []
    for p in profiles:
        dist = ", ".join(
            f"{_feature_label(ctx, d['feature'])} {'▲' if d['lift'] > 0 else '▼'}"
            for d in p.get("distinguishing", [])[:3])
        rows.append([names[p["segment"]], p["n_customers"], ctx.pct(p["share_customers"]),
                     ctx.pct(p.get("share_revenue")), _round(med(p, "recency_days")),
                     _round(med(p, "frequency")), ctx.money(med(p, "monetary")), dist,
                     _localized(p.get("action"), ctx.lang) or "–"])
        if churn:
            rates = churn.get(p["segment"], {})
            rows[-1][7:7] = [ctx.pct(rates.get("churn_rate")), ctx.pct(rates.get("mean_risk"))]
        if clv:
            means = clv.get(p["segment"], {})
            rows[-1][7:7] = [ctx.money(means.get("mean_clv")), ctx.pct(means.get("mean_p_alive"))]
    note = ctx.t("report.segments.profiles_note")
    if clv:
        note += " " + ctx.t("report.clv.segment_note")
    if churn:
        note += " " + ctx.t("report.churn.segment_note")
    content.add_table(header, rows, caption=ctx.t("report.segments.profiles_caption"), note=note)
    def items(p: dict, key: str) -> str:
        return ", ".join(x["item"] for x in p.get(key, [])[:3]) or "–"

    tops = [[names[p["segment"]], items(p, "top_products"), items(p, "distinctive_products"),
             items(p, "top_categories")] for p in profiles]
    if any(r[1] != "–" for r in tops):
        content.add_table([ctx.t("report.segments.col.segment"),
                           ctx.t("report.segments.col.top_products"),
                           ctx.t("report.segments.col.distinctive_products"),
                           ctx.t("report.segments.col.top_categories")], tops,
                          note=ctx.t("report.segments.distinctive_note"))


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _sizes_chart(ctx: ReportContext, content: SectionContent, profiles: list[dict],
                 names: dict[str, str]) -> None:
    labels = [names[p["segment"]] for p in profiles]
    fig = go.Figure([
        go.Bar(name=ctx.t("report.segments.col.share_customers"), x=labels,
               y=[p["share_customers"] for p in profiles],
               marker_color=ctx.charts.PALETTE[0]),
        go.Bar(name=ctx.t("report.segments.col.share_revenue"), x=labels,
               y=[p.get("share_revenue") or 0.0 for p in profiles],
               marker_color=ctx.charts.PALETTE[1]),
    ])
    fig.update_layout(barmode="group", yaxis_tickformat=".0%")
    content.add_chart(ctx.charts.style(fig), title=ctx.t("report.segments.sizes_chart"))


def _heatmap(ctx: ReportContext, content: SectionContent, profiles: list[dict],
             names: dict[str, str]) -> None:
    # The features that distinguish segments most (largest lift anywhere), as a heat map.
    score: dict[str, float] = {}
    for p in profiles:
        for f, stat in p.get("features", {}).items():
            lift = stat.get("lift")
            if lift is not None and math.isfinite(lift):
                score[f] = max(score.get(f, 0.0), abs(lift))
    feats = sorted(score, key=lambda f: -score[f])[:HEATMAP_FEATURES]
    if len(feats) < 2:
        return
    z = [[_clip(p["features"].get(f, {}).get("lift")) for f in feats] for p in profiles]
    fig = go.Figure(go.Heatmap(
        z=z, x=[_feature_label(ctx, f) for f in feats], y=[names[p["segment"]] for p in profiles],
        colorscale="RdBu", reversescale=True, zmid=0, zmin=-2, zmax=2,
        colorbar={"title": ctx.t("report.segments.lift")},
        hovertemplate="%{y}<br>%{x}: %{z:.2f}<extra></extra>"))
    content.add_chart(ctx.charts.style(fig, height=max(300, 40 * len(profiles) + 140),
                                       legend=False),
                      title=ctx.t("report.segments.heatmap_chart"))


def _clip(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return max(-3.0, min(3.0, float(value)))


def _scatter(ctx: ReportContext, content: SectionContent, run, names: dict[str, str]) -> None:
    if "customer_features" not in ctx.tables():
        return
    cols = ctx.tables()["customer_features"]
    if not {"recency_days", "monetary"} <= set(cols):
        return
    as_of_filter = "f.as_of = ?" if run.as_of is not None else \
        "f.as_of = (SELECT max(as_of) FROM customer_features)"
    params: list[Any] = [run.run_id] + ([run.as_of] if run.as_of is not None else [])
    rows = ctx.con.execute(f"""
        SELECT s.segment, f.recency_days, f.monetary
        FROM segments s JOIN customer_features f USING (customer_id)
        WHERE s.run_id = ? AND {as_of_filter}
        ORDER BY hash(s.customer_id) LIMIT {SCATTER_POINTS}""", params).fetchall()
    if not rows:
        return
    fig = go.Figure()
    order = list(names)
    for i, seg in enumerate(order):
        pts = [r for r in rows if r[0] == seg]
        if not pts:
            continue
        fig.add_trace(go.Scattergl(
            x=[r[1] for r in pts], y=[max(r[2], 0.01) for r in pts], mode="markers",
            name=names[seg], marker={"size": 5, "opacity": 0.6,
                                     "color": ctx.charts.PALETTE[i % len(ctx.charts.PALETTE)]}))
    fig.update_xaxes(title=_feature_label(ctx, "recency_days"))
    fig.update_yaxes(title=_feature_label(ctx, "monetary"), type="log")
    content.add_chart(ctx.charts.style(fig, height=420),
                      title=ctx.t("report.segments.scatter_chart", n=ctx.num(len(rows))))


def _rules(ctx: ReportContext, content: SectionContent, run, names: dict[str, str]) -> None:
    expl = run.notes.get("explanation")
    if not expl:
        return
    rules = expl.get("rules", {}).get(ctx.lang) or expl.get("rules", {}).get("en") or {}
    rows = []
    for seg, name in names.items():
        for text in rules.get(seg, [])[:2]:
            rows.append([name, text])
    if not rows:
        return
    fidelity = expl.get("fidelity")
    content.add_table([ctx.t("report.segments.col.segment"), ctx.t("report.segments.col.rule")],
                      rows, caption=ctx.t("report.segments.rules_caption"),
                      note=ctx.t("report.segments.rules_note",
                                 fidelity=ctx.pct(fidelity)) if fidelity is not None else None)


def _k_choice(ctx: ReportContext, content: SectionContent, run) -> None:
    table = run.notes.get("k_table")
    if not table:
        return
    metrics = [m for m in ("silhouette", "calinski_harabasz", "davies_bouldin", "bic",
                           "stability", "gvf") if any(r.get(m) is not None for r in table)]
    header = ["k"] + [ctx.t(f"report.segments.metric.{m}") for m in metrics]
    rows = [[r["k"]] + [None if r.get(m) is None else round(float(r[m]), 3) for m in metrics]
            for r in table]
    content.add_table(header, rows, caption=ctx.t("report.segments.k_caption",
                                                  k=run.notes.get("chosen_k", "–")))
    ks = [r["k"] for r in table]
    fig = go.Figure()
    for i, m in enumerate(m for m in metrics if m in ("silhouette", "stability", "gvf")):
        fig.add_trace(go.Scatter(x=ks, y=[r.get(m) for r in table], mode="lines+markers",
                                 name=ctx.t(f"report.segments.metric.{m}"),
                                 line={"color": ctx.charts.PALETTE[i]}))
    chosen = run.notes.get("chosen_k")
    if chosen is not None:
        fig.add_vline(x=chosen, line_dash="dot", line_color=ctx.charts.ACCENT)
    fig.update_xaxes(title="k", dtick=1)
    content.add_chart(ctx.charts.style(fig), title=ctx.t("report.segments.k_chart"))


def _preprocessing(ctx: ReportContext, content: SectionContent, run) -> None:
    plan = run.notes.get("preprocessing_plan")
    if not plan:
        return
    rows = []
    for p in plan:
        if p.get("action") == "kept":
            what = ctx.t(f"report.segments.transform.{p.get('transform') or 'none'}") \
                if _has_key(f"report.segments.transform.{p.get('transform')}") \
                else str(p.get("transform"))
        else:
            reason = p.get("reason") or ""
            what = ctx.t(f"report.segments.dropped.{reason}") \
                if _has_key(f"report.segments.dropped.{reason}") else reason
            if p.get("duplicate_of"):
                what += f" ({_feature_label(ctx, p['duplicate_of'])})"
        rows.append([_feature_label(ctx, p["feature"]), what,
                     None if p.get("skewness") is None else round(float(p["skewness"]), 2),
                     ctx.pct(p.get("missing_share"))])
    content.add_table([ctx.t("report.segments.col.feature"),
                       ctx.t("report.segments.col.treatment"),
                       ctx.t("report.segments.col.skewness"),
                       ctx.t("report.segments.col.missing")], rows,
                      caption=ctx.t("report.segments.preprocessing_caption"))


def _migration(ctx: ReportContext, content: SectionContent, run) -> None:
    from crmlens.segment.migration import migration, sankey
    from crmlens.segment.store import list_runs

    runs = list_runs(ctx.con, name=run.name)
    if len(runs) < 2:
        return
    m = migration(ctx.con, runs[1].run_id, runs[0].run_id)
    labels = {p["segment"]: _name(ctx, p) for r in (runs[0], runs[1])
              for p in _profiles(ctx, r.run_id)}
    content.add_chart(sankey(m, lang=ctx.lang, labels=labels),
                      title=ctx.t("report.segments.migration_chart", name=run.name,
                                  before=ctx.date(runs[1].as_of), after=ctx.date(runs[0].as_of)))
    total = sum(map(sum, m.counts))
    content.add_paragraph(ctx.t("report.segments.migration_line", stayed=ctx.num(m.stayed),
                                share=ctx.pct(m.stayed / total if total else None)), note=True)


register_section(Section("segments", 30, "report.segments.title", build_segments))
