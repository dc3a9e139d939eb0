"""Mean CLV and P(alive) per segment (crmlens.segment.clv_join), in the report's segment
profiles and in ``crmlens segment show``."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from crmlens import Workspace
from crmlens.report import render_report
from crmlens.segment import profiles as prof
from crmlens.segment import store as seg_store
from crmlens.segment.clv_join import current_clv_run_id, segment_clv, segment_clv_by_name
from tests.report.clv_tables import CLV, CUSTOMERS, OLD_RUN, P_ALIVE, RUN, create_clv_tables
from tests.report.conftest import build_workspace, create_schema

AS_OF = date(2023, 4, 21)
# C11 is in a segment but has no CLV score; C3 .. C10 are scored but C9, C10 have no segment.
MEMBERS = {"C1": "vip", "C2": "vip", "C3": "mid", "C4": "mid", "C5": "mid", "C6": "low",
           "C7": "low", "C8": "low", "C11": "low", "C12": "unscored"}


def _features() -> pd.DataFrame:
    ids = list(MEMBERS)
    return pd.DataFrame({
        "as_of": AS_OF, "customer_id": ids,
        "recency_days": [3.0, 5.0, 20.0, 30.0, 25.0, 80.0, 90.0, 70.0, 100.0, 60.0],
        "frequency": [9.0, 7.0, 4.0, 3.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0],
        "monetary": [900.0, 800.0, 300.0, 250.0, 280.0, 50.0, 40.0, 30.0, 20.0, 10.0],
    })


def _segment(con: duckdb.DuckDBPyConnection) -> int:
    labels = pd.DataFrame({"customer_id": list(MEMBERS), "segment": list(MEMBERS.values())})
    order = ["vip", "mid", "low", "unscored"]
    rid = seg_store.save_segmentation(con, name="tiers", method="rule", as_of=AS_OF,
                                      params={}, labels=labels, order=order)
    seg_store.save_profiles(con, rid, prof.profile_segments(_features(), labels, order=order))
    return rid


@pytest.fixture(autouse=True)
def english():
    # The CLI's --lang sets the process language; leave it as the other tests expect.
    from crmlens.i18n import set_language

    set_language("en")
    yield
    set_language("en")


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    build_workspace(c)
    create_clv_tables(c)
    rid = _segment(c)
    yield c, rid
    c.close()


def test_means_equal_a_pandas_join(con):
    c, rid = con
    got = segment_clv(c, rid).set_index("segment")
    scores = pd.DataFrame({"customer_id": CUSTOMERS, "clv": CLV, "p_alive": P_ALIVE})
    members = pd.DataFrame({"customer_id": list(MEMBERS), "segment": list(MEMBERS.values())})
    joined = members.merge(scores, on="customer_id", how="left")
    want = joined.groupby("segment").agg(n_customers=("customer_id", "size"),
                                         n_scored=("clv", "count"), mean_clv=("clv", "mean"),
                                         mean_p_alive=("p_alive", "mean"))
    assert sorted(got.index) == sorted(want.index)
    for column in ("n_customers", "n_scored"):
        assert got[column].tolist() == want.loc[got.index, column].tolist()
    for column in ("mean_clv", "mean_p_alive"):
        pd.testing.assert_series_equal(got[column], want.loc[got.index, column],
                                       check_names=False, check_index_type=False)
    # Hand-checked: vip = (100 + 80) / 2; low = C6, C7, C8 scored (20, 10, 5), C11 not.
    assert got.loc["vip", "mean_clv"] == pytest.approx(90.0)
    assert got.loc["low", "mean_clv"] == pytest.approx(35 / 3)
    assert got.loc["low", "n_scored"] == 3 and got.loc["low", "n_customers"] == 4
    assert pd.isna(got.loc["unscored", "mean_clv"])


def test_only_the_current_run_is_joined(con):
    c, rid = con
    assert current_clv_run_id(c) == RUN
    old = segment_clv(c, rid, clv_run_id=OLD_RUN).set_index("segment")
    assert old.loc["vip", "mean_clv"] == pytest.approx(999_999.0)
    means = segment_clv_by_name(c, rid)
    assert means["vip"] == {"mean_clv": pytest.approx(90.0),
                            "mean_p_alive": pytest.approx((0.98 + 0.91) / 2)}
    assert means["unscored"] == {"mean_clv": None, "mean_p_alive": None}


def test_nothing_without_clv_tables_or_current_run():
    c = duckdb.connect()
    create_schema(c)
    rid = _segment(c)
    assert current_clv_run_id(c) is None
    assert segment_clv(c, rid) is None and segment_clv_by_name(c, rid) == {}
    create_clv_tables(c, current=False)
    assert current_clv_run_id(c) is None and segment_clv(c, rid) is None
    c.close()


def _profile_rows(html: str) -> dict[str, list[str]]:
    table = re.search(r'<h4 class="caption">[^<]*</h4>.*?<table>(.*?)</table>', html[
        html.index('id="segments"'):], re.DOTALL).group(1)
    header = re.findall(r"<th[^>]*>(.*?)</th>", table)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r, re.DOTALL)
            for r in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)]
    return {"header": header, **{r[0]: r for r in rows if r}}


@pytest.mark.parametrize("lang, clv_col, alive_col", [("en", "Mean CLV", "Mean P(alive)"),
                                                      ("zh", "平均 CLV", "平均存活概率")])
def test_report_profiles_gain_clv_columns(con, lang, clv_col, alive_col):
    c, rid = con
    html = render_report(c, lang=lang, generated_at=datetime(2024, 5, 6))
    rows = _profile_rows(html)
    i, j = rows["header"].index(clv_col), rows["header"].index(alive_col)
    names = {p["segment"]: p["name"][lang] for p in seg_store.read_profiles(c, rid)}
    assert rows[names["vip"]][i] == "90.00" and rows[names["vip"]][j] == "94.5%"
    assert rows[names["low"]][i] == "11.67" and rows[names["low"]][j] == "41.7%"
    assert rows[names["unscored"]][i] == "–"


def test_report_profiles_unchanged_without_clv():
    c = duckdb.connect()
    build_workspace(c)
    _segment(c)
    header = _profile_rows(render_report(c, lang="en", generated_at=datetime(2024, 5, 6)))
    assert "Mean CLV" not in header["header"] and "Mean P(alive)" not in header["header"]
    c.close()


def test_cli_segment_show_lists_clv_means(tmp_path, cli):
    ws = Workspace(tmp_path / "shop").init()
    c = duckdb.connect(str(ws.db_path))
    _segment(c)
    create_clv_tables(c)
    c.close()
    r = cli("segment", "show", "tiers", "-w", ws.path, "--format", "json", "--lang", "en")
    assert r.exit_code == 0, r.output
    segments = {s["segment"]: s for s in json.loads(r.stdout)["segments"]}
    assert segments["mid"]["mean_clv"] == pytest.approx(40.0)
    assert segments["mid"]["mean_p_alive"] == pytest.approx((0.85 + 0.72 + 0.66) / 3)
    assert segments["unscored"]["mean_clv"] is None
    r = cli("segment", "show", "tiers", "-w", ws.path, "--lang", "en")
    assert r.exit_code == 0, r.output
    assert "Predicted value by segment (current CLV run)" in r.stdout
    assert re.search(r"Mean CLV .* P\(alive\)", r.stdout)
    assert re.search(r"High-value frequent active customers +│ +90\.00 │ +94\.5%", r.stdout)


def test_cli_segment_show_without_clv_has_no_clv_columns(tmp_path, cli):
    ws = Workspace(tmp_path / "shop").init()
    c = duckdb.connect(str(ws.db_path))
    _segment(c)
    c.close()
    r = cli("segment", "show", "tiers", "-w", ws.path, "--format", "json", "--lang", "en")
    assert r.exit_code == 0, r.output
    assert all("mean_clv" not in s for s in json.loads(r.stdout)["segments"])
    r = cli("segment", "show", "tiers", "-w", ws.path, "--lang", "en")
    assert r.exit_code == 0 and "Net spend" in r.stdout
    assert "Mean CLV" not in r.stdout and "current CLV run" not in r.stdout
