"""The recommendations section of the report and the ``recommend`` run stage."""

from __future__ import annotations

import pandas as pd
import pytest

from crmlens.recommend import store as rec_store
from crmlens.recommend_stage import run_recommend_stage
from crmlens.progress import NO_PROGRESS
from crmlens.workspace import Workspace
from tests.test_cli_recommend import shop_csv


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("rep")
    ws = Workspace(root / "ws")
    ws.ingest("transactions", shop_csv(root / "orders.csv"))
    return ws


def test_no_run_no_section(ws):
    html = ws.report(lang="en").read_text(encoding="utf-8")
    assert "Example recommendations" not in html


def test_stage_then_section_with_reasons(ws):
    summary = run_recommend_stage(ws, NO_PROGRESS)
    assert summary["customers"] == 60 and summary["evaluated"] is False  # one year only
    html = ws.report(lang="en").read_text(encoding="utf-8")
    assert "Recommendations" in html and "Example recommendations" in html
    assert "bought together with" in html or "also bought this" in html


def test_section_shows_the_evaluation_in_chinese(ws):
    evaluation = [{"method": "hybrid", "k": 10, "precision": 0.2, "recall": 0.1,
                   "hit_rate": 0.5, "coverage": 0.3, "n_customers": 40,
                   "baseline_precision": 0.1, "baseline_recall": 0.05,
                   "baseline_hit_rate": 0.3, "grade": "better"}]
    recs = pd.DataFrame([{"customer_id": "C1", "rank": 1, "product_id": "INK",
                          "product_name": "ink item", "score": 1.0, "source": "rules",
                          "reason_key": "recommend.reason.rules", "reason_item": "PEN",
                          "reason": "bought together with pen item"}])
    with ws.writer() as con:
        rec_store.save_run(con, "9999", method="hybrid", as_of="2023-12-31", k=10, params={},
                           metrics={"baseline": {"precision": 0.1, "recall": 0.05,
                                                 "hit_rate": 0.3, "coverage": 0.01},
                                    "test_start": "2023-10-01"},
                           recommendations=recs, evaluations=evaluation)
    html = ws.report(lang="zh").read_text(encoding="utf-8")
    assert "优于基线" in html and "热门度基线" in html and "×2.00" in html
    assert "常与“pen item”一起购买" in html
