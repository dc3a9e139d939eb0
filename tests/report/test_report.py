"""The HTML report: content, languages, self-containment and the section extension point."""

from __future__ import annotations

import json
import re
import runpy
import string
from datetime import datetime
from pathlib import Path

import duckdb
import plotly.offline
import pytest

from crmlens.errors import InputError
from crmlens.i18n import LANGUAGES, catalogue
from crmlens.report import (
    ReportContext,
    Section,
    SectionContent,
    register_section,
    registered_sections,
    render_report,
    unregister_section,
    write_report,
)
from crmlens.workspace.schema import FLAGS, KINDS, LINE_TYPES, REJECT_REASONS
from tests.report.conftest import build_workspace

WHEN = datetime(2024, 5, 6, 7, 8, 9)
SRC = Path(__file__).resolve().parents[2] / "src" / "crmlens"


def _render(con, lang="en", **kw) -> str:
    return render_report(con, lang=lang, generated_at=WHEN, **kw)


def _without_plotly_js(html: str) -> str:
    return html.replace(plotly.offline.get_plotlyjs(), "")


def _charts(html: str) -> list[dict]:
    specs = re.findall(r'<script type="application/json" class="chart-spec" '
                       r'data-target="[^"]+">(.*?)</script>', html, flags=re.DOTALL)
    return [json.loads(s) for s in specs]


def _chart_with(html: str, trace_name: str) -> dict:
    for spec in _charts(html):
        if any(tr.get("name") == trace_name for tr in spec["data"]):
            return spec
    raise AssertionError(f"no chart has a series {trace_name!r}")


def _trace(spec: dict, name: str) -> dict:
    return next(tr for tr in spec["data"] if tr.get("name") == name)


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<section class="section" id="([^"]+)"', html)


@pytest.fixture(scope="module")
def _pages(tmp_path_factory) -> dict[str, str]:
    """The test workspace's report in each language, rendered once for the read-only tests."""
    path = tmp_path_factory.mktemp("pages") / "demo-shop" / "crmlens.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    try:
        build_workspace(con)
        return {lang: _render(con, lang) for lang in LANGUAGES}
    finally:
        con.close()


@pytest.fixture
def html_en(_pages) -> str:
    return _pages["en"]


@pytest.fixture
def html_zh(_pages) -> str:
    return _pages["zh"]


@pytest.fixture
def extra_sections():
    """Register sections for one test and always remove them again."""
    added: list[str] = []

    def add(section: Section) -> None:
        register_section(section)
        added.append(section.id)

    yield add
    for section_id in added:
        unregister_section(section_id)


# --- the file -----------------------------------------------------------------------------


def test_write_report_writes_one_html_file(workspace_con, tmp_path):
    out = tmp_path / "reports" / "nested" / "report.html"
    assert write_report(workspace_con, out, lang="en", generated_at=WHEN) == out
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left


def test_rendering_is_deterministic(workspace_con):
    assert _render(workspace_con) == _render(workspace_con)


def test_title_and_date(workspace_con):
    html = _render(workspace_con, title="Q1 review for <Acme>")
    assert "<title>Q1 review for &lt;Acme&gt;</title>" in html
    assert "Generated 2024-05-06 07:08" in html
    assert "Workspace demo-shop" in html  # the folder, never the full path
    assert str(Path.cwd()) not in html


def test_unknown_language_is_an_input_error(workspace_con):
    with pytest.raises(InputError) as err:
        _render(workspace_con, "fr")
    assert "fr" in err.value.message("en") and "en, zh" in err.value.message("en")


def test_regional_language_codes_are_accepted(workspace_con):
    assert '<html lang="zh-CN">' in _render(workspace_con, "zh-CN")


# --- self-contained -----------------------------------------------------------------------


def test_no_external_resources(html_en, html_zh):
    # The plotly.js bundle mentions URLs in its own strings (docs links, map tiles we never
    # use); what matters is that the page loads nothing: no src/href outside that bundle.
    for html in (_without_plotly_js(html_en), _without_plotly_js(html_zh)):
        assert not re.search(r"""<(script|link|img|iframe|source|video|audio)\b[^>]*"""
                             r"""\b(src|href)\s*=""", html, flags=re.IGNORECASE)
        assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", html,
                             flags=re.IGNORECASE)
        assert "http://" not in html and "https://" not in html
        css = re.search(r"<style>(.*?)</style>", html, flags=re.DOTALL).group(1)
        assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_plotly_is_inlined_exactly_once(html_en):
    js = plotly.offline.get_plotlyjs()
    assert html_en.count(js[:300]) == 1
    assert html_en.count(js) == 1
    assert len(_charts(html_en)) >= 6


def test_data_cannot_break_out_of_the_page(workspace_con):
    workspace_con.execute("""UPDATE transactions SET product_name = '</script><b>Bold</b>'
                             WHERE product_id = 'P2'""")
    html = _without_plotly_js(_render(workspace_con))
    assert "<b>Bold</b>" not in html
    assert "&lt;/script&gt;&lt;b&gt;Bold&lt;/b&gt;" in html  # escaped in the tables
    labels = _chart_with(html, "Net revenue")  # the charts still parse
    assert labels
    assert any("</script><b>Bold</b> (P2)" in tr["y"] for spec in _charts(html)
               for tr in spec["data"] if tr.get("orientation") == "h")


# --- header and overview ------------------------------------------------------------------


def test_header_kpis(html_en):
    header = html_en.split('<nav class="toc"')[0]
    for label, value in [("Customers", "6"), ("Orders", "13"), ("Net revenue", "2,488"),
                         ("Date span", "2023-01-05 – 2023-04-20"), ("Returns share", "0.6%")]:
        assert re.search(rf'kpi-label">{re.escape(label)}</div>\s*<div class="kpi-value">'
                         rf'{re.escape(value)}</div>', header), label
    assert "106 days" in header


def test_monthly_revenue_and_customers(html_en):
    spec = _chart_with(html_en, "Net revenue")
    bars, line = _trace(spec, "Net revenue"), _trace(spec, "Active customers")
    assert bars["x"] == ["2023-01", "2023-02", "2023-03", "2023-04"]
    assert bars["y"] == [38.0, 2231.0, 215.0, 4.0]
    assert line["y"] == [2, 3, 3, 1]
    new_returning = _chart_with(html_en, "New customers")
    assert _trace(new_returning, "New customers")["y"] == [2, 2, 1, 1]
    assert _trace(new_returning, "Returning customers")["y"] == [0, 1, 2, 0]
    assert _trace(_chart_with(html_en, "Orders"), "Orders")["y"] == [3, 3, 6, 1]


def test_top_products_are_product_lines_by_net_revenue(html_en):
    spec = _charts(html_en)[3]
    (trace,) = spec["data"]
    assert trace["y"] == ["RED LANTERN (P2)", "茶叶礼盒 (G2)", "保温杯 (G1)", "BLUE VASE (P3)",
                          "WHITE MUG (P1)"]
    assert trace["x"] == [2012.0, 256.0, 156.0, 30.0, 25.0]


def test_regions_and_channels(html_en):
    regions = next(s for s in _charts(html_en) if "Germany" in s["data"][0].get("y", []))
    assert regions["data"][0]["y"] == ["Germany", "UK", "France"]
    assert regions["data"][0]["x"] == [1990.0, 57.0, 22.0]
    assert "Net revenue by channel (top 2)" in html_en
    assert "Net revenue by category" not in html_en  # no category anywhere


def test_all_null_region_degrades_gracefully(workspace_con):
    workspace_con.execute("UPDATE transactions SET region = NULL")
    html = _render(workspace_con)
    assert "Net revenue by region" not in html
    assert "Net revenue by channel" in html
    assert _section_ids(html) == ["overview", "quality"]


def test_customer_records_and_events(html_en):
    assert "Buyers with a customer record" in html_en
    assert "66.7%" in html_en and "4 of 6 buyers" in html_en
    assert ">review</td>" in html_en and ">click</td>" in html_en


def test_sources_table(html_en):
    row = re.search(r"<td>门店订单.xlsx</td>(.*?)</tr>", html_en, flags=re.DOTALL).group(1)
    assert re.findall(r'<td class="n">([\d,]+)</td>', row) == ["8", "6", "2"]


# --- data quality -------------------------------------------------------------------------


def test_quality_section_lists_findings_and_accounting(html_en):
    quality = html_en.split('id="quality"')[1]
    assert "3 rows (21.4%) have no customer id" in quality
    assert "2 exact duplicate rows were rejected" in quality
    assert "Read = loaded + rejected" in quality
    spec = _chart_with(html_en, "Loaded")
    assert _trace(spec, "Loaded")["x"] == [14, 6, 5, 3]
    assert _trace(spec, "Rejected")["x"] == [6, 2, 2, 1]


def test_quality_section_shows_reasons_flags_codes_and_columns(html_en):
    quality = html_en.split('id="quality"')[1]
    for text in ("Rejected rows by reason", "Flagged rows by flag", "Non-product codes",
                 "Missing values by column", "Unreadable date", "Outlier quantity",
                 "<td>POST</td>", "<td>Shipping</td>", "<td>Manual entry</td>",
                 "<td>Customer</td>"):
        assert text in quality, text


def test_rejected_examples_show_row_numbers_and_original_values(html_en):
    quality = html_en.split('id="quality"')[1]
    assert "Examples of rejected rows" in quality
    assert re.search(r'<td class="n">18</td><td>Unreadable date</td><td>31/02/2023</td>'
                     r'<td>O9</td>', quality)
    assert "O10;P1;WHITE MUG" in quality  # a malformed line shows its raw text


# --- languages ----------------------------------------------------------------------------


def test_english_report(html_en):
    assert '<html lang="en">' in html_en
    for text in ("Customer analytics report", "Contents", "Data overview", "Data quality",
                 "Net revenue and active customers per month", "Top 5 products by net revenue"):
        assert text in html_en, text


def test_chinese_report(html_zh):
    assert '<html lang="zh-CN">' in html_zh
    for text in ("客户分析报告", "目录", "数据概览", "数据质量", "主要发现", "行数核对",
                 "每月净收入与活跃客户数", "净收入前 5 名商品", "读取行数", "剔除行数",
                 "3 行（21.4%）没有客户编号", "剔除了 2 个完全重复的行", "共 106 天",
                 "按原因统计的剔除行", "日期无法解析", "运费"):
        assert text in html_zh, text
    assert "Customer analytics report" not in html_zh
    spec = _chart_with(html_zh, "净收入")
    assert spec["layout"]["xaxis"]["title"]["text"] == "月份"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_catalogue_key_leaks_into_the_page(workspace_con, lang):
    html = _without_plotly_js(_render(workspace_con, lang))
    leaked = re.findall(r"\b(?:report|quality)\.[a-z_]+", html)
    assert leaked == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_numbers_have_thousands_separators(workspace_con, lang):
    workspace_con.execute("UPDATE transactions SET amount = amount * 1000")
    html = _render(workspace_con, lang)
    assert "2,488,000" in html
    assert "2488000" not in _without_plotly_js(html).split('<script type="application/json"')[0]


# --- the extension point ------------------------------------------------------------------


def _extra_build(ctx: ReportContext) -> SectionContent:
    content = SectionContent(title="Extra insights", intro=ctx.t("report.overview.intro"))
    content.add_paragraph(f"Formatted: {ctx.num(1234567)} / {ctx.pct(0.25)}")
    content.add_table(["A", "B"], [("x", 1234), ("y", None)])
    content.add_chart(ctx.charts.bar(["a", "b"], [1, 2], name="extra series"), title="Extra")
    return content


def test_registered_section_appears_in_order(workspace_con, extra_sections):
    extra_sections(Section("extra", 15, "report.title", _extra_build))
    extra_sections(Section("last", 99, "report.title",
                           lambda ctx: SectionContent(title="The end").add_paragraph("fin")))
    html = _render(workspace_con)
    assert _section_ids(html) == ["overview", "extra", "quality", "last"]
    toc = html.split('<nav class="toc"')[1].split("</nav>")[0]
    assert re.findall(r'<a href="#([^"]+)">', toc) == ["overview", "extra", "quality", "last"]
    assert '<span class="num">2</span>Extra insights' in html
    assert "Formatted: 1,234,567 / 25.0%" in html
    assert '<td class="n">1,234</td>' in html
    assert _trace(_chart_with(html, "extra series"), "extra series")["y"] == [1, 2]


def test_section_with_nothing_to_show_is_left_out(workspace_con, extra_sections):
    extra_sections(Section("nothing", 15, "report.title", lambda ctx: None))
    html = _render(workspace_con)
    assert 'id="nothing"' not in html and 'href="#nothing"' not in html
    assert _section_ids(html) == ["overview", "quality"]


def test_failing_section_does_not_sink_the_report(workspace_con, extra_sections):
    def broken(ctx):
        raise RuntimeError("boom")

    extra_sections(Section("broken", 15, "report.overview.title", broken))
    html = _render(workspace_con)
    assert _section_ids(html) == ["overview", "broken", "quality"]
    assert "This section could not be built (RuntimeError: boom)" in html


def test_register_section_is_idempotent_by_id(extra_sections):
    extra_sections(Section("twice", 50, "report.title", lambda ctx: None))
    extra_sections(Section("twice", 5, "report.title", lambda ctx: None))
    ids = [s.id for s in registered_sections()]
    assert ids.count("twice") == 1
    assert ids.index("twice") < ids.index("overview")
    orders = [s.order for s in registered_sections()]
    assert orders == sorted(orders)


def test_builtin_sections_are_registered_on_import():
    assert [(s.id, s.order) for s in registered_sections()][:2] == [("overview", 10),
                                                                    ("quality", 20)]


def test_context_formatters(workspace_con):
    ctx = ReportContext(con=workspace_con, lang="zh", generated_at=WHEN)
    assert ctx.t("report.title") == "客户分析报告"
    assert ctx.num(9288) == "9,288" and ctx.num(None) == "–"
    assert ctx.money(1234.5) == "1,234.50"
    assert ctx.pct(0.249) == "24.9%"
    assert ctx.date(datetime(2011, 12, 9)) == "2011-12-09"
    assert ctx.date("2011-12-09T12:50:00") == "2011-12-09 12:50:00"
    assert ctx.cell(True) == "是" and ctx.cell(1234) == "1,234" and ctx.cell(None) == "–"
    assert ctx.has_rows("transactions") and not ctx.has_rows("no_such_table")


# --- empty workspaces ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["empty_con", "bare_con"])
def test_empty_workspace_report(request, fixture):
    con: duckdb.DuckDBPyConnection = request.getfixturevalue(fixture)
    html = _render(con)
    assert "No data yet" in html
    assert _section_ids(html) == []
    assert "Plotly.newPlot" not in html  # nothing to draw: no 4 MB of JavaScript either
    assert '<div class="kpis' not in html


def test_customers_only_workspace(workspace_con):
    workspace_con.execute("DELETE FROM transactions")
    html = _render(workspace_con)
    assert _section_ids(html) == ["overview", "quality"]
    assert "Customer records" in html.split('<nav class="toc"')[0]
    assert "Net revenue and active customers per month" not in html


# --- the catalogue ------------------------------------------------------------------------


def _keys_in_sources() -> set[str]:
    files = list((SRC / "report").rglob("*.py")) + list((SRC / "report").rglob("*.j2"))
    files.append(SRC / "clean" / "quality.py")
    keys: set[str] = set()
    for path in files:
        for key in re.findall(r"""["']((?:report|quality)\.[a-z0-9_.]+)["']""",
                              path.read_text(encoding="utf-8")):
            if not key.endswith(".") and not key.endswith(".j2"):
                keys.add(key)
    return keys


def _dynamic_keys() -> set[str]:
    keys = {f"quality.kind.{k}" for k in KINDS}
    keys |= {f"quality.line_type.{lt}" for lt in LINE_TYPES}
    keys |= {f"quality.severity.{s}" for s in ("info", "warning")}
    keys |= {f"quality.reason.{r}" for r in REJECT_REASONS}
    keys |= {f"quality.finding.rejected.{r}" for r in REJECT_REASONS}
    keys |= {f"quality.flag.{f}" for f in FLAGS}
    keys |= {f"quality.finding.flag.{f}" for f in FLAGS}
    keys |= {f"quality.finding.date_span.{k}" for k in KINDS}
    keys |= {f"report.overview.by_{c}" for c in ("region", "channel", "category")}
    keys |= {f"report.chart.by_{c}" for c in ("region", "channel", "category")}
    return keys


def test_every_key_used_exists_in_both_languages():
    used = _keys_in_sources() | _dynamic_keys()
    assert len(used) > 150
    cat = catalogue()
    missing = sorted(k for k in used
                     if k not in cat or not all(cat[k].get(lang) for lang in LANGUAGES))
    assert missing == []


def test_translations_take_the_same_parameters():
    names = string.Formatter()
    mismatched = []
    for key, texts in catalogue().items():
        if not key.startswith(("report.", "quality.")):
            continue
        fields = [{f for _, f, _, _ in names.parse(texts[lang]) if f} for lang in LANGUAGES]
        if fields[0] != fields[1]:
            mismatched.append(key)
    assert mismatched == []


# --- the documentation --------------------------------------------------------------------


def test_the_documented_third_party_section_works(workspace_con, tmp_path):
    doc = (SRC.parents[1] / "docs" / "report.md").read_text(encoding="utf-8")
    example = next(block for block in re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
                   if "register_section(Section(" in block)
    module = tmp_path / "docs_example.py"
    module.write_text(example, encoding="utf-8")
    try:
        runpy.run_path(str(module))  # as a plug-in module would be imported
        html = _render(workspace_con)
    finally:
        unregister_section("basket_sizes")
    assert _section_ids(html) == ["overview", "quality", "basket_sizes"]
    assert '<span class="num">3</span>Basket sizes' in html
    sizes = next(spec for spec in _charts(html)
                 if spec["layout"]["xaxis"]["title"]["text"] == "Lines")
    assert (sizes["data"][0]["x"], sizes["data"][0]["y"]) == (["1", "2"], [8, 3])
