"""The workspace store: atomic steps, kills, runs, settings, locking."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from crmlens import Workspace
from crmlens.errors import WorkspaceError
from tests.conftest import snapshot


def test_init_creates_layout(tmp_path):
    ws = Workspace(tmp_path / "shop").init()
    assert (ws.path / "crmlens.duckdb").is_file()
    assert (ws.path / "crmlens.toml").is_file()
    assert (ws.path / "reports").is_dir()
    assert ws.settings["clean"]["dayfirst"] == "auto"
    tables = {r[0] for r in ws.sql("SELECT table_name FROM duckdb_tables()")}
    assert {"runs", "sources", "rejected", "transactions", "customers", "events"} <= tables


def test_failure_mid_step_keeps_previous_state(tmp_path, orders_csv, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", orders_csv)
    before = snapshot(ws.path)

    import crmlens.ingest.pipeline as pipeline

    def boom(con, source_id):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "match_returns", boom)
    other = tmp_path / "other.csv"
    other.write_text(orders_csv.read_text().replace("17850", "99999"))
    with pytest.raises(RuntimeError):
        ws.ingest("transactions", other)
    assert snapshot(ws.path) == before


def test_kill_mid_step_keeps_previous_state(tmp_path, orders_csv):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", orders_csv)
    before = snapshot(ws.path)
    other = tmp_path / "other.csv"
    other.write_text(orders_csv.read_text().replace("17850", "99999"))
    # A child process ingests and dies (SIGKILL-like _exit) after writing, before committing.
    script = textwrap.dedent(f"""
        import os
        import crmlens.ingest.pipeline as pipeline
        from crmlens import Workspace
        real = pipeline.match_returns
        def die(con, source_id):
            real(con, source_id)
            os._exit(9)
        pipeline.match_returns = die
        Workspace({str(ws.path)!r}).ingest("transactions", {str(other)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert snapshot(ws.path) == before
    # and the workspace is still usable
    again = ws.ingest("transactions", other)
    assert again.rows_loaded == 6


def test_runs_record_every_step(tmp_path, orders_csv):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", orders_csv)
    ws.clean(dayfirst=True)
    runs = ws.runs()
    assert [r["step"] for r in runs] == ["clean", "ingest.transactions"]
    ingest = runs[1]
    assert ingest["params"]["kind"] == "transactions"
    assert ingest["inputs"][0]["fingerprint"].startswith("sha256:")
    assert ingest["inputs"][0]["bytes"] == orders_csv.stat().st_size
    assert ingest["row_counts"] == {"read": 6, "loaded": 6, "rejected": 0,
                                    "rejected_by_reason": {}}
    assert ingest["seconds"] >= 0 and ingest["status"] == "ok"
    assert runs[0]["params"]["dayfirst"] is True


def test_saved_mapping_is_reused(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("who,when,paid\nc1,2024-01-01,5\n")
    ws = Workspace(tmp_path / "ws")
    r1 = ws.ingest("transactions", a, mapping=["customer_id=who", "timestamp=when", "amount=paid"])
    assert r1.how == {"customer_id": "user", "timestamp": "user", "amount": "user"}
    b = tmp_path / "b.csv"
    b.write_text("who,when,paid\nc2,2024-02-01,7\n")
    r2 = ws.ingest("transactions", b)
    assert r2.mapping == {"customer_id": "who", "timestamp": "when", "amount": "paid"}
    assert set(r2.how.values()) == {"saved"}
    assert 'customer_id = "who"' in (ws.path / "crmlens.toml").read_text()


def test_replace_all_sources_of_a_kind(tmp_path, orders_csv):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", orders_csv)
    other = tmp_path / "other.csv"
    other.write_text(orders_csv.read_text())
    ws.ingest("transactions", other)
    assert ws.sql("SELECT count(*) FROM sources")[0][0] == 2
    r = ws.ingest("transactions", other, replace=True)
    assert sorted(r.replaced_sources) == [1, 2]
    assert ws.sql("SELECT count(*) FROM transactions")[0][0] == 6
    tables = {t[0] for t in ws.sql("SELECT table_name FROM duckdb_tables()")}
    assert "raw_transactions_1" not in tables and "raw_transactions_3" in tables


def test_broken_settings_file_is_a_clear_error(tmp_path, orders_csv):
    ws = Workspace(tmp_path / "ws").init()
    (ws.path / "crmlens.toml").write_text("[clean\nbroken = ")
    with pytest.raises(WorkspaceError) as exc:
        ws.ingest("transactions", orders_csv)
    assert "crmlens.toml" in str(exc.value)


def test_status_and_sql(tmp_path, orders_csv):
    ws = Workspace(tmp_path / "ws")
    ws.ingest("transactions", orders_csv)
    status = ws.status()
    assert status["tables"]["transactions"] == 6
    assert status["sources"][0]["rows_read"] == 6
    assert ws.sql("SELECT count(*) FROM orders")[0][0] == 4
