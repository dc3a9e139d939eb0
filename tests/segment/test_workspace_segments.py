"""Segmentation on a real workspace (the bundled Online Retail sample): the Workspace verbs,
the ``crmlens segment`` CLI, the run/demo stages and the report section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from crmlens import Workspace
from crmlens.errors import InputError
from crmlens.segment.rfm import load_segment_map
from tests.conftest import ONLINE_RETAIL, snapshot


@pytest.fixture(autouse=True)
def english():
    # CLI tests here switch the process language (--lang zh); library messages are checked
    # in English.
    from crmlens.i18n import set_language

    set_language("en")
    yield
    set_language("en")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Online Retail ingested, features as of the default date and a quarter earlier."""
    path = tmp_path_factory.mktemp("seg") / "shop"
    ws = Workspace(path)
    ws.ingest("transactions", ONLINE_RETAIL)
    ws.features(as_of="2011-09-10")
    ws.features()
    return path


@pytest.fixture
def ws(base, tmp_path) -> Workspace:
    # Each test works on its own copy: the module's ingest is paid once.
    target = tmp_path / "shop"
    shutil.copytree(base, target)
    return Workspace(target)


def test_rfm_labels_every_customer_with_the_map(ws):
    res = ws.segment_rfm()
    n = ws.sql("SELECT count(*) FROM customer_features WHERE as_of = DATE '2011-12-10'")[0][0]
    assert res.run.n_customers == n == 4335
    labels = ws.segment_members("rfm")
    assert len(labels) == n and labels["customer_id"].is_unique
    assert set(labels["segment"]) <= set(load_segment_map().ids)
    assert res.run.method == "rfm" and str(res.run.as_of) == "2011-12-10"
    # Profiles add up; names and actions come from the map in both languages.
    assert sum(p["n_customers"] for p in res.profiles) == n
    assert sum(p["share_revenue"] for p in res.profiles) == pytest.approx(1.0)
    champions = next(p for p in res.profiles if p["segment"] == "champions")
    assert champions["name"] == {"en": "Champions", "zh": "冠军客户"}
    assert champions["share_revenue"] > champions["share_customers"] * 2
    assert champions["top_products"] and champions["top_products"][0]["spend"] > 0
    # Rules in both languages, measured on all customers.
    expl = res.explanation
    assert 0.5 < expl["fidelity"] <= 1.0
    assert any("Champions" in r for r in expl["rules"]["en"]["champions"])
    assert any("冠军客户" in r for r in expl["rules"]["zh"]["champions"])
    # The step is in the runs table with its parameters and timing.
    run = ws.runs(1)[0]
    assert run["run_id"] == res.run_id and run["step"] == "segment.rfm"
    assert run["params"]["method"] == "quantile" and run["row_counts"]["customers"] == n
    assert run["seconds"] > 0.01


def test_cluster_auto_k_is_recorded_and_explained(ws):
    res = ws.segment_cluster(k_range=(2, 5))
    notes = res.run.notes
    assert [row["k"] for row in notes["k_table"]] == [2, 3, 4, 5]
    assert notes["chosen_k"] == res.run.n_segments
    assert "k =" in notes["k_reason"]["en"] and notes["k_reason"]["zh"]
    assert {"silhouette", "stability"} <= set(notes["k_table"][0])
    d = res.to_dict("zh")
    assert d["chosen_k"] == notes["chosen_k"] and len(d["segments"]) == notes["chosen_k"]
    assert all(s["name"] for s in d["segments"])
    # Names are unique within a run in each language.
    for lang in ("en", "zh"):
        names = [p["name"][lang] for p in res.profiles]
        assert len(names) == len(set(names))


def test_cluster_fixed_k_and_feature_choice(ws):
    res = ws.segment_cluster(n_clusters=3, features=["recency_days", "frequency", "monetary"],
                             name="rfm3")
    assert res.run.n_segments == 3 and res.run.params["features"] == [
        "recency_days", "frequency", "monetary"]
    assert "k_table" not in res.run.notes
    labels = ws.segment_members("rfm3")
    assert set(labels["segment"]) == {"1", "2", "3"}


def test_bad_requests_leave_the_workspace_unchanged(ws):
    before = snapshot(ws.path)
    with pytest.raises(InputError, match="no_such_feature"):
        ws.segment_cluster(features=["no_such_feature"])
    with pytest.raises(InputError, match="2011-01-01"):
        ws.segment_rfm(as_of="2011-01-01")
    with pytest.raises(InputError, match="position"):
        ws.segment_rule("vip", "monetary >= AND")
    with pytest.raises(InputError):
        ws.segment_rule("nobody", "monetary > 1e12")
    assert snapshot(ws.path) == before


def test_rule_segment_matches_sql_and_estimate(ws):
    expr = "recency_days <= 30 AND frequency >= 5"
    expected = ws.sql("SELECT count(*) FROM customer_features WHERE as_of = DATE '2011-12-10' "
                      "AND recency_days <= 30 AND frequency >= 5")[0][0]
    size = ws.segment_estimate(expr)
    assert size["n"] == expected and size["total"] == 4335
    res = ws.segment_rule("vip", expr)
    assert res.run.n_customers == expected and res.run.method == "rule"
    # A later rule can build on the saved segment.
    both = ws.segment_estimate("segment('vip') AND monetary > 5000")
    assert 0 < both["n"] < expected


def test_waterfall_is_mutually_exclusive(ws):
    res = ws.segment_waterfall("campaign", [("vip", "monetary >= 5000"),
                                            ("active", "recency_days <= 60")],
                               default_label="rest")
    labels = ws.segment_members("campaign")
    assert len(labels) == 4335 and labels["customer_id"].is_unique
    counts = {c["segment"]: c for c in res.extra["counts"] if c["segment"]}
    n_vip = ws.sql("SELECT count(*) FROM customer_features WHERE as_of = DATE '2011-12-10' "
                   "AND monetary >= 5000")[0][0]
    assert counts["vip"]["assigned"] == n_vip
    assert counts["active"]["taken_earlier"] > 0
    assert (labels["segment"] == "vip").sum() == n_vip


def test_migration_between_quarters(ws):
    first = ws.segment_rfm(as_of="2011-09-10")
    second = ws.segment_rfm()
    m = ws.segment_migrate(first.run_id, "rfm")
    assert m.source.run_id == first.run_id and m.target.run_id == second.run_id
    total = sum(map(sum, m.counts))
    # Everyone of either run is counted once: the later run holds every earlier customer.
    assert total == second.run.n_customers == 4335
    absent_row = m.rows.index("\u2205")
    assert sum(m.counts[absent_row]) == 4335 - first.run.n_customers
    at_risk = m.rows.index("at_risk")
    assert sum(m.shares[at_risk]) == pytest.approx(1.0)


def test_no_features_is_a_clear_error(tmp_path):
    ws = Workspace(tmp_path / "empty").init()
    with pytest.raises(InputError, match="crmlens features"):
        ws.segment_rfm()


# --- CLI --------------------------------------------------------------------------------


def test_cli_rfm_json_and_text(ws, cli):
    r = cli("segment", "rfm", "-w", ws.path, "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["run"]["n_customers"] == 4335
    assert {s["segment"] for s in data["segments"]} <= set(load_segment_map().ids)
    assert data["segments"][0]["rules"] and "fidelity" in data
    r = cli("segment", "show", "rfm", "-w", ws.path, "--lang", "zh")
    assert r.exit_code == 0 and "冠军客户" in r.stdout and "建议行动" in r.stdout


def test_cli_cluster_build_waterfall_list_export_migrate(ws, cli, tmp_path):
    r = cli("segment", "cluster", "--k", "3", "--features", "recency_days,frequency,monetary",
            "-w", ws.path, "--format", "json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["segments"]) == 3
    r = cli("segment", "build", "frequency >= 10", "-w", ws.path)
    assert r.exit_code == 0 and "of 4,335 customers" in r.stdout
    r = cli("segment", "build", "frequency >= 10", "--name", "loyal10", "-w", ws.path)
    assert r.exit_code == 0 and "loyal10" in r.stdout
    r = cli("segment", "waterfall", "big:monetary >= 5000", "often:frequency >= 10", "--name",
            "wf", "--default", "rest", "-w", ws.path)
    assert r.exit_code == 0 and "Taken earlier" in r.stdout
    r = cli("segment", "list", "-w", ws.path, "--format", "json")
    assert [x["name"] for x in json.loads(r.stdout)] == ["wf", "loyal10", "clusters"]
    out = tmp_path / "members.csv"
    r = cli("segment", "export", "wf", out, "-w", ws.path)
    assert r.exit_code == 0
    members = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert len(members) == 4335 and set(members["segment"]) == {"big", "often", "rest"}
    r = cli("segment", "migrate", "--from", "clusters", "--to", "wf", "-w", ws.path,
            "--format", "json")
    assert r.exit_code == 0
    assert sum(map(sum, json.loads(r.stdout)["counts"])) == 4335


@pytest.mark.parametrize(("args", "needle"), [
    (["cluster", "--k", "many"], "many"),
    (["cluster", "--k-range", "2-5"], "2-5"),
    (["build", "recency_days <= 'x' OR", "--name", "x"], "position"),
    (["waterfall", "no colon here"], "no colon here"),
    (["show", "nope"], "nope"),
    (["rfm", "--cut", "frequency=a,b"], "frequency=a,b"),
])
def test_cli_bad_input_is_a_message_not_a_traceback(ws, cli, args, needle):
    before = snapshot(ws.path)
    r = cli("segment", *args, "-w", ws.path)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output
    assert snapshot(ws.path) == before


def test_report_has_the_segment_section(ws):
    ws.segment_rfm(as_of="2011-09-10")
    ws.segment_rfm()
    ws.segment_cluster(n_clusters=4)
    html = ws.report(lang="zh").read_text(encoding="utf-8")
    assert 'id="segments"' in html and "冠军客户" in html and "生成失败" not in html
    assert '"type":"sankey"' in html


def test_natural_breaks_tiers(ws):
    res = ws.segment_cluster(method="natural_breaks", name="tiers")
    notes = res.run.notes
    gvf = {row["k"]: row["gvf"] for row in notes["k_table"]}
    assert list(gvf.values()) == sorted(gvf.values())
    k = notes["chosen_k"]
    assert gvf[k] >= 0.9 and all(g < 0.9 for kk, g in gvf.items() if kk < k)
    f = ws.read_features().set_index("customer_id")["monetary"]
    labels = ws.segment_members("tiers").set_index("customer_id")["segment"].astype(int)
    ranges = f.groupby(labels).agg(["min", "max"]).sort_index()
    assert (ranges["min"].to_numpy()[1:] >= ranges["max"].to_numpy()[:-1]).all()
    top = res.profiles[0]
    assert top["segment"] == str(k) and top["name"]["en"].startswith(f"Tier {k}:")
    with pytest.raises(InputError, match="exactly one feature"):
        ws.segment_cluster(method="natural_breaks", features=["monetary", "frequency"])
