"""The real Online Retail sample: every one of its 541,909 rows is accounted for."""

from __future__ import annotations

import json

import pytest

from crmlens import Workspace
from tests.conftest import ONLINE_RETAIL


@pytest.fixture(scope="module")
def retail_ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("retail") / "ws")
    result = ws.ingest("transactions", ONLINE_RETAIL)
    return ws, result


def test_every_row_accounted(retail_ws):
    ws, r = retail_ws
    assert r.rows_read == 541_909
    assert r.rows_loaded + r.rows_rejected == 541_909
    (loaded,) = ws.sql("SELECT count(*) FROM transactions")[0]
    (rejected,) = ws.sql("SELECT count(*) FROM rejected")[0]
    assert loaded == r.rows_loaded and rejected == r.rows_rejected
    # each source row is in exactly one place
    (distinct_rows,) = ws.sql(
        "SELECT count(DISTINCT source_row) FROM (SELECT source_row FROM transactions "
        "UNION ALL SELECT source_row FROM rejected)")[0]
    assert distinct_rows == 541_909


def test_known_figures(retail_ws):
    ws, r = retail_ws
    assert r.rejected_by_reason == {"duplicate_row": 5_268}
    # C-prefixed invoices: 9,288 in the file, of which the loaded ones are cancellations
    (c_lines,) = ws.sql("SELECT count(*) FROM transactions WHERE order_id LIKE 'C%'")[0]
    assert r.flags_by_reason["cancellation"] == c_lines
    (c_dups,) = ws.sql("SELECT count(*) FROM rejected WHERE original->>'InvoiceNo' LIKE 'C%'")[0]
    assert c_lines + c_dups == 9_288
    (anon,) = ws.sql("SELECT count(*) FROM transactions WHERE customer_id IS NULL")[0]
    (anon_dups,) = ws.sql("SELECT count(*) FROM rejected WHERE original->>'CustomerID' IS NULL")[0]
    assert anon + anon_dups == 135_080
    assert r.flags_by_reason["anonymous"] == anon
    (customers,) = ws.sql("SELECT count(DISTINCT customer_id) FROM transactions")[0]
    assert customers == 4_372
    # customer ids lose the float artefact
    assert ws.sql("SELECT customer_id FROM transactions WHERE source_row = 1")[0][0] == "17850"


def test_non_product_codes_classified(retail_ws):
    ws, _ = retail_ws
    types = dict(ws.sql("SELECT product_id, any_value(line_type) FROM transactions "
                        "WHERE product_id IN ('POST','DOT','M','D','C2','BANK CHARGES',"
                        "'AMAZONFEE','CRUK','S','B','85123A') GROUP BY 1"))
    assert types == {"POST": "shipping", "DOT": "shipping", "M": "manual", "D": "discount",
                     "C2": "shipping", "BANK CHARGES": "fee", "AMAZONFEE": "fee",
                     "CRUK": "commission", "S": "sample", "B": "adjustment",
                     "85123A": "product"}


def test_returns_netted(retail_ws):
    ws, _ = retail_ws
    # returns are negative and most are matched to an earlier order of the same customer
    (pos,) = ws.sql("SELECT count(*) FROM transactions WHERE is_return AND amount > 0")[0]
    assert pos == 0
    matched, total = ws.sql("SELECT count(return_of_order_id), count(*) FROM transactions "
                            "WHERE is_return AND customer_id IS NOT NULL")[0]
    assert matched > 0.8 * total
    bad = ws.sql("""
        SELECT count(*) FROM transactions r JOIN orders o ON o.order_id = r.return_of_order_id
        WHERE o.customer_id <> r.customer_id OR o.ts > r.ts""")[0][0]
    assert bad == 0
    gross, returned, net = ws.sql(
        "SELECT sum(gross_amount), sum(returned_amount), sum(net_amount) FROM orders")[0]
    assert returned < 0 and net == pytest.approx(gross + returned)


def test_runs_and_sources_recorded(retail_ws):
    ws, r = retail_ws
    runs = ws.runs()
    assert runs[0]["step"] == "ingest.transactions" and runs[0]["status"] == "ok"
    assert runs[0]["row_counts"]["read"] == 541_909
    assert runs[0]["inputs"][0]["fingerprint"].startswith("sha256:")
    src = ws.sql("SELECT rows_read, rows_loaded, rows_rejected, mapping FROM sources")[0]
    assert src[0] == src[1] + src[2] == 541_909
    assert json.loads(src[3])["customer_id"] == "CustomerID"
    assert ws.settings["mappings"]["transactions"]["timestamp"] == "InvoiceDate"
