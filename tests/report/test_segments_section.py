"""The report's segmentation section: profiles, charts, rules, choice of k, migration."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from crmlens.report import render_report
from crmlens.segment import profiles as prof
from crmlens.segment import store as seg_store
from tests.report.conftest import build_workspace

WHEN = datetime(2024, 5, 6, 7, 8, 9)


def _features() -> pd.DataFrame:
    return pd.DataFrame({
        "as_of": date(2023, 4, 21),
        "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
        "recency_days": [3.0, 10.0, 50.0, 80.0, 100.0, 5.0],
        "frequency": [5.0, 4.0, 1.0, 1.0, 2.0, 6.0],
        "monetary": [900.0, 700.0, 20.0, 15.0, 40.0, 800.0],
        "tenure_days": [100.0, 90.0, 60.0, 80.0, 100.0, 105.0],
    })


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = tmp_path_factory.mktemp("seg") / "crmlens.duckdb"
    c = duckdb.connect(str(path))
    build_workspace(c)
    f = _features()
    c.register("f", f)
    c.execute("CREATE TABLE customer_features AS SELECT * FROM f")
    c.unregister("f")
    labels = pd.DataFrame({"customer_id": f["customer_id"],
                           "segment": ["vip", "vip", "low", "low", "low", "vip"]})
    notes = {"order": ["vip", "low"], "chosen_k": 2,
             "k_table": [{"k": 2, "silhouette": 0.71, "stability": 0.95},
                         {"k": 3, "silhouette": 0.52, "stability": 0.81}],
             "k_reason": {"en": "k = 2: the most stable.", "zh": "k = 2：最稳定。"},
             "explanation": {"fidelity": 1.0, "rules": {
                 "en": {"vip": ["monetary > 420 → vip, covers 100 %, precision 100 %"]},
                 "zh": {"vip": ["消费额 > 420 → vip，覆盖 100%，精确率 100%"]}}}}
    rid = seg_store.save_segmentation(c, name="clusters", method="kmeans",
                                      as_of=date(2023, 4, 21), params={"k": 2}, labels=labels,
                                      notes=notes, order=["vip", "low"])
    seg_store.save_profiles(c, rid, prof.profile_segments(f, labels, order=["vip", "low"],
                                                          con=c, as_of=date(2023, 4, 21)))
    # A second run of the same name: migration between the two.
    labels2 = labels.copy()
    labels2.loc[2, "segment"] = "vip"
    rid2 = seg_store.save_segmentation(c, name="clusters", method="kmeans",
                                       as_of=date(2023, 4, 21), params={"k": 2},
                                       labels=labels2, notes=notes, order=["vip", "low"])
    seg_store.save_profiles(c, rid2, prof.profile_segments(f, labels2, order=["vip", "low"]))
    yield c
    c.close()


def _charts(html: str) -> list[dict]:
    specs = re.findall(r'<script type="application/json" class="chart-spec" '
                       r'data-target="[^"]+">(.*?)</script>', html, flags=re.DOTALL)
    return [json.loads(s) for s in specs]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_section_shows_profiles_rules_k_and_migration(con, lang):
    html = render_report(con, lang=lang, generated_at=WHEN)
    assert 'id="segments"' in html
    assert "could not be built" not in html and "生成失败" not in html
    latest = seg_store.latest_run(con, "clusters")
    for p in seg_store.read_profiles(con, latest):
        assert p["name"][lang] in html and p["action"][lang] in html
    kinds = {tr["type"] for spec in _charts(html) for tr in spec["data"]}
    assert {"heatmap", "sankey", "scattergl"} <= kinds
    sankey = next(tr for spec in _charts(html) for tr in spec["data"] if tr["type"] == "sankey")
    assert sum(sankey["link"]["value"]) == 6
    if lang == "en":
        assert "Customer segments" in html and "k-means clustering" in html
        assert "monetary &gt; 420" in html
        assert "Choosing the number of clusters (chosen: k = 2)" in html
        assert "k = 2: the most stable." in html
    else:
        assert "客户细分" in html and "消费额 &gt; 420" in html
        assert "聚类数的选择（选定 k = 2）" in html


def test_no_section_without_segmentations(tmp_path):
    c = duckdb.connect(str(tmp_path / "crmlens.duckdb"))
    build_workspace(c)
    html = render_report(c, lang="en", generated_at=WHEN)
    assert 'id="segments"' not in html
    c.close()
