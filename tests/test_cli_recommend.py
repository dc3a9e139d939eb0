"""`crmlens recommend` in-process on a small workspace: JSON, one customer, errors, report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from crmlens.workspace import Workspace


def shop_csv(path: Path) -> Path:
    """60 customers over a year: mugs go with saucers, pens with ink; a few bestsellers."""
    lines = ["order_id,customer_id,product_id,product_name,quantity,unit_price,timestamp"]
    start = datetime(2023, 1, 1)
    pairs = [("MUG", "SAUCER"), ("PEN", "INK"), ("CAP", "SCARF")]
    n = 0
    for c in range(60):
        a, b = pairs[c % 3]
        for visit in range(4):
            n += 1
            day = start + timedelta(days=(c * 5 + visit * 90) % 360)
            basket = [a, b] if visit % 2 == 0 else [a, "BAG", f"X{c % 7}"]
            for p in basket:
                lines.append(f"O{n},C{c},{p},{p.lower()} item,1,2.5,{day:%Y-%m-%d}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    ws = Workspace(root / "ws")
    ws.ingest("transactions", shop_csv(root / "orders.csv"))
    return ws.path


def test_recommend_json_and_one_customer(cli, shop):
    res = cli("recommend", "--workspace", str(shop), "--k", "3", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["method"] == "hybrid" and data["k"] == 3 and data["n_customers"] == 60
    res = cli("recommend", "-w", str(shop), "--customer", "C1", "--k", "2", "--method", "rules",
              "--format", "json")
    assert res.exit_code == 0, res.output
    recs = json.loads(res.output)["recommendations"]
    assert [r["rank"] for r in recs] == [1, 2]
    # C1 bought PEN, INK, BAG and X1: nothing of that comes back, INK's partner rule is there.
    assert not {"PEN", "INK", "BAG", "X1"} & {r["product_id"] for r in recs}
    assert all(r["source"] == "rules" and r["reason_item"] for r in recs)


def test_one_customer_reads_the_stored_run_unless_refreshed(cli, shop):
    first = json.loads(cli("recommend", "-w", str(shop), "--k", "4", "--format", "json").output)
    # Same settings, fewer items: the stored run answers (no new run).
    res = cli("recommend", "-w", str(shop), "--customer", "C2", "--k", "3", "--format", "json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["run_id"] == first["run_id"] and len(got["recommendations"]) == 3
    # --refresh (or different settings) fits again and stores a new run.
    again = json.loads(cli("recommend", "-w", str(shop), "--customer", "C2", "--k", "3",
                           "--refresh", "--format", "json").output)
    assert again["run_id"] != first["run_id"]
    other = json.loads(cli("recommend", "-w", str(shop), "--customer", "C2", "--k", "3",
                           "--method", "popular", "--format", "json").output)
    assert other["run_id"] not in (first["run_id"], again["run_id"])


def test_recommend_text_exclude_and_repeats(cli, shop):
    res = cli("recommend", "-w", str(shop), "--customer", "C0", "--allow-repeats",
              "--exclude", "MUG", "--k", "5", "--format", "json")
    assert res.exit_code == 0, res.output
    ids = [r["product_id"] for r in json.loads(res.output)["recommendations"]]
    assert "MUG" not in ids and "SAUCER" in ids
    res = cli("recommend", "-w", str(shop), "--customer", "C0", "--lang", "zh")
    assert res.exit_code == 0 and "顾客 C0 的推荐" in res.output


@pytest.mark.parametrize("args", [("--method", "bogus"), ("--k", "0"),
                                  ("--customer", "NOPE")])
def test_recommend_errors(cli, shop, args):
    res = cli("recommend", "-w", str(shop), *args)
    assert res.exit_code == 2
    assert "Traceback" not in res.output


def test_recommend_missing_workspace(cli, tmp_path):
    res = cli("recommend", "-w", str(tmp_path / "none"))
    assert res.exit_code == 3
