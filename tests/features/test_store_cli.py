"""Storage in the workspace, the runs record, the CLI, and the generated docs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from crmlens.errors import InputError
from crmlens.features._catalogue import catalogue_markdown, definitions
from crmlens.features import feature_catalogue
from crmlens.workspace import Workspace

from ..conftest import snapshot
from .conftest import AS_OF

DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def test_store_replace_and_several_dates(tiny_ws):
    res = tiny_ws.features(as_of=AS_OF)
    assert res.n_customers == 2 and res.run_id is not None
    df = tiny_ws.read_features()
    assert list(df["customer_id"]) == ["A", "B"] and df.loc[0, "frequency"] == 4
    assert df.loc[0, "age"] == 33 and df.loc[0, "satisfaction"] == 3
    # Recomputing a date replaces its rows; another date lives beside it.
    tiny_ws.features(as_of=AS_OF)
    c = duckdb.connect(str(tiny_ws.db_path))
    c.execute("INSERT INTO transactions VALUES (1, 50, 'O50', 'B', TIMESTAMP '2024-07-02', "
              "'P1', NULL, 'Toys', 1, 8, 8, 'phone', NULL, false, 'product', NULL, [])")
    c.close()
    later = tiny_ws.features()  # default: the day after the last transaction (2024-07-05)
    assert str(later.as_of) == "2024-07-06" and "share_channel_phone" in later.columns
    rows = tiny_ws.sql("SELECT as_of, count(*) FROM customer_features GROUP BY 1 ORDER BY 1")
    assert [(str(d), n) for d, n in rows] == [("2024-07-01", 2), ("2024-07-06", 2)]
    old = tiny_ws.read_features(as_of=AS_OF)
    assert "share_channel_phone" not in old.columns and old.loc[0, "frequency"] == 4
    new = tiny_ws.read_features()
    assert new.loc[1, "share_channel_phone"] == pytest.approx(8 / 23)
    runs = [r for r in tiny_ws.runs() if r["step"] == "features"]
    assert len(runs) == 3 and runs[0]["params"]["as_of"] == "2024-07-06"
    assert runs[0]["row_counts"]["customers"] == 2


def test_read_features_errors(tiny_ws):
    with pytest.raises(InputError) as info:
        tiny_ws.read_features()
    assert info.value.key == "error.features_none_stored"
    tiny_ws.features(as_of=AS_OF)
    with pytest.raises(InputError) as info:
        tiny_ws.read_features(as_of="2024-02-02")
    assert info.value.key == "error.features_date_not_stored"


def test_failed_step_leaves_workspace_unchanged(tiny_ws):
    tiny_ws.features(as_of=AS_OF)
    before = snapshot(tiny_ws.path)
    with pytest.raises(InputError):
        tiny_ws.features(as_of="2020-01-01")
    assert snapshot(tiny_ws.path) == before


def test_cli_text_json_sql(cli, tiny_ws):
    res = cli("features", "--as-of", AS_OF, "-w", tiny_ws.path)
    assert res.exit_code == 0, res.output
    assert "2024-07-01" in res.output and "2 customers" in res.output
    assert "Recency" in res.output
    res = cli("features", "-w", tiny_ws.path, "-f", "json", "--lang", "zh")
    data = json.loads(res.output)
    assert data["as_of"] == "2024-07-06" and data["n_customers"] == 2
    assert data["labels"]["recency_days"] == "最近购买间隔"
    summary = {row["name"]: row for row in data["summary"]}
    assert summary["frequency"]["max"] == 5
    res = cli("features", "--show-sql", "--as-of", AS_OF, "-w", tiny_ws.path)
    assert res.exit_code == 0 and "CREATE OR REPLACE TEMP TABLE" in res.output
    assert "DATE '2024-07-01'" in res.output


@pytest.mark.parametrize("args, text", [
    (["--as-of", "2024-13-01"], "is not a date"),
    (["--as-of", "2019-01-01"], "not after the first transaction"),
])
def test_cli_bad_input(cli, tiny_ws, args, text):
    before = snapshot(tiny_ws.path)
    res = cli("features", *args, "-w", tiny_ws.path)
    assert res.exit_code == 2 and text in res.output and "Traceback" not in res.output
    assert snapshot(tiny_ws.path) == before


def test_cli_no_transactions(cli, tmp_path):
    ws = Workspace(tmp_path / "empty").init()
    before = snapshot(ws.path)
    res = cli("features", "-w", ws.path)
    assert res.exit_code == 2 and "no transactions" in res.output
    assert snapshot(ws.path) == before
    res = cli("features", "-w", tmp_path / "missing")
    assert res.exit_code == 3 and not (tmp_path / "missing").exists()


def test_catalogue_covers_every_column(tiny_ws):
    res = tiny_ws.features(as_of=AS_OF)
    names = {d["name"] for d in feature_catalogue(result=res)}
    assert set(res.columns) <= names
    zh = {d["name"]: d["label"] for d in feature_catalogue("zh")}
    assert zh["monetary"] == "消费金额（净额）" and "share_channel_{slug}" in zh
    assert all(d.kind in ("numeric", "categorical") and d.definition for d in definitions())


def test_docs_list_every_feature():
    text = DOCS.read_text(encoding="utf-8")
    assert catalogue_markdown() in text, "docs/features.md is stale: regenerate its table"
