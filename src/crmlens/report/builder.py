"""Builds the HTML report: every registered section's content, rendered into one page.

The page is self-contained: CSS inline, plotly.js inlined once from the installed plotly
package, figures as JSON next to their ``<div>``; it opens offline and from a mail attachment.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, PackageLoader, StrictUndefined

from crmlens import __version__
from crmlens.errors import InputError
from crmlens.i18n import LANGUAGES
from crmlens.report import charts
from crmlens.report.overview import header_kpis
from crmlens.report.sections import (
    Block,
    Chart,
    Finding,
    ReportContext,
    Section,
    SectionContent,
    Table,
    registered_sections,
)

logger = logging.getLogger(__name__)

# Value of <html lang>: zh content is Simplified Chinese, which also picks CJK fonts.
HTML_LANG = {"en": "en", "zh": "zh-CN"}

# A formatted cell that reads as a number (1,234 / -5.00 / 12.5% / <0.1%) is right-aligned.
_NUMERIC_TEXT = re.compile(r"^[<>]?[-+]?[\d,]+(\.\d+)?%?$")


@dataclass(frozen=True)
class RenderedSection:
    """A section ready for the template: number, anchor, title and display-ready blocks."""

    id: str
    number: int
    title: str
    intro: str | None
    blocks: list[dict[str, Any]]


def write_report(con: duckdb.DuckDBPyConnection, out_path: Path, *, lang: str = "en",
                 title: str | None = None, generated_at: datetime | None = None) -> Path:
    """Write the workspace report as one self-contained HTML file.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to the workspace store; only read.
    out_path : pathlib.Path
        File to write; its folder is created if needed. The file is replaced in one step, so
        a reader never sees half a report.
    lang : str, default "en"
        Language of every text in the report: ``en`` or ``zh`` (``zh-CN`` etc. accepted).
    title : str, optional
        Title of the report; default the catalogue's title in ``lang``.
    generated_at : datetime, optional
        Time shown as the report's date; default now.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    InputError
        If ``lang`` is not a supported language.
    """
    html = render_report(con, lang=lang, title=title, generated_at=generated_at)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)  # only left over when writing failed
    logger.info("report written to %s (%d bytes)", out_path, len(html.encode("utf-8")))
    return out_path


def render_report(con: duckdb.DuckDBPyConnection, *, lang: str = "en", title: str | None = None,
                  generated_at: datetime | None = None) -> str:
    """The report's HTML as a string (what :func:`write_report` writes).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection to the workspace store; only read.
    lang : str, default "en"
        ``en`` or ``zh``.
    title : str, optional
        Title of the report; default the catalogue's title in ``lang``.
    generated_at : datetime, optional
        Time shown as the report's date; default now.

    Returns
    -------
    str
        A complete HTML document.
    """
    code = _check_lang(lang)
    when = (generated_at or datetime.now()).replace(microsecond=0)
    ctx = ReportContext(con=con, lang=code, generated_at=when)
    sections = _build_sections(ctx)
    has_charts = any(b["kind"] == "chart" for s in sections for b in s.blocks)
    page = {
        "html_lang": HTML_LANG[code],
        "title": title or ctx.t("report.title"),
        "generated": ctx.t("report.generated", when=when.isoformat(sep=" ", timespec="minutes")),
        "workspace": _workspace_name(con),
        "version": __version__,
        "kpis": header_kpis(ctx),
        "sections": sections,
        "plotly_js": charts.plotly_js() if has_charts else None,
        "plot_config": json.dumps(charts.PLOT_CONFIG),
        "font_family": charts.FONT_FAMILY,
        "t": ctx.t,
    }
    return _environment().get_template("report.html.j2").render(**page)


def _check_lang(lang: str) -> str:
    code = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    if code not in LANGUAGES:
        raise InputError("report.error.language", value=lang, supported=", ".join(LANGUAGES))
    return code


def _build_sections(ctx: ReportContext) -> list[RenderedSection]:
    rendered: list[RenderedSection] = []
    chart_ids = itertools.count(1)
    for section in registered_sections():
        content = _build_one(ctx, section)
        if content is None:
            continue
        blocks = [_display_block(ctx, block, chart_ids) for block in content.blocks]
        rendered.append(RenderedSection(
            id=section.id, number=len(rendered) + 1,
            title=content.title or ctx.t(section.title_key), intro=content.intro, blocks=blocks,
        ))
    return rendered


def _build_one(ctx: ReportContext, section: Section) -> SectionContent | None:
    """One section's content; a section that fails shows a notice instead of sinking the report.

    Sections come from features and plug-ins; one bug in one of them should cost its own part
    of the report, not the whole of it. The traceback goes to the log.
    """
    try:
        return section.build(ctx)
    except Exception as exc:
        logger.exception("report section %r failed", section.id)
        return SectionContent().add_findings([Finding(
            ctx.t("report.section_failed", error=f"{type(exc).__name__}: {exc}"), "warning")])


def _display_block(ctx: ReportContext, block: Block, chart_ids: Iterator[int]
                   ) -> dict[str, Any]:
    if isinstance(block, Table):
        return _display_table(ctx, block)
    if isinstance(block, Chart):
        return {"kind": "chart", "id": f"chart-{next(chart_ids)}", "figure": block.figure,
                "title": block.title, "height": block.height}
    return {"kind": block.kind, "block": block}


def _display_table(ctx: ReportContext, table: Table) -> dict[str, Any]:
    width = len(table.header)
    rows = [list(r[:width]) + [None] * (width - len(r)) for r in table.rows]
    numeric = list(table.numeric or ())[:width]
    numeric += [_is_numeric_column([r[i] for r in rows]) for i in range(len(numeric), width)]
    return {
        "kind": "table", "header": list(table.header), "numeric": numeric,
        "rows": [[ctx.cell(v) for v in r] for r in rows],
        "caption": table.caption, "note": table.note, "long": len(rows) > 25,
    }


def _is_numeric_column(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    if not present:
        return False
    return all(
        (isinstance(v, int | float) and not isinstance(v, bool))
        or (isinstance(v, str) and _NUMERIC_TEXT.match(v) is not None)
        for v in present
    )


def _workspace_name(con: duckdb.DuckDBPyConnection) -> str | None:
    """The workspace's folder name (or the file's name): never the full path, which may be
    private and means nothing to the report's readers."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    if not row or not row[0]:
        return None
    path = Path(row[0])
    return path.parent.name if path.name == "crmlens.duckdb" and path.parent.name else path.name


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("crmlens.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
