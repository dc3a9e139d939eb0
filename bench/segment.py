"""Customer features and automatic k-means: crmlens against pandas, polars and DuckDB.

For each size the script writes synthetic clean transactions as Parquet in a temporary folder
(``bench/_feature_data.py``: ``generate_dataset`` plus returns, anonymous orders and postage
lines; generation is not timed), then runs, each in a fresh subprocess, on the same file:

a. pandas: ``read_parquet`` of the four columns + filter + ``groupby().agg`` (RFM-style:
   last purchase, distinct orders, sum of amount per customer);
b. polars: the same as a lazy ``scan_parquet(...).filter().group_by().agg().collect()``;
b2. polars computing exactly crmlens's RFM-core definitions (d): purchase orders only
   (product lines, not returns, quantity > 0), net merchandise spend, last purchase —
   the like-for-like rival of d;
c. DuckDB: the same as one plain SQL query (``count(DISTINCT order_id)``), fetched as Arrow;
d. crmlens RFM core: ``compute_features(con, source=parquet, rfm_only=True)`` (recency,
   frequency of purchase orders, net merchandise spend);
e. crmlens full feature step: ``compute_features(con, source=parquet)``, every feature of
   ``docs/features.md`` (25 fixed columns plus the share columns).

Every worker times its own call (reading the file included) and the parent records the peak
RSS of the process (``ru_maxrss`` from ``wait4``). If ``bench/_kauto.py`` exists, its
``measure_kauto(n_customers, seed=0)`` runs in its own subprocess too (the ``--k auto``
k-means of issue 3, for 1M customers by default) and its figures join the results.

    .venv/bin/python bench/segment.py                    # 10M rows (+ k auto), writes RESULTS.md
    .venv/bin/python bench/segment.py --sizes 1e7,5e7    # also 50M rows
    .venv/bin/python bench/segment.py --quick            # 1M rows, RESULTS.md untouched

Nothing else should run on the machine while it measures; the CPU used by other processes
during each run is recorded (as bench/ingest.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ingest as _ingest  # noqa: E402  (machine info, CPU load sampling)

RESULTS = BENCH_DIR / "RESULTS.md"
SECTION = "## Customer features and k auto (bench/segment.py)"
POLARS_TARGET_S = 1.9  # the polars figure at 10M rows on 2 cores
MAX_RSS_TARGET = 0.8e9  # "within 0.8 GB at 10M"
ENGINES = ("pandas", "polars", "polars_same", "duckdb", "crmlens_rfm", "crmlens_full")
LABELS = {
    "pandas": "a. pandas read_parquet + groupby (RFM)",
    "polars": "b. polars lazy scan_parquet (RFM)",
    "polars_same": "b2. polars lazy, crmlens's RFM-core definitions",
    "duckdb": "c. DuckDB plain SQL (RFM)",
    "crmlens_rfm": "d. crmlens RFM core features",
    "crmlens_full": "e. crmlens full feature step",
}


# --- workers (each in its own process) --------------------------------------------------------


def _rfm_pandas(path: str, as_of: date) -> dict[str, Any]:
    import pandas as pd

    df = pd.read_parquet(path, columns=["customer_id", "order_id", "ts", "amount"])
    df = df[df["customer_id"].notna() & (df["ts"] < pd.Timestamp(as_of))]
    out = df.groupby("customer_id").agg(last=("ts", "max"), frequency=("order_id", "nunique"),
                                        monetary=("amount", "sum"))
    return {"customers": len(out), "monetary_sum": float(out["monetary"].sum())}


def _rfm_polars(path: str, as_of: date) -> dict[str, Any]:
    import polars as pl

    out = (pl.scan_parquet(path)
           .filter(pl.col("customer_id").is_not_null() & (pl.col("ts") < pl.lit(as_of)))
           .group_by("customer_id")
           .agg(pl.col("ts").max().alias("last"), pl.col("order_id").n_unique().alias("frequency"),
                pl.col("amount").sum().alias("monetary"))
           .collect())
    return {"customers": out.height, "monetary_sum": float(out["monetary"].sum())}


def _rfm_polars_same(path: str, as_of: date) -> dict[str, Any]:
    import polars as pl

    # crmlens's definitions (docs/features.md): frequency counts purchase orders, monetary
    # is the net of product lines (returns included), recency from the last purchase.
    purchase = ((~pl.col("is_return")) & (pl.col("line_type") == "product")
                & (pl.col("quantity") > 0))
    orders = (pl.scan_parquet(path)
              .filter(pl.col("customer_id").is_not_null() & (pl.col("ts") < pl.lit(as_of)))
              .group_by(["customer_id", "order_id"])
              .agg(pl.col("ts").filter(purchase).min().alias("ts"),
                   pl.col("amount").filter(pl.col("line_type") == "product").sum().alias("net")))
    out = (orders.group_by("customer_id")
           .agg(pl.col("ts").max().alias("last"), pl.col("ts").count().alias("frequency"),
                pl.col("net").sum().alias("monetary"))
           .filter(pl.col("frequency") > 0)
           .collect())
    return {"customers": out.height, "monetary_sum": float(out["monetary"].sum())}


def _connect():
    import duckdb

    from crmlens.workspace.settings import load_settings

    # The engine settings a workspace would use (memory limit, threads).
    engine = load_settings(Path(tempfile.gettempdir()) / "no-such-crmlens.toml").get("engine", {})
    return duckdb.connect(config={"memory_limit": str(engine.get("memory_limit", "1500MB"))})


def _rfm_duckdb(path: str, as_of: date) -> dict[str, Any]:
    con = _connect()
    out = con.sql(
        f"SELECT customer_id, max(ts) AS last, count(DISTINCT order_id) AS frequency, "
        f"sum(amount) AS monetary FROM read_parquet('{path}') "
        f"WHERE customer_id IS NOT NULL AND ts < DATE '{as_of}' GROUP BY customer_id"
    ).to_arrow_table()  # a relation: no extra copy
    return {"customers": out.num_rows,
            "monetary_sum": float(sum(v for v in out.column("monetary").to_pylist()))}


def _crmlens(path: str, as_of: date, rfm_only: bool) -> dict[str, Any]:
    from crmlens.features import compute_features

    con = _connect()
    res = compute_features(con, source=path, as_of=as_of, rfm_only=rfm_only)
    return {"customers": res.n_customers, "features": len(res.columns),
            "monetary_sum": con.execute(f"SELECT sum(monetary) FROM {res.table}")
            .fetchall()[0][0]}


def _measure_kauto(n_customers: int) -> dict[str, Any]:
    import _kauto

    return _kauto.measure_kauto(n_customers, seed=0)


def _vmhwm_kib() -> int | None:
    """Peak RSS of this process image. ``ru_maxrss`` is not used: Linux carries the parent's
    high-water mark over fork and exec, so a child of a big parent would report the parent's."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_worker(args: argparse.Namespace) -> int:
    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    # Imports are not part of the measured time.
    if args.worker == "pandas":
        import pandas  # noqa: F401
    elif args.worker.startswith("polars"):
        import polars  # noqa: F401
    elif args.worker.startswith("crmlens"):
        import crmlens.features  # noqa: F401
    elif args.worker == "kauto":
        import _kauto  # noqa: F401
    import duckdb  # noqa: F401

    t = time.perf_counter()
    if args.worker == "pandas":
        res = _rfm_pandas(args.parquet, as_of)
    elif args.worker == "polars":
        res = _rfm_polars(args.parquet, as_of)
    elif args.worker == "polars_same":
        res = _rfm_polars_same(args.parquet, as_of)
    elif args.worker == "duckdb":
        res = _rfm_duckdb(args.parquet, as_of)
    elif args.worker in ("crmlens_rfm", "crmlens_full"):
        res = _crmlens(args.parquet, as_of, rfm_only=args.worker == "crmlens_rfm")
    elif args.worker == "kauto":
        res = _measure_kauto(args.kauto_customers)
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    res.setdefault("seconds", time.perf_counter() - t)
    res["vmhwm_kib"] = _vmhwm_kib()
    Path(args.out).write_text(json.dumps(res, default=str), encoding="utf-8")
    return 0


# --- the parent -------------------------------------------------------------------------------


def measure(worker: str, tmp: Path, *, parquet: Path | None = None, as_of: date | None = None,
            kauto_customers: int = 0, timeout: float = 900) -> dict[str, Any]:
    """Run one worker in a fresh process: its own timing, and the process's peak RSS."""
    out = tmp / f"{worker}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--out", str(out),
           "--kauto-customers", str(kauto_customers)]
    if parquet is not None:
        cmd += ["--parquet", str(parquet), "--as-of", as_of.isoformat()]
    started, busy0 = time.perf_counter(), _ingest._cpu_busy_seconds()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(tmp))
    killed = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > timeout:
            killed = f"timed out after {timeout:.0f} s"
            proc.kill()
        time.sleep(0.05)
    wall = time.perf_counter() - started
    own_cpu = usage.ru_utime + usage.ru_stime
    others = max(_ingest._cpu_busy_seconds() - busy0 - own_cpu, 0.0) / max(wall, 1e-9)
    res: dict[str, Any] = {"worker": worker, "process_seconds": wall,
                           "peak_rss_kib": int(usage.ru_maxrss),
                           "ru_maxrss_kib": int(usage.ru_maxrss),
                           "other_cores_busy": others}
    code = os.waitstatus_to_exitcode(status)
    if code == 0 and out.exists():
        res.update(json.loads(out.read_text(encoding="utf-8")))
        res["ok"] = True
        if res.get("vmhwm_kib"):
            res["peak_rss_kib"] = res["vmhwm_kib"]
    else:
        tail = (proc.stdout.read() if proc.stdout else b"").decode(errors="replace")
        res.update(ok=False, failure=killed or f"exit code {code}",
                   log_tail=tail.strip().splitlines()[-8:])
    return res


def _as_of(parquet: Path) -> date:
    import duckdb

    last = duckdb.sql(f"SELECT max(ts) FROM read_parquet('{parquet}')").fetchall()[0][0]
    return last.date() + timedelta(days=1)


def _mib(kib: float | None) -> str:
    return "—" if kib is None else f"{kib / 1024:,.0f} MiB"


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get("ok")]
    return statistics.median(vals) if vals else None


def render(cases: list[dict[str, Any]], kauto: dict[str, Any] | None, info: dict[str, Any],
           args: argparse.Namespace, command: str, started: datetime) -> str:
    lines = [SECTION, ""]
    src = f"commit `{info['commit']}`" + (" with uncommitted changes under src/"
                                         if info["src_dirty"] else "")
    lines += [f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}` (crmlens "
              f"{info['crmlens']}, {src}).", ""]
    import polars

    lines += [f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB RAM, "
              f"{info['os']}; Python {info['python']}, duckdb {info['duckdb']}, pandas "
              f"{info['pandas']}, polars {polars.__version__}, pyarrow {info['pyarrow']}. DuckDB "
              f"sides use the workspace default memory_limit ({_ingest.settings_note()}).", ""]
    rep = f"median of {args.repeat} runs" if args.repeat > 1 else "one run"
    lines += [f"Seconds: wall time of the computation inside the worker, reading the Parquet "
              f"file included, imports not ({rep}, each in a fresh process); peak RSS: the "
              "worker's `VmHWM` from /proc (its `ru_maxrss` would include the parent's high-"
              "water mark, which Linux carries over fork and exec). a–c compute the same "
              "RFM-style aggregate (per identified customer "
              "before the as-of date: last purchase, distinct orders, sum of amount); d is "
              "crmlens's RFM core (purchase orders only, net merchandise spend), e every "
              "feature of `docs/features.md`.", ""]
    for case in cases:
        lines += [f"**{case['rows']:,} rows** ({case['bytes'] / 2**20:,.0f} MiB Parquet, "
                  f"{case['customers']:,} customers with features, as of {case['as_of']})", ""]
        lines += ["| step | seconds | peak RSS | ÷ polars time | customers |",
                  "|---|---:|---:|---:|---:|"]
        pol = case["summary"].get("polars", {}).get("seconds")
        for eng in ENGINES:
            s = case["summary"].get(eng)
            if not s:
                continue
            if s["seconds"] is None:
                lines.append(f"| {LABELS[eng]} | {s['failure']} | — | — | — |")
                continue
            ratio = f"{s['seconds'] / pol:.2f}" if pol else "—"
            lines.append(f"| {LABELS[eng]} | {s['seconds']:.2f} | {_mib(s['rss'])} | {ratio} "
                         f"| {s['customers']:,} |")
        lines.append("")
        every = "; ".join(f"{eng} " + ", ".join(f"{x:.2f}" for x in s["all"])
                          for eng, s in case["summary"].items() if s["all"])
        if args.repeat > 1:
            lines += [f"Every run, seconds: {every}.", ""]
    busy = [r["other_cores_busy"] for c in cases for r in c["runs"]]
    busy += [kauto["other_cores_busy"]] if kauto else []
    if busy:
        lines += [f"CPU used by other processes while a run was measured: median "
                  f"{statistics.median(busy):.2f} cores, at most {max(busy):.2f} (of "
                  f"{info['cores']}); load average at the start "
                  f"{', '.join(f'{x:.2f}' for x in info['loadavg'])}; each run first waited up "
                  f"to {args.wait_idle:.0f} s for the machine to be idle.", ""]
        if max(busy) > 0.25:
            lines += ["**Warning:** other processes used up to "
                      f"{max(busy):.2f} cores during a measured run; those times are slower "
                      "than the machine can do.", ""]
    lines += ["Targets (issue 3 §1): at least as fast as polars at 10M and 50M rows, in the same "
              "run, within 0.8 GB at 10M. b is the issue's reference query (simpler "
              "definitions than d); b2 computes d's exact definitions in polars:"]
    for case in cases:
        s = case["summary"]
        big = case["rows"] >= 4e7
        for eng in ("crmlens_rfm", "crmlens_full"):
            if eng not in s or s[eng]["seconds"] is None:
                continue
            for rival in ("polars", "polars_same"):
                pol = s.get(rival, {}).get("seconds")
                if not pol:
                    continue
                met = "met" if s[eng]["seconds"] <= pol else "not met"
                lines.append(f"- {case['rows']:,} rows: {LABELS[eng]} vs {LABELS[rival]}: "
                             f"**{met}** ({s[eng]['seconds']:.2f} s vs {pol:.2f} s)")
            if not big:
                rss = s[eng]["rss"] * 1024
                met = "met" if rss <= MAX_RSS_TARGET else "not met"
                lines.append(f"- {case['rows']:,} rows: {LABELS[eng]} within 0.8 GB: "
                             f"**{met}** ({rss / 1e9:.2f} GB)")
    if not any(c["rows"] >= 4e7 for c in cases):
        lines.append("- 50M rows: not measured in this run (`--sizes 1e7,5e7` measures it)")
    lines.append("")
    if kauto is not None:
        lines += [f"### k auto (bench/_kauto.py, {args.kauto_customers:,} customers)", ""]
        if kauto.get("ok"):
            lines += [f"`measure_kauto({args.kauto_customers}, seed=0)` in its own process: "
                      f"{kauto.get('seconds', 0):.1f} s, peak RSS {_mib(kauto['peak_rss_kib'])} "
                      f"(reported by the function: {kauto.get('peak_rss_mib', '—')} MiB), chosen "
                      f"k = {kauto.get('chosen_k')}.", ""]
            table = kauto.get("table") or []
            if table:
                keys = list(table[0])
                lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                for row in table:
                    lines.append("| " + " | ".join(
                        f"{v:.4g}" if isinstance(v, float) else str(v) for v in
                        (row.get(k) for k in keys)) + " |")
                lines.append("")
            extra = {k: v for k, v in kauto.items() if k not in (
                "table", "ok", "worker", "log_tail", "seconds", "peak_rss_mib", "chosen_k",
                "peak_rss_kib", "process_seconds", "other_cores_busy", "vmhwm_kib",
                "ru_maxrss_kib")}
            if extra:
                lines += ["Other figures: " + ", ".join(f"{k} = {v}" for k, v in extra.items())
                          + ".", ""]
        else:
            lines += [f"Did not finish: {kauto.get('failure')}; "
                      f"{' / '.join(kauto.get('log_tail', [])[-3:])}", ""]
    else:
        lines += ["### k auto", "", "`bench/_kauto.py` was not there when this ran: no figures.",
                  ""]
    lines += ["### How it is measured", "",
              "- Data: `bench/_feature_data.py`: `generate_dataset(tmp, n_transactions=N / 1.02, "
              f"seed={args.seed})` (planted segments, BG/NBD purchases), turned into the clean "
              "`transactions` columns with 2 % of product lines returned a week later, 3 % of "
              "orders anonymous and 5 % of orders with a postage line. Not timed.",
              "- The as-of date is the day after the last transaction (so every side sees "
              "every row but the anonymous ones); the monetary sums of a–c agree with each "
              "other, b2, d and e agree with each other (checked below).",
              ""]
    checks = []
    for case in cases:
        sums = {e: s.get("monetary_sum") for e, s in case["summary"].items()}
        checks.append(f"{case['rows']:,} rows: " + ", ".join(
            f"{e} {v:,.2f}" for e, v in sums.items() if v is not None))
    lines += ["Sum of monetary over customers (a–c: all lines; b2, d, e: product lines): "
              + "; ".join(checks) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1e7", help="rows, comma separated (default 1e7)")
    p.add_argument("--quick", action="store_true", help="1M rows; RESULTS.md untouched")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--kauto-customers", type=float, default=1e6)
    p.add_argument("--no-kauto", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="keep generated data here and reuse it")
    p.add_argument("--wait-idle", type=float, default=120)
    p.add_argument("--write", action="store_true")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--json", help="also write the raw measurements here")
    # worker mode
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--parquet", help=argparse.SUPPRESS)
    p.add_argument("--as-of", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.kauto_customers = int(args.kauto_customers)
    if args.worker:
        return run_worker(args)
    from _feature_data import make_transactions

    started = datetime.now(timezone.utc)
    command = ".venv/bin/python bench/segment.py" + (
        " " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])) if (argv or sys.argv[1:])
        else "")
    sizes = [1_000_000] if args.quick else [int(float(x)) for x in args.sizes.split(",")]
    engines = [e for e in args.engines.split(",") if e]
    info = _ingest.machine_info()
    tmp_root = Path(tempfile.mkdtemp(prefix="crmlens-segment-bench-"))
    cases = []
    try:
        for n in sizes:
            base = Path(args.data_dir) if args.data_dir else tmp_root
            folder = base / f"tx-{n}-seed{args.seed}"
            parquet = folder / "transactions.parquet"
            if not parquet.exists():
                print(f"generating {n:,} rows ...", flush=True)
                parquet, secs, rows = make_transactions(folder, n, seed=args.seed)
                print(f"  {rows:,} rows in {secs:.0f} s", flush=True)
            import duckdb

            rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchall()[0][0]
            as_of = _as_of(parquet)
            runs = []
            for _ in range(args.repeat):
                for eng in engines:
                    _ingest.wait_for_idle(args.wait_idle)
                    r = measure(eng, tmp_root, parquet=parquet, as_of=as_of)
                    runs.append(r)
                    shown = f"{r['seconds']:.2f} s" if r.get("ok") else r["failure"]
                    print(f"  {n:,} {eng:13s} {shown:>10s}  {_mib(r['peak_rss_kib'])}  "
                          f"(others busy {r['other_cores_busy']:.2f})", flush=True)
            summary = {}
            for eng in engines:
                er = [r for r in runs if r["worker"] == eng]
                ok = next((r for r in er if r.get("ok")), {})
                summary[eng] = {"seconds": _median(er, "seconds"),
                                "rss": _median(er, "peak_rss_kib"),
                                "all": [r["seconds"] for r in er if r.get("ok")],
                                "customers": ok.get("customers"),
                                "monetary_sum": ok.get("monetary_sum"),
                                "failure": next((r["failure"] for r in er if not r.get("ok")),
                                                None)}
            customers = (summary.get("crmlens_full") or summary.get("crmlens_rfm") or {}).get(
                "customers") or 0
            cases.append({"rows": int(rows), "bytes": parquet.stat().st_size, "runs": runs,
                          "summary": summary, "as_of": as_of.isoformat(),
                          "customers": customers})
            if not args.data_dir:
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
        kauto = None
        if not args.no_kauto and (BENCH_DIR / "_kauto.py").exists():
            _ingest.wait_for_idle(args.wait_idle)
            kauto = measure("kauto", tmp_root, kauto_customers=args.kauto_customers,
                            timeout=1800)
            print(f"  k auto {args.kauto_customers:,}: "
                  f"{kauto.get('seconds', kauto.get('failure'))}", flush=True)
    finally:
        import shutil

        shutil.rmtree(tmp_root, ignore_errors=True)
    section = render(cases, kauto, info, args, command, started)
    print()
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps({"cases": cases, "kauto": kauto}, default=str),
                                   encoding="utf-8")
    if (args.write or not args.quick) and not args.no_write:
        _ingest.write_results(section, RESULTS, header=SECTION)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
