"""The CLI: help everywhere, JSON output, the main verbs end to end."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ONLINE_RETAIL

COMMANDS = ["init", "ingest", "clean", "quality", "report", "run", "demo", "generate", "runs",
            "status"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "--format" in result.output or command == "init" or "--workspace" in result.output


def test_top_level_help_lists_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_ingest_quality_report_json(tmp_path, cli, orders_csv):
    ws = tmp_path / "shop"
    assert cli("init", ws).exit_code == 0
    result = cli("ingest", "transactions", orders_csv, "-w", ws, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rows_read"] == 6 and data["mapping"]["customer_id"] == "CustomerID"

    result = cli("quality", "-w", ws, "--format", "json")
    q = json.loads(result.stdout)
    src = q["sources"][0]
    assert src["rows_read"] == src["rows_loaded"] + src["rows_rejected"] == 6

    result = cli("report", "-w", ws, "--lang", "zh", "--format", "json")
    path = json.loads(result.stdout)["report"]
    html = open(path, encoding="utf-8").read()
    assert 'lang="zh-CN"' in html and "数据质量" in html

    runs = json.loads(cli("runs", "-w", ws, "--format", "json").stdout)
    assert runs[0]["step"] == "ingest.transactions"
    status = json.loads(cli("status", "-w", ws, "--format", "json").stdout)
    assert status["tables"]["transactions"] == 6


def test_text_output_shows_mapping_and_accounting(tmp_path, cli, orders_csv):
    result = cli("ingest", "transactions", orders_csv, "-w", tmp_path / "ws")
    assert result.exit_code == 0
    for piece in ("CustomerID", "InvoiceDate", "Rows read", "6"):
        assert piece in result.output
    zh = cli("quality", "-w", tmp_path / "ws", "--lang", "zh")
    assert "读取行数" in zh.output


def test_map_override_from_cli(tmp_path, cli):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\nk1,2024-01-01,3\n")
    result = cli("ingest", "transactions", path, "-w", tmp_path / "ws", "-m", "customer_id=a",
                 "-m", "timestamp=b", "-m", "amount=c", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["how"]["amount"] == "user"


def test_clean_command(tmp_path, cli, orders_csv):
    ws = tmp_path / "ws"
    cli("ingest", "transactions", orders_csv, "-w", ws)
    result = cli("clean", "-w", ws, "--drop-flag", "zero_price", "--format", "json")
    data = json.loads(result.stdout)
    assert data["sources"][0]["rejected_by_reason"] == {"dropped_by_rule": 1}


def test_run_writes_report(tmp_path, cli, orders_csv):
    result = cli("run", orders_csv, "-w", tmp_path / "ws", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ingested"][0]["rows_loaded"] == 6
    assert data["reports"][0].endswith("report-en.html")


def test_demo_on_bundled_sample(tmp_path, cli):
    ws = tmp_path / "demo"
    result = cli("demo", "-w", ws, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ingested"][0]["rows_read"] == 541_909
    assert len(data["reports"]) == 2
    assert all((ws / "reports" / name).is_file() for name in ("report-en.html", "report-zh.html"))
    # churn on the sample: rolling cutoffs, scored, and the best model beats the baseline
    churn = json.loads(cli("churn", "evaluate", "-w", ws, "--format", "json").stdout)
    assert churn["mode"] == "transactions" and len(churn["cutoffs"]) == 6
    assert churn["grade"] in ("clearly_better", "better")
    best = next(m for m in churn["models"] if m["is_best"])
    base = next(m for m in churn["models"] if m["is_baseline"])
    assert best["roc_auc"] > base["roc_auc"] + 0.01
    html = (ws / "reports" / "report-en.html").read_text(encoding="utf-8")
    assert 'id="churn"' in html and "better than the naive baseline" in html


def test_demo_refuses_a_foreign_folder(tmp_path, cli):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.docx").write_text("precious")
    result = cli("demo", "-w", folder)
    assert result.exit_code != 0 and (folder / "thesis.docx").exists()


def test_generate_then_ingest(tmp_path, cli):
    out = tmp_path / "synth"
    result = cli("generate", out, "--customers", "300", "--messy", "--file-format", "csv",
                 "--header-lang", "zh", "--format", "json")
    assert result.exit_code == 0, result.output
    ws = tmp_path / "ws"
    r = cli("ingest", "transactions", out / "transactions.csv", "-w", ws, "--format", "json")
    data = json.loads(r.stdout)
    assert data["rows_read"] == data["rows_loaded"] + data["rows_rejected"]
    assert {"customer_id", "order_id", "timestamp", "unit_price", "quantity"} <= set(data["mapping"])
    truth = json.loads((out / "truth.json").read_text())
    counts = truth["defects"]["counts"]
    assert data["rejected_by_reason"]["duplicate_row"] == counts["duplicate_rows"]


def test_bad_option_value(tmp_path, cli, orders_csv):
    result = cli("ingest", "transactions", orders_csv, "-w", tmp_path / "ws", "--delimiter", "::")
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_online_retail_quality_names_the_known_problems(tmp_path, cli):
    ws = tmp_path / "retail"
    assert cli("ingest", "transactions", ONLINE_RETAIL, "-w", ws).exit_code == 0
    q = json.loads(cli("quality", "-w", ws, "--format", "json").stdout)
    src = q["sources"][0]
    assert src["rows_read"] == 541_909 == src["rows_loaded"] + src["rows_rejected"]
    codes = {f["code"]: f for f in src["findings"]}
    for code in ("flag.cancellation", "flag.anonymous", "flag.non_product", "flag.zero_price"):
        assert code in codes, codes.keys()
        assert f"{codes[code]['count']:,}" in codes[code]["text"]
    assert "POST" in codes["flag.non_product"]["text"]
    text = cli("quality", "-w", ws).output
    assert "POSTAGE" in text and "BANK CHARGES" in text


def test_demo_text_names_the_stages(tmp_path, cli):
    result = cli("demo", "-w", tmp_path / "demo", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "Features: 4,335 customers" in result.stdout
    assert "RFM: 11 segments" in result.stdout and "Clustering:" in result.stdout
