"""The HTML report: one self-contained page, in English or Chinese, readable offline.

Usage::

    from crmlens.report import write_report
    write_report(con, Path("reports/report.html"), lang="zh")

Features add their own parts of the report by registering a :class:`Section`; see
:mod:`crmlens.report.sections` and ``docs/report.md``. Importing this package registers the
built-in sections (data overview, data quality).
"""

from crmlens.report import basket as _basket  # noqa: F401 - registers the basket section
from crmlens.report import churn as _churn  # noqa: F401 - registers the churn section
from crmlens.report import clv as _clv  # noqa: F401 - registers the CLV section
from crmlens.report import overview as _overview  # noqa: F401 - registers the built-in sections
from crmlens.report import recommend as _recommend  # noqa: F401 - registers the recommendations section
from crmlens.report import segments as _segments  # noqa: F401 - registers the segment section
from crmlens.report.builder import render_report, write_report
from crmlens.report.sections import (
    Chart,
    Finding,
    Findings,
    Heading,
    Kpi,
    KpiCards,
    Paragraph,
    ReportContext,
    Section,
    SectionContent,
    Table,
    register_section,
    registered_sections,
    unregister_section,
)

__all__ = [
    "Chart",
    "Finding",
    "Findings",
    "Heading",
    "Kpi",
    "KpiCards",
    "Paragraph",
    "ReportContext",
    "Section",
    "SectionContent",
    "Table",
    "register_section",
    "registered_sections",
    "render_report",
    "unregister_section",
    "write_report",
]
