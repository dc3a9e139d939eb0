"""Frequent itemsets: crmlens against mlxtend and pyfim, in the same run.

On the same baskets, each library and algorithm runs in a fresh process, which times its own
mining call and reports its peak RSS (``VmHWM`` of /proc/self/status):

* crmlens ``crmlens.basket.itemsets.frequent_itemsets(baskets, min_support=<count>,
  algorithm="eclat" | "fpgrowth" | "apriori")`` on a ``crmlens.basket.data.Baskets`` (CSR);
* mlxtend ``frequent_patterns.fpgrowth`` / ``apriori`` on a sparse boolean one-hot DataFrame
  (``pd.DataFrame.sparse.from_spmatrix``, what mlxtend's docs advise for large data);
* pyfim ``fim.eclat`` / ``fpgrowth`` / ``apriori`` (C, by Christian Borgelt) on a list of item
  lists, ``supp=-min_count, report="a", target="s"``.

Data: (1) the bundled Online Retail sample (baskets = invoices, items = products) at several
minimum supports; (2) a synthetic set of 1M baskets x 50k items (``bench/_basket_data.py``,
cached). Every worker runs under an address-space cap (``RLIMIT_AS``) and a timeout, and is
reported as "out of memory" or "stopped" instead of taking the machine down. Itemset counts and
a digest of every (itemset, count) are compared between the runs that finish.

    .venv/bin/python bench/basket.py                         # both data sets, RESULTS.md
    .venv/bin/python bench/basket.py --datasets retail --supports 0.01 --no-write
    .venv/bin/python bench/basket.py --libraries crmlens_eclat,pyfim_eclat --no-write
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ingest as _ingest  # noqa: E402  (machine info, idle wait, RESULTS.md section)
import segment as _segment  # noqa: E402  (VmHWM of a worker)

SECTION = "## Market basket (bench/basket.py)"
WORKERS = ("crmlens_eclat", "crmlens_fpgrowth", "crmlens_apriori", "mlxtend_fpgrowth",
           "mlxtend_apriori", "pyfim_eclat", "pyfim_fpgrowth", "pyfim_apriori")
RETAIL_SUPPORTS = "0.02,0.01,0.005,0.002"
# 0.1 % of 1M baskets: about 3,000 itemsets on the synthetic set (1,600 single products, the
# rest pairs to 7-item sets, mostly from the planted groups); measured with pyfim on 100k.
SYNTHETIC_SUPPORT = "0.001"
SYNTHETIC_SIZE = "1000000x50000"
# Targets of issue 5, checked for each crmlens algorithm.
TARGET_SPEEDUP_MLXTEND = 10.0
TARGET_RATIO_PYFIM = 2.0
OOM = "out of memory"


# --- worker (a fresh process per library and algorithm) ---------------------------------------


def _limit_memory(cap_gib: float) -> None:
    import resource

    cap = int(cap_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _digest(pairs: list[tuple[tuple[int, ...], int]]) -> str:
    h = hashlib.sha256()
    for items, count in sorted(pairs):
        h.update((",".join(map(str, items)) + f":{count}\n").encode())
    return h.hexdigest()[:16]


def _mine(name: str, indptr: Any, indices: Any, n_items: int, min_count: int
          ) -> tuple[float, float, Any]:
    """(input preparation seconds, mining seconds, raw result) of one library call."""
    import numpy as np

    library, algorithm = name.split("_", 1)
    n = len(indptr) - 1
    t = time.perf_counter()
    if library == "crmlens":
        from crmlens.basket.data import Baskets
        from crmlens.basket.itemsets import frequent_itemsets

        baskets = Baskets(indptr=indptr, indices=indices, basket_ids=np.arange(n),
                          item_ids=np.array([str(i) for i in range(n_items)], dtype=object),
                          item_names=np.full(n_items, "", dtype=object), n_dropped_large=0)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        result = frequent_itemsets(baskets, min_support=min_count, algorithm=algorithm)
    elif library == "mlxtend":
        import warnings

        import pandas as pd
        import scipy.sparse as sp
        from mlxtend.frequent_patterns import apriori, fpgrowth

        warnings.filterwarnings("ignore")
        onehot = sp.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr),
                               shape=(n, n_items))
        df = pd.DataFrame.sparse.from_spmatrix(onehot, columns=range(n_items))
        del onehot
        prep = time.perf_counter() - t
        fn = fpgrowth if algorithm == "fpgrowth" else apriori
        t = time.perf_counter()
        # support >= min_count / n is count >= min_count: both sides are count / n in floats.
        result = fn(df, min_support=min_count / n)
    elif library == "pyfim":
        import fim

        tracts = [row.tolist() for row in np.split(indices, indptr[1:-1])]
        prep = time.perf_counter() - t
        t = time.perf_counter()
        result = getattr(fim, algorithm)(tracts, supp=-min_count, report="a", target="s")
    else:
        raise SystemExit(f"unknown worker {name}")
    return prep, time.perf_counter() - t, result


def _pairs(name: str, result: Any, n: int) -> list[tuple[tuple[int, ...], int]]:
    """Every (sorted itemset, count), whatever the library's output format."""
    if name.startswith("crmlens"):
        return [(tuple(sorted(int(i) for i in s)), int(c))
                for s, c in zip(result.items, result.counts)]
    if name.startswith("mlxtend"):
        return [(tuple(sorted(int(i) for i in s)), int(round(sup * n)))
                for s, sup in zip(result["itemsets"], result["support"])]
    return [(tuple(sorted(int(i) for i in s)), int(c)) for s, c in result]


def run_worker(args: argparse.Namespace) -> int:
    _limit_memory(args.memory_cap)
    import numpy as np  # noqa: F401  (imports are not part of the measured time)

    import _basket_data

    name, out = args.worker, Path(args.out)
    library = name.split("_", 1)[0]
    try:
        if library == "crmlens":
            import crmlens.basket.itemsets  # noqa: F401
        elif library == "mlxtend":
            import mlxtend.frequent_patterns  # noqa: F401
            import pandas  # noqa: F401
        elif library == "pyfim":
            import fim  # noqa: F401
    except ImportError as exc:
        out.write_text(json.dumps({"failure": f"not available ({exc.name} missing)"}))
        return 0
    indptr, indices, n_items = _basket_data.load(Path(args.data))
    try:
        prep, seconds, result = _mine(name, indptr, indices, n_items, args.min_count)
        peak = _segment._vmhwm_kib()
        pairs = _pairs(name, result, len(indptr) - 1)
    except MemoryError:
        out.write_text(json.dumps({"failure": OOM, "vmhwm_kib": _segment._vmhwm_kib()}))
        return 0
    res = {"seconds": seconds, "prep_seconds": prep, "vmhwm_kib": peak,
           "n_itemsets": len(pairs), "digest": _digest(pairs),
           "max_len": max((len(s) for s, _ in pairs), default=0)}
    out.write_text(json.dumps(res))
    return 0


# --- the parent ----------------------------------------------------------------------------------


def min_count_of(support: str, n_baskets: int) -> int:
    """ceil(support * n_baskets), exactly (0.001 as a float is a hair above 1/1000)."""
    return max(1, math.ceil(Fraction(support) * n_baskets))


def measure(name: str, data: Path, min_count: int, tmp: Path, *, timeout: float,
            memory_cap: float, wait_idle: float) -> dict[str, Any]:
    """Run one worker in a fresh process under the memory cap and the timeout."""
    if wait_idle > 0:
        _ingest.wait_for_idle(wait_idle)
    out = tmp / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--data", str(data),
           "--min-count", str(min_count), "--out", str(out), "--memory-cap", str(memory_cap)]
    started, busy0 = time.perf_counter(), _ingest._cpu_busy_seconds()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(tmp))
    stopped, polled = False, 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        polled = max(polled, _ingest._vmrss_kib(proc.pid))  # a floor for runs that never end
        if not stopped and time.perf_counter() - started > timeout:
            stopped = True
            proc.kill()
        time.sleep(0.05)
    wall = time.perf_counter() - started
    own_cpu = usage.ru_utime + usage.ru_stime
    others = max(_ingest._cpu_busy_seconds() - busy0 - own_cpu, 0.0) / max(wall, 1e-9)
    res: dict[str, Any] = {"process_seconds": wall, "other_cores_busy": others,
                           "polled_rss_kib": polled}
    code = os.waitstatus_to_exitcode(status)
    log = (proc.stdout.read() if proc.stdout else b"").decode(errors="replace").strip()
    if stopped:
        res["failure"] = f"stopped after {timeout:g} s"
    elif code == 0 and out.exists():
        res.update(json.loads(out.read_text(encoding="utf-8")))
    elif "MemoryError" in log or "bad_alloc" in log or "std::bad" in log:
        res["failure"] = OOM
    elif "negative dimensions are not allowed" in log:
        # mlxtend apriori slices one column per candidate: past 2**31 non-zeros scipy's int32
        # index overflows (the memory that slice would need is far above the cap anyway).
        res["failure"] = "failed: candidate matrix beyond 2³¹ non-zeros (index overflow)"
    else:
        last = log.splitlines()[-1][:160] if log else ""
        res["failure"] = f"failed (exit code {code}{': ' + last if last else ''})"
    if res.get("failure") == OOM:
        res["failure"] = f"{OOM} (> {memory_cap:g} GiB cap)"
    return res


def _secs(res: dict[str, Any]) -> str:
    return f"{res['seconds']:,.2f}" if "seconds" in res else res.get("failure", "—")


def _mib(res: dict[str, Any]) -> str:
    if "seconds" in res and res.get("vmhwm_kib"):
        return f"{res['vmhwm_kib'] / 1024:,.0f} MiB"
    if "stopped" in res.get("failure", "") and res.get("polled_rss_kib"):
        return f"≥ {res['polled_rss_kib'] / 1024:,.0f} MiB when stopped"
    return "—"


def _speedup(res: dict[str, Any], mlx: dict[str, Any]) -> str:
    if "seconds" not in res or "seconds" not in mlx:
        return "—"
    return f"{mlx['seconds'] / res['seconds']:,.1f}×"


def _ratio(res: dict[str, Any], fim_: dict[str, Any]) -> str:
    if "seconds" not in res or "seconds" not in fim_:
        return "—"
    return f"{res['seconds'] / fim_['seconds']:,.2f}"


def agreement(runs: dict[str, dict[str, Any]]) -> str | None:
    """None when every finished run found the same itemsets; otherwise a warning."""
    done = {n: r for n, r in runs.items() if "n_itemsets" in r}
    if len({(r["n_itemsets"], r["digest"]) for r in done.values()}) <= 1:
        return None
    return ("itemsets DIFFER between libraries: "
            + ", ".join(f"{n} {r['n_itemsets']:,} (digest {r['digest']})"
                        for n, r in done.items()))


def _found(case: dict[str, Any]) -> str:
    done = [r for r in case["runs"].values() if "n_itemsets" in r]
    if not done:
        return ""
    return (f"{case['support']} ({done[0]['n_itemsets']:,} itemsets, longest "
            f"{done[0]['max_len']})")


def _verdicts(case: dict[str, Any], timeout: float) -> list[str]:
    runs = case["runs"]
    mlx = [runs[n] for n in ("mlxtend_fpgrowth", "mlxtend_apriori") if "seconds" in runs.get(n, {})]
    fastest_mlx = min((r["seconds"] for r in mlx), default=None)
    mlx_fp, fim_e = runs.get("mlxtend_fpgrowth", {}), runs.get("pyfim_eclat", {})
    rows = []
    for name in ("crmlens_eclat", "crmlens_fpgrowth", "crmlens_apriori"):
        ours = runs.get(name)
        if ours is None:
            continue
        if "seconds" not in ours:
            rows.append(f"| {case['label']} | {name.split('_')[1]} | — | — | — | **not met** "
                        f"({ours.get('failure', 'did not run')}) |")
            continue
        s = ours["seconds"]
        if fastest_mlx is not None:
            x = fastest_mlx / s
            speed = f"**{'met' if x >= TARGET_SPEEDUP_MLXTEND else 'not met'}** ({x:,.1f}×)"
        elif any("stopped" in runs.get(n, {}).get("failure", "")
                 for n in ("mlxtend_fpgrowth", "mlxtend_apriori")) \
                and s * TARGET_SPEEDUP_MLXTEND <= timeout:
            speed = f"**met** (mlxtend stopped after {timeout:.0f} s; crmlens {s:,.2f} s)"
        else:
            speed = "not measured (mlxtend did not finish)"
        if "seconds" in fim_e:
            r = s / fim_e["seconds"]
            pyfim = f"**{'met' if r <= TARGET_RATIO_PYFIM else 'not met'}** ({r:,.2f}×)"
        else:
            pyfim = "not measured"
        if "seconds" in mlx_fp and mlx_fp.get("vmhwm_kib") and ours.get("vmhwm_kib"):
            a, b = ours["vmhwm_kib"] / 1024, mlx_fp["vmhwm_kib"] / 1024
            mem = f"**{'met' if a < b else 'not met'}** ({a:,.0f} vs {b:,.0f} MiB)"
        elif OOM in mlx_fp.get("failure", ""):
            mem = f"**met** (mlxtend fpgrowth: {mlx_fp['failure']}; crmlens " \
                  f"{ours['vmhwm_kib'] / 1024:,.0f} MiB)"
        elif "stopped" in mlx_fp.get("failure", "") and mlx_fp.get("polled_rss_kib") \
                and ours.get("vmhwm_kib"):
            a, b = ours["vmhwm_kib"] / 1024, mlx_fp["polled_rss_kib"] / 1024
            mem = (f"**met** ({a:,.0f} MiB vs ≥ {b:,.0f} MiB when mlxtend was stopped)" if a < b
                   else f"not determined ({a:,.0f} MiB; mlxtend ≥ {b:,.0f} MiB when stopped)")
        else:
            mem = "not measured"
        rows.append(f"| {case['label']} | {name.split('_')[1]} | {speed} | {pyfim} | {mem} | "
                    f"**met** ({s:,.2f} s) |")
    return rows


def render(datasets: list[dict[str, Any]], info: dict[str, Any], command: str,
           args: argparse.Namespace) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    src = f"commit `{info['commit']}`" + (" with uncommitted changes under src/"
                                         if info["src_dirty"] else "")
    lines = [SECTION, "", f"Measured {now} with `{command}` (crmlens {info['crmlens']}, {src}).",
             "", f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB RAM, "
             f"{info['os']}; Python {info['python']}, numpy {info['numpy']}, pandas "
             f"{info['pandas']}, mlxtend {info['mlxtend']}, pyfim {info['pyfim']}.", "",
             "Each library and algorithm runs in a fresh process on the same baskets, loaded "
             "before the clock starts. *Seconds*: the mining call on the library's own input "
             "(crmlens: `frequent_itemsets(Baskets, min_support=<count>, algorithm=...)` on CSR "
             "arrays; mlxtend: `fpgrowth`/`apriori` on a sparse boolean one-hot DataFrame from "
             "`pd.DataFrame.sparse.from_spmatrix`; pyfim: `fim.eclat`/`fpgrowth`/`apriori` on a "
             "list of item lists, `supp=-count, report=\"a\", target=\"s\"`); building that input "
             "from the CSR arrays is not timed (listed below). *Peak RSS*: the worker's VmHWM "
             "(interpreter, imports and input included). Every library gets the same absolute "
             "minimum count, ceil(support × baskets). Workers run under an address-space cap "
             f"of {args.memory_cap:g} GiB (`RLIMIT_AS`) and are stopped after "
             f"{args.timeout:.0f} s. *Speed-up*: mlxtend fpgrowth's seconds / this row's; "
             "*ratio to pyfim eclat*: this row's seconds / pyfim eclat's. All itemsets "
             "(every length) are counted; a digest of every (itemset, count) is compared too.",
             ""]
    verdict_rows: list[str] = []
    for ds in datasets:
        d = ds["describe"]
        lines += [f"### {ds['title']}", "",
                  f"{d['n_baskets']:,} baskets × {d['n_items']:,} items ({d['n_pairs']:,} "
                  f"basket–item pairs, mean basket {d['mean_size']:.1f} items, largest "
                  f"{d['max_size']:,}); {ds['note']} A dense boolean one-hot matrix of it "
                  f"would take {d['n_baskets'] * d['n_items'] / 2**30:,.2f} GiB (1 byte a "
                  "cell; computed, not measured).", "",
                  "| min support (count) | library / algorithm | seconds | peak RSS | itemsets | "
                  "speed-up vs mlxtend fpgrowth | ratio to pyfim eclat |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        warnings = []
        for case in ds["cases"]:
            runs = case["runs"]
            mlx, fim_e = runs.get("mlxtend_fpgrowth", {}), runs.get("pyfim_eclat", {})
            for name, res in runs.items():
                lib, algo = name.split("_", 1)
                found = f"{res['n_itemsets']:,}" if "n_itemsets" in res else "—"
                lines.append(f"| {case['support']} ({case['min_count']:,}) | {lib} {algo} | "
                             f"{_secs(res)} | {_mib(res)} | {found} | {_speedup(res, mlx)} | "
                             f"{_ratio(res, fim_e)} |")
            warn = agreement(runs)
            if warn:
                lines.append(f"| {case['support']} | **warning** | {warn} | | | | |")
                warnings.append(f"min support {case['support']}: {warn}")
            verdict_rows += _verdicts(case, args.timeout)
        lines.append("")
        same = [_found(c) for c in ds["cases"] if not agreement(c["runs"])]
        if any(same):
            lines.append("Identical itemsets (count and digest) from every run that finished, "
                         "at min support " + ", ".join(s for s in same if s) + ".")
        lines += ["", *[f"**Warning:** {w}" for w in warnings]] if warnings else []
        prep = {}
        for c in ds["cases"]:
            for n, r in c["runs"].items():
                if "prep_seconds" in r:
                    prep[n.split("_")[0]] = max(prep.get(n.split("_")[0], 0.0), r["prep_seconds"])
        if prep:
            lines += ["", "Untimed input preparation (largest): " + ", ".join(
                f"{lib} {s:,.2f} s" for lib, s in prep.items()) + "."]
        lines.append("")
    if verdict_rows:
        lines += ["### Targets (issue 5)", "",
                  f"At least {TARGET_SPEEDUP_MLXTEND:.0f}× faster than mlxtend (its fastest "
                  f"algorithm that finished), at most {TARGET_RATIO_PYFIM:.0f}× pyfim eclat's "
                  "time, lower peak memory than mlxtend fpgrowth, and the synthetic 1M set must "
                  "finish; for each crmlens algorithm.", "",
                  "| data, min support | crmlens | ≥ 10× faster than mlxtend | ≤ 2× pyfim eclat "
                  "| less memory than mlxtend fpgrowth | finishes |",
                  "|---|---|---|---|---|---|", *verdict_rows, ""]
    busy = [r["other_cores_busy"] for ds in datasets for c in ds["cases"]
            for r in c["runs"].values() if "other_cores_busy" in r]
    if busy and max(busy) > 0.25:
        lines += [f"**Warning:** other processes used up to {max(busy):.2f} cores while a run "
                  "was measured; those times are slower than the machine can do.", ""]
    return "\n".join(lines).rstrip() + "\n"


def _versions(info: dict[str, Any]) -> None:
    from importlib import metadata

    for key, dist in (("mlxtend", "mlxtend"), ("pyfim", "pyfim")):
        try:
            info[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[key] = "not installed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="retail,synthetic")
    ap.add_argument("--supports", default=RETAIL_SUPPORTS,
                    help="minimum supports on Online Retail (fractions of the baskets)")
    ap.add_argument("--synthetic-support", default=SYNTHETIC_SUPPORT)
    ap.add_argument("--synthetic-size", default=SYNTHETIC_SIZE, help="BASKETSxITEMS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--libraries", default=",".join(WORKERS), help="workers to run")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per worker")
    ap.add_argument("--memory-cap", type=float, default=16, help="GiB of address space per worker")
    ap.add_argument("--wait-idle", type=float, default=60,
                    help="before each run, wait up to S s for an idle machine (0: do not)")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="where the synthetic baskets are kept (default: the temp folder)")
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                    help="replace this section of bench/RESULTS.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--min-count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return run_worker(args)

    import _basket_data

    workers = [w for w in args.libraries.split(",") if w]
    unknown = set(workers) - set(WORKERS)
    if unknown:
        ap.error(f"unknown --libraries {sorted(unknown)}; choose from {', '.join(WORKERS)}")
    info = _ingest.machine_info()
    _versions(info)
    datasets = []
    with tempfile.TemporaryDirectory(prefix="crmlens-bench-basket-") as tmp_name:
        tmp = Path(tmp_name)
        for dataset in (d for d in args.datasets.split(",") if d):
            if dataset == "retail":
                data = _basket_data.retail_baskets(tmp / "retail.npz", tmp)
                supports = [s for s in args.supports.split(",") if s]
                title = "Online Retail (bundled sample): invoices × products"
                note = f"baskets built by {_basket_data.describe(data)['source']}."
            elif dataset == "synthetic":
                n, m = (int(float(x)) for x in args.synthetic_size.lower().split("x"))
                data, gen = _basket_data.synthetic_baskets(n, m, seed=args.seed,
                                                           cache_dir=args.cache_dir)
                supports = [args.synthetic_support]
                title = f"Synthetic: {n:,} baskets × {m:,} items"
                note = (f"`bench/_basket_data.py` (seed {args.seed}): Zipf-like item popularity "
                        f"(p ∝ 1/(rank + {_basket_data.ZIPF_OFFSET:g})), lognormal basket sizes, "
                        f"{_basket_data.N_GROUPS} planted groups of "
                        f"{_basket_data.GROUP_SIZES[0]}–{_basket_data.GROUP_SIZES[1]} items "
                        "bought together; generation not timed"
                        + (f" ({gen:.0f} s)." if gen else " (cached)."))
            else:
                ap.error(f"unknown data set {dataset!r} (retail, synthetic)")
            desc = _basket_data.describe(data)
            cases = []
            for support in supports:
                min_count = min_count_of(support, desc["n_baskets"])
                case = {"support": support, "min_count": min_count, "runs": {},
                        "label": f"{dataset} {support}"}
                for name in workers:
                    res = measure(name, data, min_count, tmp, timeout=args.timeout,
                                  memory_cap=args.memory_cap, wait_idle=args.wait_idle)
                    case["runs"][name] = res
                    shown = (f"{res['n_itemsets']:,} itemsets" if "n_itemsets" in res else "")
                    print(f"{dataset:9s} {support:>7s} {name:18s} {_secs(res):>12s} "
                          f"{_mib(res):>10s} {shown}", flush=True)
                warn = agreement(case["runs"])
                if warn:
                    print(f"WARNING {dataset} {support}: {warn}", flush=True)
                cases.append(case)
            datasets.append({"name": dataset, "title": title, "note": note, "describe": desc,
                             "cases": cases})
    command = "bench/basket.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = render(datasets, info, command.strip(), args)
    print(section)
    if args.json:
        args.json.write_text(json.dumps({"info": info, "datasets": datasets}, default=str,
                                        indent=1), encoding="utf-8")
    if args.write:
        _ingest.write_results(section, header=SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
