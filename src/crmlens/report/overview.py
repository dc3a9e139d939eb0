"""The report's first sections: the data overview and the data quality, plus the header KPIs.

Every figure is one grouped query over the clean tables (no Python loops over rows), so the
report stays quick on millions of transactions. Revenue is net: ``amount`` is signed, so
returns and cancellations subtract themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from crmlens.clean.quality import flag_label, reason_label, rejected_examples, role_label
from crmlens.report.sections import (
    Kpi,
    ReportContext,
    Section,
    SectionContent,
    findings_from_summary,
    register_section,
)

TOP_PRODUCTS = 15
TOP_GROUPS = 10
EXAMPLES_PER_REASON = 3
# Long original values are cut in the examples table so one bad line cannot swamp the page.
MAX_CELL = 60


# --- shared queries ----------------------------------------------------------------------


def transaction_totals(ctx: ReportContext) -> dict[str, Any] | None:
    """Headline figures of the transactions, or None when there are none (computed once).

    Built from the monthly figures, the orders and the customer-months, so the header, the
    overview and its charts share three grouped passes and no ``count(DISTINCT ...)``.
    """
    if not ctx.has_rows("transactions"):
        return None

    def compute() -> dict[str, Any]:
        months = monthly_figures(ctx)
        totals: dict[str, Any] = {key: sum(m[key] for m in months) for key in (
            "lines", "net", "gross", "returned", "return_lines", "anonymous_lines",
            "non_product")}
        totals["first"] = min(m["first"] for m in months)
        totals["last"] = max(m["last"] for m in months)
        totals["orders"] = sum(m["orders"] for m in months)
        totals["customers"] = sum(m["new"] for m in months)  # everyone is new exactly once
        return totals

    return ctx.memo("overview.totals", compute)


def monthly_figures(ctx: ReportContext) -> list[dict[str, Any]]:
    """Per month (``YYYY-MM``): lines, net, gross, returned, orders, active and new customers.

    An order counts once, in the month of its first line; a customer is active in a month
    with a purchase (returns alone do not count) and new in the first such month.
    """
    def compute() -> list[dict[str, Any]]:
        months = _fetch(ctx, """
            SELECT strftime(date_trunc('month', ts), '%Y-%m') AS month,
                   count(*) AS lines,
                   coalesce(sum(amount), 0) AS net,
                   coalesce(sum(amount) FILTER (WHERE NOT is_return AND amount > 0), 0) AS gross,
                   coalesce(-sum(amount) FILTER (WHERE is_return), 0) AS returned,
                   count(*) FILTER (WHERE is_return) AS return_lines,
                   count(*) FILTER (WHERE customer_id IS NULL) AS anonymous_lines,
                   coalesce(sum(amount) FILTER (WHERE line_type <> 'product'), 0) AS non_product,
                   min(ts) AS first, max(ts) AS last
            FROM transactions GROUP BY 1 ORDER BY 1
        """)
        # Grouping by order (or by customer and month) first is one hash aggregate, far
        # cheaper on millions of lines than count(DISTINCT ...) inside the monthly grouping.
        orders = dict(ctx.con.execute("""
            SELECT strftime(month, '%Y-%m'), count(*) FROM (
                SELECT order_id, min(date_trunc('month', ts)) AS month FROM transactions
                WHERE NOT is_return GROUP BY order_id)
            GROUP BY 1
        """).fetchall())
        customers = {r["month"]: r for r in _fetch(ctx, """
            WITH cm AS (
                SELECT customer_id, date_trunc('month', ts) AS month FROM transactions
                WHERE customer_id IS NOT NULL AND NOT is_return GROUP BY ALL
            ), f AS (
                SELECT month, month = min(month) OVER (PARTITION BY customer_id) AS is_new
                FROM cm
            )
            SELECT strftime(month, '%Y-%m') AS month, count(*) AS active,
                   count(*) FILTER (WHERE is_new) AS new
            FROM f GROUP BY 1
        """)}
        for m in months:
            m["orders"] = orders.get(m["month"], 0)
            m["active"] = customers.get(m["month"], {}).get("active", 0)
            m["new"] = customers.get(m["month"], {}).get("new", 0)
        return months

    return ctx.memo("overview.months", compute)


def header_kpis(ctx: ReportContext) -> list[Kpi]:
    """The workspace summary at the top of the report: customers, orders, revenue, span, returns.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.

    Returns
    -------
    list of Kpi
        Empty when the workspace holds no transactions and no customers.
    """
    totals = transaction_totals(ctx)
    if totals is None:
        if not ctx.has_rows("customers"):
            return []
        n = _fetch_one(ctx, "SELECT count(DISTINCT customer_id) AS n FROM customers")["n"]
        return [Kpi(ctx.t("report.kpi.customer_records"), ctx.num(n))]
    days = _days(totals["first"], totals["last"])
    return [
        Kpi(ctx.t("report.kpi.customers"), ctx.num(totals["customers"]),
            ctx.t("report.kpi.customers_note")),
        Kpi(ctx.t("report.kpi.orders"), ctx.num(totals["orders"])),
        Kpi(ctx.t("report.kpi.net_revenue"), ctx.money(totals["net"], 0),
            ctx.t("report.kpi.net_revenue_note")),
        Kpi(ctx.t("report.kpi.date_span"),
            f"{ctx.date(totals['first'].date())} – {ctx.date(totals['last'].date())}",
            ctx.tn("report.kpi.days", days, days=ctx.num(days))),
        Kpi(ctx.t("report.kpi.returns_share"), ctx.pct(_ratio(totals["returned"],
                                                                totals["gross"])),
            ctx.t("report.kpi.returns_share_note", value=ctx.money(totals["returned"], 0))),
    ]


# --- data overview -----------------------------------------------------------------------


def build_overview(ctx: ReportContext) -> SectionContent | None:
    """The data overview: sources, revenue and customers over time, products, regions.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.

    Returns
    -------
    SectionContent or None
        None when nothing has been loaded.
    """
    summary = ctx.quality()
    if not summary["sources"]:
        return None
    content = SectionContent(intro=ctx.t("report.overview.intro"))
    _sources_table(ctx, content, summary["sources"])
    totals = transaction_totals(ctx)
    if totals is not None:
        _transaction_kpis(ctx, content, totals)
        _monthly(ctx, content)
        _top_products(ctx, content)
        for column in ("region", "channel", "category"):
            _breakdown(ctx, content, column)
    _customers(ctx, content)
    _events(ctx, content)
    return content


def _sources_table(ctx: ReportContext, content: SectionContent, sources: list[dict]) -> None:
    content.add_table(
        [ctx.t("report.col.source"), ctx.t("report.col.kind"), ctx.t("report.col.format"),
         ctx.t("report.col.rows_read"), ctx.t("report.col.rows_loaded"),
         ctx.t("report.col.rows_rejected")],
        [(s["name"], ctx.t(f"quality.kind.{s['kind']}"), s["format"], s["rows_read"],
          s["rows_loaded"], s["rows_rejected"]) for s in sources],
        caption=ctx.t("report.overview.sources"),
    )


def _transaction_kpis(ctx: ReportContext, content: SectionContent, totals: dict) -> None:
    products = top_products(ctx)
    content.add_kpis([
        Kpi(ctx.t("report.kpi.lines"), ctx.num(totals["lines"])),
        Kpi(ctx.t("report.kpi.products"), ctx.num(products[0]["n_products"] if products else 0)),
        Kpi(ctx.t("report.kpi.avg_order_value"),
            ctx.money(_ratio(totals["gross"], totals["orders"])),
            ctx.t("report.kpi.avg_order_value_note")),
        Kpi(ctx.t("report.kpi.return_lines"), ctx.num(totals["return_lines"]),
            ctx.t("report.kpi.return_lines_note", value=ctx.money(totals["returned"], 0))),
        Kpi(ctx.t("report.kpi.anonymous_lines"), ctx.num(totals["anonymous_lines"]),
            ctx.t("report.kpi.share_of_lines",
                  share=ctx.pct(_ratio(totals["anonymous_lines"], totals["lines"])))),
        Kpi(ctx.t("report.kpi.non_product_amount"), ctx.money(totals["non_product"], 0),
            ctx.t("report.kpi.non_product_amount_note")),
    ])


def _monthly(ctx: ReportContext, content: SectionContent) -> None:
    months = monthly_figures(ctx)
    labels = [m["month"] for m in months]
    n_active = [m["active"] for m in months]
    t = ctx.t
    content.add_heading(t("report.overview.over_time"))
    content.add_chart(ctx.charts.bar_line(
        labels, [m["net"] for m in months], n_active,
        bar_name=t("report.series.net_revenue"), line_name=t("report.series.active_customers"),
        x_title=t("report.axis.month"), bar_title=t("report.axis.net_revenue"),
        line_title=t("report.axis.customers"), bar_format=ctx.charts.MONEY_FORMAT,
    ), title=t("report.chart.monthly_revenue"))
    content.add_chart(ctx.charts.bar(
        labels, [m["orders"] for m in months], name=t("report.series.orders"),
        x_title=t("report.axis.month"), y_title=t("report.axis.orders"),
    ), title=t("report.chart.monthly_orders"))
    if any(n_active):
        content.add_chart(ctx.charts.stacked_bar(
            labels, {t("report.series.new_customers"): [m["new"] for m in months],
                     t("report.series.returning_customers"): [m["active"] - m["new"]
                                                              for m in months]},
            x_title=t("report.axis.month"), y_title=t("report.axis.customers"),
            colors=(ctx.charts.PALETTE[2], ctx.charts.PALETTE[0]),
        ), title=t("report.chart.new_returning"))
        content.add_paragraph(t("report.overview.new_customers_note"), note=True)
    content.add_table(
        [t("report.col.month"), t("report.col.net_revenue"), t("report.col.orders"),
         t("report.col.active_customers"), t("report.col.new_customers"),
         t("report.col.returned_value")],
        [(m["month"], ctx.money(m["net"]), m["orders"], m["active"], m["new"],
          ctx.money(m["returned"])) for m in months],
        caption=t("report.overview.monthly_table"),
    )
    partial = _partial_months(transaction_totals(ctx))
    if partial:
        content.add_paragraph(t("report.overview.partial_months", months=partial), note=True)


def _partial_months(totals: dict | None) -> str:
    """``2011-12`` etc.: first and last months that the data covers only in part (by day: a
    first order at 08:26 on the 1st still makes a whole month)."""
    if not totals:
        return ""
    first, last = totals["first"], totals["last"]
    months = []
    if first.day != 1:
        months.append(first.strftime("%Y-%m"))
    next_day = last.date().toordinal() + 1
    if date.fromordinal(next_day).day != 1 and last.strftime("%Y-%m") not in months:
        months.append(last.strftime("%Y-%m"))
    return ", ".join(months)


def top_products(ctx: ReportContext) -> list[dict[str, Any]]:
    """The best products by net revenue (product lines only), each with ``n_products``, the
    number of distinct products, which falls out of the same ranking pass."""
    # Rank on a cheap grouped sum first; names and distinct counts are only worked out for the
    # winners.
    return ctx.memo("overview.products", lambda: _fetch(ctx, """
        WITH ranked AS (
            SELECT coalesce(product_id, product_name) AS key, sum(amount) AS net,
                   count(*) OVER () AS n_products
            FROM transactions
            WHERE line_type = 'product' AND coalesce(product_id, product_name) IS NOT NULL
            GROUP BY 1 ORDER BY net DESC, key LIMIT ?
        )
        SELECT ranked.key, any_value(t.product_id) AS product_id,
               mode(t.product_name) AS product_name, any_value(ranked.net) AS net,
               any_value(ranked.n_products) AS n_products,
               sum(t.quantity) FILTER (WHERE NOT t.is_return) AS units,
               count(DISTINCT t.order_id) FILTER (WHERE NOT t.is_return) AS orders,
               count(DISTINCT t.customer_id) AS customers
        FROM transactions t JOIN ranked ON coalesce(t.product_id, t.product_name) = ranked.key
        WHERE t.line_type = 'product'
        GROUP BY ranked.key ORDER BY net DESC, ranked.key
    """, [TOP_PRODUCTS]))


def _top_products(ctx: ReportContext, content: SectionContent) -> None:
    rows = top_products(ctx)
    if not rows:
        return
    t = ctx.t
    labels = [_product_label(r["product_name"], r["product_id"]) for r in rows]
    content.add_heading(t("report.overview.products", n=len(rows)))
    content.add_chart(ctx.charts.bar(
        labels, [r["net"] for r in rows], horizontal=True, name=t("report.series.net_revenue"),
        y_title=t("report.axis.net_revenue"),
        value_format=ctx.charts.MONEY_FORMAT, height=120 + 26 * len(rows),
    ), title=t("report.chart.top_products", n=len(rows)))
    content.add_table(
        [t("report.col.rank"), t("report.col.product"), t("report.col.product_id"),
         t("report.col.net_revenue"), t("report.col.units"), t("report.col.orders"),
         t("report.col.customers")],
        [(i, r["product_name"], r["product_id"], ctx.money(r["net"]), r["units"], r["orders"],
          r["customers"]) for i, r in enumerate(rows, 1)],
        note=t("report.overview.products_note"),
    )


def _product_label(name: str | None, pid: str | None) -> str:
    if name and pid and name != pid:
        return f"{_cut(name, 40)} ({pid})"
    return name or pid or "–"


def _breakdown(ctx: ReportContext, content: SectionContent, column: str) -> None:
    """Revenue by region, channel or category; skipped when the column is empty."""
    if not _filled(ctx, column):
        return
    products_only = "AND line_type = 'product'" if column == "category" else ""
    rows = _fetch(ctx, f"""
        SELECT "{column}" AS label, sum(amount) AS net,
               count(DISTINCT customer_id) AS customers,
               count(DISTINCT order_id) FILTER (WHERE NOT is_return) AS orders
        FROM transactions WHERE "{column}" IS NOT NULL {products_only}
        GROUP BY 1 ORDER BY net DESC, label
    """)
    total = sum(r["net"] for r in rows) or None
    top, rest = rows[:TOP_GROUPS], rows[TOP_GROUPS:]
    t = ctx.t
    name = role_label(column, ctx.lang)
    content.add_heading(t(f"report.overview.by_{column}"))
    content.add_chart(ctx.charts.bar(
        [r["label"] for r in top], [r["net"] for r in top], horizontal=True,
        name=t("report.series.net_revenue"), y_title=t("report.axis.net_revenue"),
        value_format=ctx.charts.MONEY_FORMAT, color=ctx.charts.PALETTE[5],
        height=120 + 28 * len(top),
    ), title=t(f"report.chart.by_{column}", n=len(top)))
    table = [(r["label"], ctx.money(r["net"]), ctx.pct(_ratio(r["net"], total)), r["customers"],
              r["orders"]) for r in top]
    if rest:
        net = sum(r["net"] for r in rest)
        table.append((t("report.overview.others", n=len(rest)), ctx.money(net),
                      ctx.pct(_ratio(net, total)), None, sum(r["orders"] for r in rest)))
    content.add_table([name, t("report.col.net_revenue"), t("report.col.share"),
                       t("report.col.customers"), t("report.col.orders")], table)


def _customers(ctx: ReportContext, content: SectionContent) -> None:
    if not ctx.has_rows("customers"):
        return
    records = _fetch_one(ctx, "SELECT count(DISTINCT customer_id) AS n FROM customers")["n"]
    cards = [Kpi(ctx.t("report.kpi.customer_records"), ctx.num(records))]
    if ctx.has_rows("transactions"):
        # Distinct ids on both sides first: the join then touches thousands of rows, not millions.
        m = _fetch_one(ctx, """
            WITH buyers AS (SELECT DISTINCT customer_id FROM transactions
                            WHERE customer_id IS NOT NULL),
                 known AS (SELECT DISTINCT customer_id FROM customers)
            SELECT count(*) AS buyers, count(known.customer_id) AS matched
            FROM buyers LEFT JOIN known USING (customer_id)
        """)
        cards.append(Kpi(ctx.t("report.kpi.buyers_with_record"),
                         ctx.pct(_ratio(m["matched"], m["buyers"])),
                         ctx.t("report.kpi.buyers_with_record_note", matched=ctx.num(m["matched"]),
                               buyers=ctx.num(m["buyers"]))))
    content.add_heading(ctx.t("report.overview.customers"))
    content.add_kpis(cards)


def _events(ctx: ReportContext, content: SectionContent) -> None:
    if not ctx.has_rows("events"):
        return
    rows = _fetch(ctx, """
        SELECT event_type, count(*) AS n, count(DISTINCT customer_id) AS customers,
               min(ts) AS first, max(ts) AS last
        FROM events GROUP BY 1 ORDER BY n DESC, event_type NULLS LAST
    """)
    t = ctx.t
    content.add_heading(t("report.overview.events"))
    content.add_table(
        [t("report.col.event_type"), t("report.col.events"), t("report.col.customers"),
         t("report.col.first"), t("report.col.last")],
        [(r["event_type"] or t("report.unknown"), r["n"], r["customers"], r["first"], r["last"])
         for r in rows],
    )


# --- data quality ------------------------------------------------------------------------


def build_quality(ctx: ReportContext) -> SectionContent | None:
    """The data-quality section: accounting, rejections, flags, missing values, findings.

    Parameters
    ----------
    ctx : ReportContext
        The report being built.

    Returns
    -------
    SectionContent or None
        None when no source has been read.
    """
    summary = ctx.quality()
    sources = summary["sources"]
    if not sources:
        return None
    several = len(sources) > 1
    content = SectionContent(intro=ctx.t("report.quality.intro"))
    content.add_heading(ctx.t("report.quality.findings"))
    content.add_findings(findings_from_summary(summary["findings"], with_source=several))
    _accounting(ctx, content, sources)
    _reasons_chart(ctx, content, sources)
    examples = ctx.memo("examples:rejected", lambda: rejected_examples(
        ctx.con, per_reason=EXAMPLES_PER_REASON))
    for src in sources:
        _source_detail(ctx, content, src, [e for e in examples
                                           if e["source_id"] == src["source_id"]], several)
    return content


def _source_names(sources: Sequence[dict]) -> list[str]:
    """Display names, with the id added where two sources share a name."""
    names = [s["name"] for s in sources]
    return [f"{s['name']} (#{s['source_id']})" if names.count(s["name"]) > 1 else s["name"]
            for s in sources]


def _accounting(ctx: ReportContext, content: SectionContent, sources: list[dict]) -> None:
    t = ctx.t
    names = _source_names(sources)
    content.add_heading(t("report.quality.accounting"))
    content.add_paragraph(t("report.quality.accounting_intro"), note=True)
    content.add_table(
        [t("report.col.source"), t("report.col.kind"), t("report.col.rows_read"),
         t("report.col.rows_loaded"), t("report.col.rows_rejected"),
         t("report.col.rejected_share"), t("report.col.balanced")],
        [(name, t(f"quality.kind.{s['kind']}"), s["rows_read"], s["rows_loaded"],
          s["rows_rejected"], ctx.pct(_ratio(s["rows_rejected"], s["rows_read"])),
          s["rows_read"] == s["rows_loaded"] + s["rows_rejected"])
         for name, s in zip(names, sources)],
    )
    content.add_chart(ctx.charts.stacked_bar(
        names, {t("report.series.loaded"): [s["rows_loaded"] for s in sources],
                t("report.series.rejected"): [s["rows_rejected"] for s in sources]},
        horizontal=True, y_title=t("report.axis.rows"),
        colors=(ctx.charts.GOOD, ctx.charts.BAD), height=140 + 36 * len(sources),
    ), title=t("report.chart.accounting"))


def _reasons_chart(ctx: ReportContext, content: SectionContent, sources: list[dict]) -> None:
    """Rejected and flagged rows of all sources by reason, in one chart."""
    rejected: dict[str, int] = {}
    flagged: dict[str, int] = {}
    for s in sources:
        for reason, n in s["rejected_by_reason"].items():
            key = reason_label(reason, ctx.lang)
            rejected[key] = rejected.get(key, 0) + n
        for flag, n in s["flags_by_reason"].items():
            key = flag_label(flag, ctx.lang)
            flagged[key] = flagged.get(key, 0) + n
    if not rejected and not flagged:
        return
    labels = sorted(rejected, key=rejected.get, reverse=True) + sorted(
        flagged, key=flagged.get, reverse=True)
    t = ctx.t
    content.add_chart(ctx.charts.stacked_bar(
        labels, {t("report.series.rejected"): [rejected.get(k, 0) for k in labels],
                 t("report.series.flagged"): [flagged.get(k, 0) for k in labels]},
        horizontal=True, y_title=t("report.axis.rows"),
        colors=(ctx.charts.BAD, ctx.charts.ACCENT), height=140 + 26 * len(labels),
    ), title=t("report.chart.reasons"))


def _source_detail(ctx: ReportContext, content: SectionContent, src: dict,
                   examples: list[dict], several: bool) -> None:
    t = ctx.t
    content.add_heading(t("report.quality.source_heading", name=src["name"],
                          kind=t(f"quality.kind.{src['kind']}")))
    content.add_paragraph(_source_line(ctx, src), note=True)
    if several:  # with one source the findings above are this source's already
        content.add_findings(findings_from_summary(src["findings"]))
    read, loaded = src["rows_read"], src["rows_loaded"]
    if src["rejected_by_reason"]:
        content.add_table(
            [t("report.col.reason"), t("report.col.code"), t("report.col.rows"),
             t("report.col.share_of_read")],
            [(reason_label(r, ctx.lang), r, n, ctx.pct(_ratio(n, read)))
             for r, n in src["rejected_by_reason"].items()],
            caption=t("report.quality.rejected_by_reason"),
        )
    if src["flags_by_reason"]:
        content.add_table(
            [t("report.col.flag"), t("report.col.code"), t("report.col.rows"),
             t("report.col.share_of_loaded")],
            [(flag_label(f, ctx.lang), f, n, ctx.pct(_ratio(n, loaded)))
             for f, n in src["flags_by_reason"].items()],
            caption=t("report.quality.flags_by_reason"),
            note=t("report.quality.flags_note"),
        )
    if src["non_product_codes"]:
        content.add_table(
            [t("report.col.product_id"), t("report.col.product"), t("report.col.line_type"),
             t("report.col.rows"), t("report.col.net_amount")],
            [(c["product_id"], c["product_name"], _line_type(ctx, c["line_type"]), c["rows"],
              ctx.money(c["amount"])) for c in src["non_product_codes"]],
            caption=t("report.quality.non_product"),
        )
    if src["columns"]:
        content.add_table(
            [t("report.col.column"), t("report.col.role"), t("report.col.source_column"),
             t("report.col.missing"), t("report.col.missing_share"), t("report.col.distinct"),
             t("report.col.min"), t("report.col.max")],
            [(c["column"], role_label(c["role"], ctx.lang), c["source_column"], c["missing"],
              ctx.pct(c["missing_share"]), c["distinct"], _range_value(ctx, c["min"]),
              _range_value(ctx, c["max"])) for c in src["columns"]],
            caption=t("report.quality.columns"),
            note=t("report.quality.columns_note"),
        )
    if examples:
        _examples_table(ctx, content, src, examples)


def _source_line(ctx: ReportContext, src: dict) -> str:
    """``location · format · encoding=utf-8, delimiter=;`` under a source's heading."""
    parts = [src["location"], src["format"]]
    options = ", ".join(f"{k}={_option_text(v)}" for k, v in (src["options"] or {}).items()
                        if v not in (None, "", [], {}))
    if options:
        parts.append(options)
    if src.get("ingested_at"):
        parts.append(ctx.t("report.quality.ingested_at", when=ctx.date(src["ingested_at"])))
    return " · ".join(p for p in parts if p)


def _option_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _examples_table(ctx: ReportContext, content: SectionContent, src: dict,
                    examples: list[dict]) -> None:
    t = ctx.t
    columns = list(src.get("source_columns") or [])
    for e in examples:  # keys the header misses (a malformed line has its own shape)
        if isinstance(e["original"], dict):
            columns += [k for k in e["original"] if k not in columns]
    raw = not columns
    header = [t("report.col.source_row"), t("report.col.reason"), t("report.col.detail")]
    header += [t("report.col.original")] if raw else columns
    rows = []
    for e in sorted(examples, key=lambda e: e["source_row"]):  # in file order, as the user sees it
        original = e["original"]
        if raw:
            values = [_cut(_text(original), MAX_CELL * 2)]
        elif isinstance(original, dict):
            values = [_cut(_text(original.get(c)), MAX_CELL) for c in columns]
        else:
            values = [_cut(_text(original), MAX_CELL)] + [None] * (len(columns) - 1)
        rows.append((str(e["source_row"]), reason_label(e["reason"], ctx.lang), e["detail"],
                     *values))
    # Original values are text as read: codes like 536409 stay left-aligned, as in the file.
    content.add_table(header, rows, caption=t("report.quality.examples"),
                      note=t("report.quality.examples_note", n=EXAMPLES_PER_REASON),
                      numeric=[True] + [False] * (len(header) - 1))


def _line_type(ctx: ReportContext, line_type: str) -> str:
    key = f"quality.line_type.{line_type}"
    text = ctx.t(key)
    return line_type if text == key else text


def _range_value(ctx: ReportContext, value: Any) -> Any:
    """Min/max cells: ISO strings of times become dates or times, numbers stay numbers."""
    if isinstance(value, str):
        try:
            return ctx.date(value)
        except ValueError:
            return value
    return value


# --- helpers -----------------------------------------------------------------------------


def _fetch(ctx: ReportContext, sql: str, params: Sequence[Any] | None = None
           ) -> list[dict[str, Any]]:
    cur = ctx.con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _fetch_one(ctx: ReportContext, sql: str) -> dict[str, Any]:
    return _fetch(ctx, sql)[0]


def _filled(ctx: ReportContext, column: str) -> bool:
    """Whether any transactions source has a value in ``column`` (from the quality pass)."""
    return any(c["column"] == column and c["distinct"] > 0
               for s in ctx.quality()["sources"] if s["kind"] == "transactions"
               for c in s["columns"])


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _days(first: datetime, last: datetime) -> int:
    return (last.date() - first.date()).days + 1


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


register_section(Section("overview", 10, "report.overview.title", build_overview))
register_section(Section("quality", 20, "report.quality.title", build_quality))
