"""Text rendering of the data-quality summary for the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from crmlens.i18n import t


def _n(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def _short(value: Any) -> str:
    text = _n(value)
    # ISO timestamps at midnight read better as dates.
    return text[:-9] if text.endswith("T00:00:00") else text.replace("T", " ")


def print_quality(console: Console, summary: dict[str, Any]) -> None:
    """Print the per-source accounting, reasons, flags, columns and findings."""
    sources = summary.get("sources", [])
    if not sources:
        console.print(t("cli.quality.empty"))
        return
    for src in sources:
        console.rule(f"[bold]{src['name']}[/] · {src['kind']} · #{src['source_id']}")
        acc = Table(show_header=False, box=None)
        acc.add_column()
        acc.add_column(justify="right")
        acc.add_row(t("cli.rows_read"), _n(src["rows_read"]))
        acc.add_row(t("cli.rows_loaded"), _n(src["rows_loaded"]))
        acc.add_row(t("cli.rows_rejected"), _n(src["rows_rejected"]))
        for reason, n in src.get("rejected_by_reason", {}).items():
            acc.add_row("  " + t("cli.rejected_because", reason=reason), _n(n))
        for flag, n in src.get("flags_by_reason", {}).items():
            acc.add_row("  " + t("cli.flagged", flag=flag), _n(n))
        span = src.get("date_span") or {}
        if span:
            acc.add_row(t("cli.quality.date_span"), f"{span.get('min')} … {span.get('max')}")
        console.print(acc)
        cols = Table(title=t("cli.quality.columns"), title_justify="left")
        for key in ("cli.col.column", "cli.col.source_column", "cli.col.missing",
                    "cli.col.distinct", "cli.col.min", "cli.col.max"):
            cols.add_column(t(key), overflow="fold")
        for c in src.get("columns", []):
            # Roles the source does not have are empty by construction: not worth a line.
            if not c.get("source_column") and c.get("missing_share") == 1:
                continue
            missing = _n(c.get("missing"))
            if c.get("missing_share") is not None:
                missing += f" ({c['missing_share']:.1%})"
            cols.add_row(c.get("column", ""), c.get("source_column") or "", missing,
                         _n(c.get("distinct")), _short(c.get("min")), _short(c.get("max")))
        console.print(cols)
        codes = src.get("non_product_codes") or []
        if codes:
            np_table = Table(title=t("cli.quality.non_product"), title_justify="left")
            for key in ("cli.col.code", "cli.col.name", "cli.col.type", "cli.col.rows"):
                np_table.add_column(t(key))
            for c in codes[:15]:
                np_table.add_row(str(c.get("product_id")), str(c.get("product_name") or ""),
                                 str(c.get("line_type")), _n(c.get("rows")))
            console.print(np_table)
        findings = src.get("findings", [])
        if findings:
            console.print(f"[bold]{t('cli.quality.findings')}[/]")
            for f in findings:
                mark = "[yellow]![/]" if f.get("severity") == "warning" else "•"
                console.print(f" {mark} {f.get('text')}")
        console.print()
