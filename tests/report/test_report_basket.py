"""The report's basket section: headline, top rules, association matrix, segments, en/zh."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from crmlens.report.basket import association_matrix, build_basket
from crmlens.report.sections import Chart, ReportContext, Table
from crmlens.workspace import Workspace
from tests.basket.test_store import _orders_csv, _seed_segments


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("basket_report")
    ws = Workspace(tmp / "ws")
    ws.ingest("transactions", _orders_csv(tmp))
    _seed_segments(ws)
    ws.basket_rules(min_support=0.05, min_confidence=0.3, segment_run="groups")
    return ws


def _content(ws, lang):
    with ws.reader() as con:
        return build_basket(ReportContext(con, lang, datetime(2024, 1, 1)))


def test_section_content_en(ws):
    content = _content(ws, "en")
    tables = [b for b in content.blocks if isinstance(b, Table)]
    top = tables[0]
    assert top.header[:2] == ("If the basket holds", "it also holds")
    # The strongest rules pair tea with biscuits or coffee with milk (lift 2).
    first = top.rows[0]
    assert {first[0], first[1]} in ({"TEA", "BISCUITS"}, {"COFFEE", "MILK"})
    assert first[4] == "2.00"
    captions = [t.caption for t in tables if t.caption]
    assert any("tea" in c for c in captions) and any("coffee" in c for c in captions)
    charts = [b for b in content.blocks if isinstance(b, Chart)]
    assert len(charts) == 1
    heat = json.loads(charts[0].figure)["data"][0]
    assert heat["type"] == "heatmap" and len(heat["x"]) >= 4


def test_matrix_has_no_cross_group_association(ws):
    with ws.reader() as con:
        ctx = ReportContext(con, "en", datetime(2024, 1, 1))
        run_id = con.execute("SELECT run_id FROM basket_runs WHERE is_current").fetchone()[0]
        fig = association_matrix(ctx, run_id)
    z = fig.data[0].z
    labels = list(fig.data[0].x)
    tea, coffee = labels.index("TEA"), labels.index("COFFEE")
    assert z[tea][coffee] is None  # never bought together: no rule, no cell


def test_report_renders_in_both_languages(ws, tmp_path):
    en = ws.report(lang="en", out=tmp_path / "en.html").read_text(encoding="utf-8")
    zh = ws.report(lang="zh", out=tmp_path / "zh.html").read_text(encoding="utf-8")
    assert "Products bought together" in en and "Top rules per segment" in en
    assert "一起购买的商品" in zh and "提升度" in zh


def test_no_section_without_a_run(tmp_path):
    from tests.conftest import SMALL_ORDERS, write_csv

    ws = Workspace(tmp_path / "empty")
    ws.ingest("transactions", write_csv(tmp_path / "o.csv", SMALL_ORDERS))
    assert _content(ws, "en") is None
    assert "Products bought together" not in ws.report(lang="en").read_text(encoding="utf-8")
