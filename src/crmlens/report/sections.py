"""The report's extension point: sections, what they contain, and what they are built with.

A feature adds its part of the report by registering a :class:`Section` (usually when its
module is imported). The builder asks every registered section, in ``order``, to build its
:class:`SectionContent` from a :class:`ReportContext`; a section that returns ``None`` has
nothing to show (no data yet) and is left out, table of contents included. See
``docs/report.md`` for an example.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar

import duckdb
import plotly.graph_objects as go

from crmlens.clean.quality import (
    format_count,
    format_share,
    quality_summary,
    store_tables,
    t_count,
)
from crmlens.i18n import t as translate
from crmlens.report import charts as chart_helpers

logger = logging.getLogger(__name__)

T = TypeVar("T")

# --- blocks: what a section shows, in the order it adds them -----------------------------


@dataclass(frozen=True)
class Kpi:
    """One headline figure: a label, a formatted value and an optional small note."""

    label: str
    value: str
    note: str | None = None


@dataclass(frozen=True)
class KpiCards:
    """A row of KPI cards."""

    kind: ClassVar[str] = "kpis"
    cards: tuple[Kpi, ...]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of text; ``note`` renders it smaller and muted."""

    kind: ClassVar[str] = "paragraph"
    text: str
    note: bool = False


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    kind: ClassVar[str] = "heading"
    text: str


@dataclass(frozen=True)
class Table:
    """A table: a header and rows of raw values, formatted when rendered.

    Numbers get thousands separators, dates and times ISO form and ``None`` a dash; pass
    strings for anything formatted otherwise (percentages, money with a currency). Columns of
    numbers (or of number-like strings) are right-aligned unless ``numeric`` says otherwise.
    """

    kind: ClassVar[str] = "table"
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str | None = None
    note: str | None = None
    numeric: tuple[bool, ...] | None = None


@dataclass(frozen=True)
class Chart:
    """A Plotly figure, kept as its JSON so the content stays plain data."""

    kind: ClassVar[str] = "chart"
    figure: str
    title: str | None = None
    height: int = chart_helpers.DEFAULT_HEIGHT


@dataclass(frozen=True)
class Finding:
    """One finding: a sentence, its severity (``info`` or ``warning``), optionally its source."""

    text: str
    severity: str = "info"
    source: str | None = None


@dataclass(frozen=True)
class Findings:
    """A list of findings."""

    kind: ClassVar[str] = "findings"
    items: tuple[Finding, ...]


Block = KpiCards | Paragraph | Heading | Table | Chart | Findings


@dataclass
class SectionContent:
    """What a section shows: blocks in the order they were added.

    The ``add_*`` methods return the content itself, so calls can be chained.

    Parameters
    ----------
    title : str, optional
        Title shown instead of the translation of the section's ``title_key`` (for sections
        whose strings are not in the crmlens catalogue).
    intro : str, optional
        A lead paragraph under the title.
    """

    title: str | None = None
    intro: str | None = None
    blocks: list[Block] = field(default_factory=list)

    def add_kpis(self, cards: Iterable[Kpi]) -> SectionContent:
        """Add a row of KPI cards (skipped when empty)."""
        cards = tuple(cards)
        if cards:
            self.blocks.append(KpiCards(cards))
        return self

    def add_paragraph(self, text: str, *, note: bool = False) -> SectionContent:
        """Add a paragraph; ``note=True`` for a small, muted remark."""
        self.blocks.append(Paragraph(text, note))
        return self

    def add_heading(self, text: str) -> SectionContent:
        """Add a sub-heading."""
        self.blocks.append(Heading(text))
        return self

    def add_table(self, header: Sequence[str], rows: Iterable[Sequence[Any]], *,
                  caption: str | None = None, note: str | None = None,
                  numeric: Sequence[bool] | None = None) -> SectionContent:
        """Add a table of raw values (see :class:`Table` for how they are formatted)."""
        self.blocks.append(Table(tuple(header), tuple(tuple(r) for r in rows), caption, note,
                                 None if numeric is None else tuple(numeric)))
        return self

    def add_chart(self, figure: go.Figure, *, title: str | None = None,
                  height: int | None = None) -> SectionContent:
        """Add a Plotly figure; its height defaults to the figure's own or 340 px."""
        height = height or figure.layout.height or chart_helpers.DEFAULT_HEIGHT
        self.blocks.append(Chart(chart_helpers.figure_json(figure), title, int(height)))
        return self

    def add_findings(self, findings: Iterable[Finding]) -> SectionContent:
        """Add a list of findings (skipped when empty)."""
        items = tuple(findings)
        if items:
            self.blocks.append(Findings(items))
        return self


# --- the context a section is built in ---------------------------------------------------


@dataclass
class ReportContext:
    """Everything a section needs: the store, the language, formatters and chart helpers.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The workspace store, to be read only.
    lang : str
        Language of the report, ``en`` or ``zh``.
    generated_at : datetime
        Time the report is made, for "as of" figures.
    """

    con: duckdb.DuckDBPyConnection
    lang: str
    generated_at: datetime
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    charts = chart_helpers
    """Figure helpers (:mod:`crmlens.report.charts`): bar, stacked bar, bar with line."""

    def t(self, key: str, /, **params: Any) -> str:
        """The catalogue text of ``key`` in the report's language."""
        return translate(key, lang=self.lang, **params)

    def tn(self, key: str, count: int, /, **params: Any) -> str:
        """Like :meth:`t`, for ``count`` things (uses the key's ``.one`` text for a count of 1)."""
        return t_count(key, count, lang=self.lang, **params)

    def num(self, value: float | None, digits: int = 0) -> str:
        """A number with thousands separators and ``digits`` decimals; a dash for None."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        if digits == 0:
            return format_count(value)
        return f"{value:,.{digits}f}"

    def pct(self, value: float | None, digits: int = 1) -> str:
        """A share (0.25) as a percentage (``25.0%``); a dash for None."""
        return format_share(value, digits)

    def money(self, value: float | None, digits: int = 2) -> str:
        """An amount in the data's currency, which the store does not name."""
        return self.num(value, digits)

    def date(self, value: date | datetime | str | None) -> str:
        """A date (or a time) in ISO form; times keep minutes, not seconds' fractions."""
        if value is None:
            return "–"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            if value.time() == datetime.min.time():
                return value.date().isoformat()
            return value.isoformat(sep=" ", timespec="seconds")
        return value.isoformat()

    def cell(self, value: Any) -> str:
        """How a raw table value is shown."""
        if value is None:
            return "–"
        if isinstance(value, bool):
            return self.t("report.yes") if value else self.t("report.no")
        if isinstance(value, int):
            return self.num(value)
        if isinstance(value, float):
            # Whole numbers read as counts; small fractions (0.001 prices) keep their digits.
            if value.is_integer():
                return self.num(value)
            return self.num(value, 2) if abs(value) >= 0.01 else f"{value:.4g}"
        if isinstance(value, date | datetime):
            return self.date(value)
        return str(value)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per report, so sections can share expensive queries."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def tables(self) -> dict[str, dict[str, str]]:
        """``{table: {column: type}}`` of the store's tables."""
        return self.memo("tables", lambda: store_tables(self.con))

    def has_rows(self, table: str) -> bool:
        """Whether ``table`` exists and holds at least one row."""
        if table not in self.tables():
            return False
        return self.memo(f"has_rows:{table}", lambda: self.con.execute(
            f'SELECT EXISTS (SELECT 1 FROM "{table}")').fetchone()[0])

    def quality(self) -> dict[str, Any]:
        """The data-quality summary in the report's language (computed once)."""
        return self.memo("quality", lambda: quality_summary(self.con, lang=self.lang))


# --- the registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A part of the report.

    Parameters
    ----------
    id : str
        Unique name; also the anchor of the section in the page.
    order : int
        Position in the report, lowest first (overview 10, data quality 20; analyses from 30).
    title_key : str
        Catalogue key of the title.
    build : callable
        ``build(ctx: ReportContext) -> SectionContent | None``; ``None`` means nothing to show.
    """

    id: str
    order: int
    title_key: str
    build: Callable[[ReportContext], SectionContent | None]


_registry: dict[str, Section] = {}
_lock = threading.Lock()


def register_section(section: Section) -> None:
    """Add ``section`` to the report; registering an id again replaces the earlier one.

    Parameters
    ----------
    section : Section
        The section to add.
    """
    with _lock:
        _registry[section.id] = section


def unregister_section(section_id: str) -> None:
    """Remove the section ``section_id`` if it is registered (tests, plug-ins turned off)."""
    with _lock:
        _registry.pop(section_id, None)


def registered_sections() -> list[Section]:
    """The registered sections, sorted by ``order`` (then id, to be deterministic).

    Returns
    -------
    list of Section
    """
    with _lock:
        return sorted(_registry.values(), key=lambda s: (s.order, s.id))


def findings_from_summary(items: Iterable[Mapping[str, Any]], *, with_source: bool = False
                          ) -> list[Finding]:
    """Findings of :func:`crmlens.clean.quality.quality_summary` as report findings."""
    return [Finding(f["text"], f["severity"], f.get("source") if with_source else None)
            for f in items]
