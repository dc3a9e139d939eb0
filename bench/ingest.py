"""Ingest + clean benchmark: crmlens against pandas, in the same run.

For each data size (and data variant) the script generates a synthetic transactions CSV in a
temporary folder, then runs, each in a fresh subprocess:

* crmlens: ``crmlens.Workspace(<fresh temp dir>).ingest("transactions", csv)``;
* pandas: ``pd.read_csv(csv, dtype=str, ...)`` plus the same cleaning written in pandas
  (``bench/_pandas_clean.py``),

and records the wall seconds of the ingest call and the peak resident memory of the process
(``ru_maxrss`` from ``wait4``), plus the rows read, loaded and rejected by reason. It prints a
table and replaces its own section of ``bench/RESULTS.md``.

    .venv/bin/python bench/ingest.py                      # 1M and 10M rows, messy data
    .venv/bin/python bench/ingest.py --clean-data         # plus homogeneous (clean) exports
    .venv/bin/python bench/ingest.py --quick              # 100k rows, results not written
    .venv/bin/python bench/ingest.py --sizes 1e6 --repeat 3 --profile

Generation time is not part of the measurement. Nothing else should run on the machine while
it measures; the load average at the start is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
SECTION = "## Ingest + clean (bench/ingest.py)"
RESULTS_HEADER = """# Benchmark results

Figures measured by the scripts in `bench/`. Each script owns one `## ...` section below and
replaces only that section when it is run again; see `bench/README.md` for how to run them.
"""

# Targets from the issue, checked on the largest messy data set.
TARGET_MAX_BYTES = 2_000_000_000  # "under 2 GB" read strictly: 2e9 bytes (1907 MiB)
TARGET_SPEEDUP = 3.0


# --- workers (run in their own process) ------------------------------------------------------


def _self_maxrss_kib() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _profile_crmlens() -> list[dict[str, Any]]:
    """Time every SQL statement crmlens runs (and its Python-side file steps)."""
    from crmlens.ingest import pipeline, textfile
    from crmlens.workspace import store

    records: list[dict[str, Any]] = []

    def note(label: str, seconds: float) -> None:
        background = threading.current_thread() is not threading.main_thread()
        records.append({"seconds": seconds, "statement": label, "background": background})

    class Timed:
        def __init__(self, con: Any) -> None:
            self._con = con

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

        def execute(self, sql: str, *args: Any, **kwargs: Any) -> Timed:
            t = time.perf_counter()
            self._con.execute(sql, *args, **kwargs)
            note(" ".join(sql.split()), time.perf_counter() - t)
            return self

        def executemany(self, sql: str, *args: Any, **kwargs: Any) -> Timed:
            t = time.perf_counter()
            self._con.executemany(sql, *args, **kwargs)
            note(" ".join(sql.split()), time.perf_counter() - t)
            return self

    def timed_fn(fn: Any, label: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                note(label, time.perf_counter() - t)
        return wrapper

    connect, close = store.connect, store.close
    store.connect = lambda *a, **k: Timed(connect(*a, **k))
    store.close = lambda con: close(con._con if isinstance(con, Timed) else con)
    pipeline.file_fingerprint = timed_fn(pipeline.file_fingerprint,
                                         "[python] sha256 fingerprint of the file")
    textfile.sniff_text_file = timed_fn(textfile.sniff_text_file,
                                        "[python] sniff encoding and delimiter")
    return records


def worker_crmlens(csv: Path, workdir: Path, profile: bool) -> dict[str, Any]:
    records = _profile_crmlens() if profile else None
    import crmlens

    ws = crmlens.Workspace(workdir / "workspace")
    t = time.perf_counter()
    result = ws.ingest("transactions", csv)
    seconds = time.perf_counter() - t
    db_bytes = sum(p.stat().st_size for p in (workdir / "workspace").glob("crmlens.duckdb*"))
    out = {
        "seconds": seconds, "rows_read": result.rows_read, "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected, "rejected_by_reason": result.rejected_by_reason,
        "flags_by_reason": result.flags_by_reason, "dayfirst": result.options.get("dayfirst"),
        "db_bytes": db_bytes, "maxrss_self_kib": _self_maxrss_kib(),
    }
    if records is not None:
        out["profile"] = records
    return out


def worker_pandas(csv: Path) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    import warnings

    import _pandas_clean

    warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular")
    t = time.perf_counter()
    clean, rejected, summary = _pandas_clean.clean_transactions(csv)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, **summary, "maxrss_self_kib": _self_maxrss_kib()}


VALUE_COLUMNS = ("order_id", "customer_id", "ts", "product_id", "product_name", "category",
                 "quantity", "unit_price", "amount", "channel", "region", "is_return",
                 "line_type", "return_of_order_id")


def worker_verify(csv: Path, workdir: Path) -> dict[str, Any]:
    """Row-by-row comparison of crmlens's and pandas's outputs on one file (not timed)."""
    import duckdb
    import numpy as np
    import pandas as pd

    import crmlens

    sys.path.insert(0, str(BENCH_DIR))
    import warnings

    import _pandas_clean

    warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular")
    ws = crmlens.Workspace(workdir / "workspace")
    ws.ingest("transactions", csv)
    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        crm = con.sql("SELECT * FROM transactions ORDER BY source_row").df()
        crm_rej = con.sql("SELECT source_row, reason, detail FROM rejected "
                          "ORDER BY source_row").df()
    clean, rejected, _ = _pandas_clean.clean_transactions(csv)
    pan = clean.sort_values("source_row").reset_index(drop=True)
    pan_rej = rejected.sort_values("source_row").reset_index(drop=True)
    out: dict[str, Any] = {"rows": len(crm), "differences": {}}
    if len(crm) != len(pan) or not np.array_equal(crm["source_row"], pan["source_row"]):
        out["differences"]["kept rows"] = int(abs(len(crm) - len(pan))) or -1
        return out
    for col in VALUE_COLUMNS:
        a, b = crm[col], pan[col]
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            same = np.isclose(a.astype(float), b.astype(float), rtol=1e-9, equal_nan=True)
        else:
            same = (a.astype(object).to_numpy() == b.astype(object).to_numpy()) | (
                a.isna().to_numpy() & b.isna().to_numpy())
        out["differences"][col] = int((~same).sum())
    crm_flags = crm["flags"].map(lambda f: tuple(sorted(f)))
    flag_cols = [c for c in pan.columns if c.startswith("flag_")]
    names = np.array([c.removeprefix("flag_") for c in flag_cols])
    bits = pan[flag_cols].to_numpy()
    pan_flags = pd.Series([tuple(sorted(names[row])) for row in bits])
    out["differences"]["flags"] = int((crm_flags.to_numpy() != pan_flags.to_numpy()).sum())
    same_rej = (len(crm_rej) == len(pan_rej)
                and np.array_equal(crm_rej["source_row"], pan_rej["source_row"])
                and (crm_rej["reason"].to_numpy() == pan_rej["reason"].to_numpy()).all()
                and (crm_rej["detail"].fillna("").to_numpy()
                     == pan_rej["detail"].fillna("").to_numpy()).all())
    out["differences"]["rejected rows, reasons, details"] = 0 if same_rej else -1
    return out


def run_worker(args: argparse.Namespace) -> int:
    csv, out = Path(args.csv), Path(args.out)
    if args.worker == "crmlens":
        res = worker_crmlens(csv, Path(args.workdir), args.profile)
    elif args.worker == "verify":
        res = worker_verify(csv, Path(args.workdir))
    else:
        res = worker_pandas(csv)
    out.write_text(json.dumps(res, default=str), encoding="utf-8")
    return 0


# --- the parent: data, subprocesses, measurement ---------------------------------------------


def _vmrss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _cpu_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _busy_now(seconds: float = 2.0) -> float:
    """Cores in use by all processes, sampled over ``seconds``."""
    b0, t0 = _cpu_busy_seconds(), time.perf_counter()
    time.sleep(seconds)
    return (_cpu_busy_seconds() - b0) / (time.perf_counter() - t0)


def wait_for_idle(max_wait: float, busy_limit: float = 0.3) -> float:
    """Wait (up to max_wait s) until the rest of the machine uses under busy_limit cores."""
    waited = 0.0
    while True:
        busy = _busy_now()
        if busy < busy_limit or waited >= max_wait:
            return busy
        if waited == 0:
            print(f"  (machine busy: {busy:.1f} cores in use; waiting up to {max_wait:.0f} s)",
                  flush=True)
        waited += 2.0 + 3.0
        time.sleep(3.0)


def measure(engine: str, csv: Path, tmp: Path, *, timeout: float, max_rss_kib: int,
            profile: bool) -> dict[str, Any]:
    """Run one worker in a fresh process; wall seconds and peak RSS of that process."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{engine}-", dir=tmp))
    out, log = workdir / "result.json", workdir / "worker.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--csv", str(csv),
           "--out", str(out), "--workdir", str(workdir)] + (["--profile"] if profile else [])
    started, busy0 = time.perf_counter(), _cpu_busy_seconds()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=str(tmp))
    killed, polled = None, 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        polled = max(polled, _vmrss_kib(proc.pid))
        elapsed = time.perf_counter() - started
        if killed is None and polled > max_rss_kib:
            killed = f"killed at {polled / 2**20:.1f} GiB RSS (limit {max_rss_kib / 2**20:.0f} GiB)"
            os.kill(proc.pid, signal.SIGKILL)
        elif killed is None and elapsed > timeout:
            killed = f"timed out after {timeout:.0f} s"
            os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    own_cpu = usage.ru_utime + usage.ru_stime
    # CPU used by everything else while the worker ran (this parent's polling included).
    others = max(_cpu_busy_seconds() - busy0 - own_cpu, 0.0) / max(wall, 1e-9)
    res: dict[str, Any] = {"engine": engine, "process_seconds": wall,
                           "peak_rss_kib": int(usage.ru_maxrss), "polled_rss_kib": polled,
                           "worker_cpu_seconds": own_cpu, "other_cores_busy": others}
    if proc.returncode == 0 and out.exists():
        res.update(json.loads(out.read_text(encoding="utf-8")))
        res["ok"] = True
    else:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
        res.update(ok=False, failure=killed or f"exit code {proc.returncode}", log_tail=tail)
    _rmtree(workdir)
    return res


def verify(csv: Path, tmp: Path) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="verify-", dir=tmp))
    out = workdir / "result.json"
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "verify",
                           "--csv", str(csv), "--out", str(out), "--workdir", str(workdir)],
                          capture_output=True, text=True, cwd=str(tmp))
    res = (json.loads(out.read_text(encoding="utf-8")) if proc.returncode == 0 and out.exists()
           else {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]})
    _rmtree(workdir)
    return res


def _verify_text(res: dict[str, Any]) -> str:
    if "error" in res:
        return f"failed: {res['error']}"
    bad = {k: v for k, v in res["differences"].items() if v}
    if not bad:
        return (f"identical ({res['rows']:,} kept rows: every value of "
                f"{len(VALUE_COLUMNS)} columns, the flags, and every rejected row's reason and "
                "detail)")
    return "DIFFERENT: " + ", ".join(f"{k}: {'mismatch' if v < 0 else f'{v:,} rows'}"
                                    for k, v in bad.items())


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def generate(variant: str, n: int, seed: int, base: Path, keep: bool) -> tuple[Path, float, int]:
    from crmlens.datasets.generator import generate_dataset

    out = base / f"{variant}-{n}-seed{seed}"
    truth = out / "truth.json"
    if keep and truth.exists() and (out / "transactions.csv").exists():
        return (out / "transactions.csv", 0.0,
                _truth_rows(json.loads(truth.read_text(encoding="utf-8"))))
    t = time.perf_counter()
    ds = generate_dataset(out, n_transactions=n, fmt="csv", messy=(variant == "messy"),
                          seed=seed)
    return ds.transactions, time.perf_counter() - t, ds.n_transactions


def _truth_rows(truth: dict[str, Any]) -> int:
    return int(truth.get("sizes", {}).get("n_transaction_rows", -1))


# --- comparison and reporting ----------------------------------------------------------------


def compare_counts(a: dict[str, Any], b: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Row counts of crmlens (a) and pandas (b): loaded, rejected by reason, flags."""
    rows = []
    rows.append(("rows loaded", a["rows_loaded"], b["rows_loaded"]))
    rows.append(("rows rejected", a["rows_rejected"], b["rows_rejected"]))
    for kind, key in (("rejected", "rejected_by_reason"), ("flag", "flags_by_reason")):
        names = sorted(set(a[key]) | set(b[key]), key=lambda k: -max(a[key].get(k, 0),
                                                                    b[key].get(k, 0)))
        rows += [(f"{kind}: {k}", a[key].get(k, 0), b[key].get(k, 0)) for k in names]
    worst = max((abs(x - y) for _, x, y in rows), default=0)
    limit = tolerance * max(a["rows_read"], 1)
    status = "exact" if worst == 0 else (f"within {tolerance:.1%}" if worst <= limit
                                         else "DIFFERENT")
    return {"rows": rows, "max_abs_diff": worst, "status": status}


def _median(results: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in results if r.get("ok")]
    return statistics.median(vals) if vals else None


def _mib(kib: float | None) -> str:
    return "—" if kib is None else f"{kib / 1024:,.0f} MiB"


def _secs(s: float | None) -> str:
    return "—" if s is None else f"{s:,.1f} s"


def summarise(case: dict[str, Any], tolerance: float) -> dict[str, Any]:
    cr = [r for r in case["runs"] if r["engine"] == "crmlens"]
    pd_ = [r for r in case["runs"] if r["engine"] == "pandas"]
    s: dict[str, Any] = {
        "crmlens_s": _median(cr, "seconds"), "crmlens_rss": _median(cr, "peak_rss_kib"),
        "pandas_s": _median(pd_, "seconds"), "pandas_rss": _median(pd_, "peak_rss_kib"),
        "crmlens_all_s": [round(r["seconds"], 2) for r in cr if r.get("ok")],
        "pandas_all_s": [round(r["seconds"], 2) for r in pd_ if r.get("ok")],
        "crmlens_fail": next((r["failure"] for r in cr if not r.get("ok")), None),
        "pandas_fail": next((r["failure"] for r in pd_ if not r.get("ok")), None),
    }
    ok_c = next((r for r in cr if r.get("ok")), None)
    ok_p = next((r for r in pd_ if r.get("ok")), None)
    s["crmlens_result"], s["pandas_result"] = ok_c, ok_p
    s["speed_ratio"] = (s["pandas_s"] / s["crmlens_s"]
                        if s["pandas_s"] and s["crmlens_s"] else None)
    s["memory_ratio"] = (s["pandas_rss"] / s["crmlens_rss"]
                         if s["pandas_rss"] and s["crmlens_rss"] else None)
    s["counts"] = compare_counts(ok_c, ok_p, tolerance) if ok_c and ok_p else None
    return s


def table(cases: list[dict[str, Any]]) -> str:
    head = ("| data | rows | CSV | crmlens time | crmlens peak RSS | pandas time | "
            "pandas peak RSS | speed-up (pandas ÷ crmlens time) | "
            "memory (pandas ÷ crmlens RSS) | loaded / rejected | counts agree |")
    lines = [head, "|" + "---|" * 11]
    for c in cases:
        s = c["summary"]
        res = s["crmlens_result"] or s["pandas_result"]
        loaded = f"{res['rows_loaded']:,} / {res['rows_rejected']:,}" if res else "—"
        p_time = _secs(s["pandas_s"]) if s["pandas_s"] is not None else s["pandas_fail"] or "—"
        c_time = _secs(s["crmlens_s"]) if s["crmlens_s"] is not None else s["crmlens_fail"] or "—"
        speed = f"**{s['speed_ratio']:.2f}×**" if s["speed_ratio"] else "—"
        if s["speed_ratio"] is None and s["pandas_fail"] and s["crmlens_s"]:
            speed = "pandas did not finish"
        mem = f"{s['memory_ratio']:.2f}×" if s["memory_ratio"] else "—"
        lines.append(
            f"| {c['variant']} | {c['rows']:,} | {c['csv_bytes'] / 2**20:,.0f} MiB | {c_time} | "
            f"{_mib(s['crmlens_rss'])} | {p_time} | {_mib(s['pandas_rss'])} | {speed} | {mem} | "
            f"{loaded} | {s['counts']['status'] if s['counts'] else '—'} |")
    return "\n".join(lines)


def counts_detail(cases: list[dict[str, Any]]) -> str:
    out = []
    for c in cases:
        cmp_ = c["summary"]["counts"]
        if not cmp_:
            continue
        out.append(f"**{c['variant']}, {c['rows']:,} rows** ({cmp_['status']}; largest "
                   f"difference {cmp_['max_abs_diff']:,} rows)\n")
        out.append("| count | crmlens | pandas |\n|---|---:|---:|")
        out += [f"| {name} | {a:,} | {b:,} |" for name, a, b in cmp_["rows"]]
        out.append("")
    return "\n".join(out)


_LABELS = (
    ("CREATE OR REPLACE TEMP TABLE _crm_stage_tx", "stage: parse every value, classify lines, "
     "reject reasons (one pass over the raw table)"),
    ("CREATE TABLE raw_", "read_csv into the raw table"),
    ("INSERT INTO transactions", "INSERT INTO transactions (signs, flags, order ids)"),
    ("COMMIT", "COMMIT (the workspace file on disk)"),
    ("INSERT INTO _crm_dups", "duplicate rows (hash, then exact window on candidates)"),
    ("CREATE OR REPLACE TEMP TABLE _crm_order_ids", "distinct order ids (cancellation test)"),
    ("CREATE OR REPLACE TEMP TABLE _crm_cancellations", "cancellation ids"),
    ("CREATE OR REPLACE TEMP TABLE _crm_return_match", "ASOF join: returns to purchases"),
    ("UPDATE transactions t SET return_of_order_id", "UPDATE transactions with matched returns"),
    ("INSERT INTO rejected", "INSERT INTO rejected (original values as JSON)"),
    ("CREATE OR REPLACE TEMP TABLE _crm_line_types", "line types per distinct product"),
    ("SELECT quantile_cont", "outlier fences (quantiles)"),
    ("SELECT count(*) FILTER (WHERE regexp_matches(o", "cancellation id style"),
    ("SELECT count(*) FILTER (WHERE a > 12", "day-first detection"),
    ("UPDATE raw_", "number the raw rows"),
    ("SELECT * EXCLUDE (_row) FROM raw_", "sample for role detection"),
)


def _label(statement: str) -> str:
    for prefix, label in _LABELS:
        if statement.startswith(prefix):
            return label
    if statement.startswith("[python]"):
        return statement
    if statement.startswith("SELECT count(*) FROM raw_") and "starts_with" in statement:
        return "any order id starting with C?"
    return "`" + statement[:60].replace("|", "\\|") + ("…" if len(statement) > 60 else "") + "`"


def profile_detail(case: dict[str, Any], top: int = 10) -> str:
    runs = [r for r in case["runs"] if r["engine"] == "crmlens" and r.get("profile")]
    if not runs:
        return ""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    run = ordered[(len(runs) - 1) // 2]
    which = ("the only run" if len(runs) == 1 else "the median run" if len(runs) % 2
             else "the faster of the two middle runs")
    grouped: dict[str, float] = {}
    background: dict[str, float] = {}
    for rec in run["profile"]:
        into = background if rec.get("background") else grouped
        label = _label(rec["statement"])
        into[label] = into.get(label, 0.0) + rec["seconds"]
    total = run["seconds"]
    rest = total - sum(grouped.values())
    items = sorted(grouped.items(), key=lambda kv: -kv[1])
    shown, other = items[:top], sum(v for _, v in items[top:]) + max(rest, 0.0)
    lines = [f"crmlens, {case['variant']}, {case['rows']:,} rows, {which} ({total:.1f} s; "
             "statements timed from Python around each `execute`):\n",
             "| step | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {label} | {sec:.1f} | {sec / total:.0%} |" for label, sec in shown]
    lines.append(f"| everything else (other statements, Python) | {other:.1f} | "
                 f"{other / total:.0%} |")
    lines += [f"| *in a background thread, overlapping the steps above:* {label} | {sec:.1f} | "
              f"— |" for label, sec in sorted(background.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    import duckdb
    import numpy
    import pandas
    import pyarrow

    import crmlens

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    os_name = platform.system()
    try:
        rel = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines()
                   if "=" in line)
        os_name = rel.get("PRETTY_NAME", os_name).strip('"')
    except OSError:
        pass
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src"))
    return {
        "cpu": cpu, "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": mem_kib / 2**20, "os": f"{os_name} (kernel {platform.release()})",
        "python": platform.python_version(), "duckdb": duckdb.__version__,
        "pandas": pandas.__version__, "pyarrow": pyarrow.__version__, "numpy": numpy.__version__,
        "crmlens": crmlens.__version__, "commit": commit, "src_dirty": dirty,
        "loadavg": os.getloadavg(), "busy_at_start": _busy_now(),
    }


def source_digest() -> str:
    """A hash of crmlens's source files, to notice edits made while the benchmark runs."""
    import hashlib

    import crmlens

    digest = hashlib.sha256()
    root = Path(crmlens.__file__).resolve().parent
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".toml") and path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def check_pandas_constants() -> list[str]:
    """The pandas baseline copies crmlens's constants; report any drift."""
    sys.path.insert(0, str(BENCH_DIR))
    import _pandas_clean as pc

    from crmlens.clean import sqlfuncs

    problems = []
    if tuple(pc.NULL_TOKENS) != tuple(sqlfuncs.NULL_TOKENS):
        problems.append("NULL_TOKENS")
    if list(pc.YEAR_FIRST) != list(sqlfuncs._YEAR_FIRST):
        problems.append("year-first date formats")
    for dayfirst in (True, False):
        if pc.date_formats(dayfirst) != sqlfuncs.date_formats(dayfirst):
            problems.append(f"date formats (dayfirst={dayfirst})")
    return problems


def settings_note() -> str:
    from crmlens.workspace.settings import load_settings

    engine = load_settings(Path(tempfile.gettempdir()) / "no-such-crmlens.toml").get("engine", {})
    threads = engine.get("threads", 0) or "all cores"
    return f"memory_limit {engine.get('memory_limit', '?')}, threads {threads}"


def render_section(cases: list[dict[str, Any]], info: dict[str, Any], args: argparse.Namespace,
                   command: str, started: datetime, warnings: list[str]) -> str:
    lines = [SECTION, ""]
    src = f"commit `{info['commit']}`" + (" with uncommitted changes under src/"
                                         if info["src_dirty"] else "")
    lines.append(f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}` (crmlens "
                 f"{info['crmlens']}, {src}).")
    lines.append("")
    cores = info["cores"] if info["usable_cores"] in (None, info["cores"]) else \
        f"{info['cores']} ({info['usable_cores']} usable)"
    lines.append(f"Machine: {info['cpu']}, {cores} cores, {info['ram_gib']:.1f} GiB RAM, "
                 f"{info['os']}; Python {info['python']}, duckdb {info['duckdb']}, pandas "
                 f"{info['pandas']}, pyarrow {info['pyarrow']}, numpy {info['numpy']}. crmlens "
                 f"engine settings: {settings_note()} (the defaults).")
    lines.append("")
    rep = f"median of {args.repeat} runs each" if args.repeat > 1 else "one run each"
    lines.append(f"Times are wall seconds of the ingest call, peak RSS is the worker process's "
                 f"`ru_maxrss` ({rep}, every run in a fresh process).")
    lines.append("")
    lines.append(table(cases))
    lines.append("")
    busy = [r["other_cores_busy"] for c in cases for r in c["runs"] if "other_cores_busy" in r]
    if busy and max(busy) > 0.25:
        warnings = warnings + [f"other processes used up to {max(busy):.2f} cores during a "
                               "measured run; the affected times are slower than the machine "
                               "can do"]
    if busy:
        lines.append(f"CPU used by other processes while a run was measured: median "
                     f"{statistics.median(busy):.2f} cores, at most {max(busy):.2f} (of "
                     f"{info['usable_cores'] or info['cores']}); each run first waited up to "
                     f"{args.wait_idle:.0f} s for the machine to be idle.")
        lines.append("")
    if args.repeat > 1:
        lines.append("Every run, in seconds: " + "; ".join(
            f"{c['variant']} {c['rows']:,}: crmlens "
            + ", ".join(f"{x:.1f}" for x in c["summary"]["crmlens_all_s"]) + ", pandas "
            + ", ".join(f"{x:.1f}" for x in c["summary"]["pandas_all_s"]) for c in cases) + ".")
        lines.append("")
    lines += _target_lines(cases)
    if warnings:
        lines += [""] + [f"**Warning:** {w}" for w in warnings]
    checked = [c for c in cases if c.get("verify")]
    if checked:
        lines.append("")
        lines += [f"Row-by-row check, {c['variant']} {c['rows']:,} rows: "
                  f"{_verify_text(c['verify'])}." for c in checked]
    lines += ["", "### Row counts, crmlens vs pandas", "", counts_detail(cases)]
    failures = [(c, r) for c in cases for r in c["runs"] if not r.get("ok")]
    if failures:
        lines += ["### Runs that did not finish", ""]
        lines += [f"- {r['engine']}, {c['variant']}, {c['rows']:,} rows: {r['failure']}"
                  for c, r in failures]
        lines.append("")
    profiled = [c for c in cases if any(r.get("profile") for r in c["runs"])]
    if profiled:
        lines += ["### Where crmlens spends its time", ""]
        biggest = {}
        for c in profiled:
            if c["rows"] >= biggest.get(c["variant"], {"rows": -1})["rows"]:
                biggest[c["variant"]] = c
        for c in biggest.values():
            lines += [profile_detail(c), ""]
    lines += ["### How it is measured", ""]
    largest = {c["variant"]: c["rows"] for c in sorted(cases, key=lambda c: c["rows"])}
    db_sizes = [f"{c['variant']} {c['rows']:,} rows: "
                f"{c['summary']['crmlens_result']['db_bytes'] / 2**20:,.0f} MiB"
                for c in cases
                if c["summary"]["crmlens_result"] and c["rows"] == largest[c["variant"]]]
    db_note = f"workspace file afterwards: {', '.join(db_sizes)}" if db_sizes else ""
    gen = ", ".join(f"{c['variant']} {c['rows']:,} rows in {c['generate_seconds']:.0f} s"
                    for c in cases if c["generate_seconds"])
    lines += [
        f"- Data: `crmlens.datasets.generator.generate_dataset(tmp, n_transactions=N, "
        f"fmt=\"csv\", messy=..., seed={args.seed})` in a temporary folder (generation is not "
        f"timed{'; it took ' + gen if gen else ''}). *messy*: mixed date formats (ISO, "
        "`2011/12/9 12:50`, day-first `9/12/2011`, `2011年12月9日`, epoch seconds), money as "
        "`¥1,234.50`, `$`, `1.234,50 €` and full-width digits, untidy names, duplicates, "
        "anonymous orders, postage/discount lines, cancellations, a few bad dates and "
        "quantities. *clean*: the same kind of export with one format per column and none of "
        "those defects.",
        "- crmlens: `Workspace(<fresh temp dir>).ingest(\"transactions\", csv)`: sha256 "
        "fingerprint, sniffing, `read_csv` into the raw table, cleaning, rejected rows with "
        "their original values, return matching, and the commit to the workspace file on disk"
        + (f" ({db_note})" if db_note else "") + ".",
        "- pandas: `bench/_pandas_clean.py`: `pd.read_csv(csv, dtype=str, "
        "keep_default_na=False, na_values=[\"\"])` and the same rules in vectorised pandas "
        "(Arrow-backed `.str` methods, `pd.to_datetime(format=...)` per format on the rows "
        "still unparsed, `duplicated()`, a line-type table per distinct product, "
        "`merge_asof` for returns). It keeps the clean and rejected frames in memory and writes "
        "nothing to disk; flags are boolean columns instead of a list column. The row-by-row "
        "check above runs both once more, untimed, and compares their outputs.",
        "- The pandas code avoids two pandas 3 slow paths a first draft hits: a regex with "
        "`\\s` or `\\d` makes pandas run it element by element in Python instead of in Arrow "
        "(ASCII classes are spelled out, as RE2 in crmlens reads them anyway), and "
        "`Series.isin` on Arrow strings with a large lookup set is replaced by an `Index` "
        "lookup. With those slow paths the pandas side took 16.7 s instead of 8.9 s on a 1M-row "
        "messy file while it was being written.",
        f"- A pandas run is stopped after {args.pandas_timeout:.0f} s or above "
        f"{args.pandas_max_rss_gib:.0f} GiB RSS and reported as such.",
    ]
    return "\n".join(lines).rstrip() + "\n"


def _target_lines(cases: list[dict[str, Any]]) -> list[str]:
    messy = [c for c in cases if c["variant"] == "messy"]
    if not messy:
        return []
    c = max(messy, key=lambda c: c["rows"])
    s = c["summary"]
    out = [f"Targets, checked on the largest messy set ({c['rows']:,} rows):"]
    if s["crmlens_rss"] is not None:
        ok = s["crmlens_rss"] * 1024 < TARGET_MAX_BYTES
        out.append(f"- peak memory under 2 GB: **{'met' if ok else 'not met'}** "
                   f"({s['crmlens_rss'] * 1024 / 1e9:.2f} GB = {_mib(s['crmlens_rss'])})")
    if s["speed_ratio"] is not None:
        ok = s["speed_ratio"] >= TARGET_SPEEDUP
        out.append(f"- at least {TARGET_SPEEDUP:.0f}× faster than pandas: "
                   f"**{'met' if ok else 'not met'}** ({s['speed_ratio']:.2f}×)")
    elif s["pandas_fail"]:
        out.append(f"- at least {TARGET_SPEEDUP:.0f}× faster than pandas: pandas did not "
                   f"finish ({s['pandas_fail']})")
    return out


def write_results(section: str, path: Path = RESULTS, *, header: str = SECTION) -> None:
    """Replace one script's section of RESULTS.md (the one titled ``header``; by default this
    script's), or add it, leaving the others alone. The other bench scripts call this too."""
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_HEADER
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == header), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        after = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + after if after else "")
    path.write_text(new, encoding="utf-8")


def parse_sizes(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1e6,1e7",
                   help="rows of the generated CSVs, comma separated (default 1e6,1e7)")
    p.add_argument("--quick", action="store_true",
                   help="100k rows only, a smoke test; does not write RESULTS.md unless --write")
    p.add_argument("--clean-data", action="store_true",
                   help="also run on clean (homogeneous) exports, as extra rows")
    p.add_argument("--engines", default="crmlens,pandas",
                   help="which sides to run (default crmlens,pandas)")
    p.add_argument("--repeat", type=int, default=1, help="runs per engine and data set; the "
                   "median is reported (default 1)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--profile", action="store_true",
                   help="time each SQL statement of crmlens and report where the time goes")
    p.add_argument("--pandas-timeout", type=float, default=900.0,
                   help="seconds before a pandas run is stopped (default 900)")
    p.add_argument("--pandas-max-rss-gib", type=float, default=20.0,
                   help="RSS above which a pandas run is stopped (default 20 GiB)")
    p.add_argument("--tolerance", type=float, default=0.001,
                   help="allowed difference of row counts, share of rows read (default 0.001)")
    p.add_argument("--wait-idle", type=float, default=300.0,
                   help="before each run, wait up to this many seconds for other processes to "
                   "use under 0.3 cores (default 300; 0 = do not wait)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the row-by-row check of both outputs on the smallest data set")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="keep generated data here and reuse it (default: a temp dir, deleted)")
    write = p.add_mutually_exclusive_group()
    write.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    write.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    p.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, default=None,
                   help="also write every run's raw measurements to this JSON file")
    # Internal: one measured run in this process.
    p.add_argument("--worker", choices=("crmlens", "pandas", "verify"), help=argparse.SUPPRESS)
    p.add_argument("--csv", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return run_worker(args)

    sizes = [100_000] if args.quick else parse_sizes(args.sizes)
    variants = ["messy", "clean"] if args.clean_data else ["messy"]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    command = " ".join([".venv/bin/python", "bench/ingest.py", *map(shlex.quote,
                                                                     sys.argv[1:])])
    started = datetime.now(timezone.utc)
    info = machine_info()
    warnings = []
    drift = check_pandas_constants()
    if drift:
        warnings.append("the pandas baseline's copies of crmlens constants differ: "
                        + ", ".join(drift) + " (update bench/_pandas_clean.py)")
    if info["busy_at_start"] > 0.3:
        print(f"note: {info['busy_at_start']:.1f} cores busy at the start; each run waits up to "
              f"{args.wait_idle:.0f} s for the machine to be idle", file=sys.stderr)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB; duckdb "
          f"{info['duckdb']}, pandas {info['pandas']}; {info['busy_at_start']:.2f} cores busy", flush=True)

    digest = source_digest()
    cases = []
    tmp_root = Path(tempfile.mkdtemp(prefix="crmlens-bench-"))
    data_root = args.data_dir or tmp_root
    data_root.mkdir(parents=True, exist_ok=True)
    max_rss = int(args.pandas_max_rss_gib * 2**20)
    try:
        for variant in variants:
            for n in sizes:
                print(f"\n{variant}, {n:,} rows: generating ...", end=" ", flush=True)
                csv, gen_s, rows = generate(variant, n, args.seed, data_root,
                                            keep=args.data_dir is not None)
                print(f"{rows:,} rows, {csv.stat().st_size / 2**20:,.0f} MiB "
                      f"({gen_s:.0f} s)", flush=True)
                case = {"variant": variant, "requested": n, "rows": rows,
                        "csv_bytes": csv.stat().st_size, "generate_seconds": gen_s, "runs": []}
                for rep in range(args.repeat):
                    for engine in engines:
                        if args.wait_idle:
                            wait_for_idle(args.wait_idle)
                        timeout = args.pandas_timeout if engine == "pandas" else 4 * 3600
                        limit = max_rss if engine == "pandas" else 10**12
                        r = measure(engine, csv, tmp_root, timeout=timeout, max_rss_kib=limit,
                                    profile=args.profile and engine == "crmlens")
                        r["repeat"] = rep
                        case["runs"].append(r)
                        what = (f"{r['seconds']:.1f} s, peak {r['peak_rss_kib'] / 1024:,.0f} MiB, "
                                f"other processes {r['other_cores_busy']:.2f} cores"
                                if r.get("ok") else f"FAILED: {r['failure']}")
                        print(f"  {engine:8s} run {rep + 1}: {what}", flush=True)
                        if not r.get("ok") and r.get("log_tail"):
                            print("    " + "\n    ".join(r["log_tail"]), flush=True)
                case["summary"] = summarise(case, args.tolerance)
                if not args.no_verify and n == min(sizes):
                    print("  row-by-row check ...", end=" ", flush=True)
                    case["verify"] = verify(csv, tmp_root)
                    print(_verify_text(case["verify"]), flush=True)
                cases.append(case)
                if args.data_dir is None:
                    _rmtree(csv.parent)
    finally:
        _rmtree(tmp_root)

    if source_digest() != digest:
        warnings.append("crmlens's source files changed while the benchmark ran: the runs may "
                        "not all have measured the same code")
        print(f"warning: {warnings[-1]}", file=sys.stderr)
    print()
    print(table(cases))
    for line in _target_lines(cases):
        print(line)
    print()
    print(counts_detail(cases))
    for c in cases:
        detail = profile_detail(c)
        if detail:
            print(detail + "\n")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "command": command,
                                         "started": started.isoformat(), "cases": cases},
                                        indent=1, default=str), encoding="utf-8")
    if (not args.quick or args.write) and not args.no_write:
        write_results(render_section(cases, info, args, command, started, warnings),
                      args.results)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
