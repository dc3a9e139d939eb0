"""Property: whatever a messy table holds, read = loaded + rejected, row by row."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlens import Workspace

CELL = st.one_of(
    st.just(""), st.just("  "), st.just("NULL"), st.just("n/a"),
    st.sampled_from(["2011-12-09 12:50", "2011/12/9", "9/12/2011", "2011年12月9日", "1323435000",
                     "not a date", "31/31/2011", "２０１１-０１-０２"]),
    st.sampled_from(["¥1,234.50", "$12.50", "1.234,50 €", "１２.５", "(3.00)", "-2", "0", "abc",
                     "1e3", "NaN"]),
    st.sampled_from(["C536379", "536365", "17850.0", " 17850 ", "Ｃ１", "O1", "CO1"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)
HEADER = ["客户ID", "InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice", "Description"]


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buf.getvalue()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(st.lists(CELL, min_size=6, max_size=6), min_size=1, max_size=40),
       dup=st.booleans(), ragged=st.booleans())
def test_rows_are_never_lost(tmp_path_factory, rows, dup, ragged):
    if dup:
        rows = rows + rows[:3]
    text = _csv(rows)
    if ragged:  # a line with a missing field: the parser must reject it, not drop it
        text += "only,three,fields\n"
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "messy.csv"
    path.write_text(text, encoding="utf-8")
    ws = Workspace(folder / "ws")
    expected = len(rows) + (1 if ragged else 0)
    try:
        result = ws.ingest("transactions", path, encoding="utf-8", delimiter=",")
    except Exception as exc:  # only clear, domain errors are acceptable (e.g. no data rows)
        from crmlens.errors import CrmlensError

        assert isinstance(exc, CrmlensError), exc
        assert not (folder / "ws").exists()
        return
    assert result.rows_read == expected
    assert result.rows_loaded + result.rows_rejected == result.rows_read
    placed = ws.sql("SELECT source_row FROM transactions UNION ALL SELECT source_row FROM rejected")
    assert sorted(r[0] for r in placed) == list(range(1, expected + 1))
