"""BG/NBD and Gamma-Gamma fits: crmlens against lifetimes, in the same run (issue 4).

Customers are simulated from known BG/NBD and Gamma-Gamma parameters (numpy, in days); each
fit runs in a fresh process on the same saved summary, which times its own call and reports
its peak RSS (``VmHWM``):

a. lifetimes ``BetaGeoFitter`` / ``GammaGammaFitter`` on one row per customer (how it is used);
b. crmlens ``BetaGeoModel`` / ``GammaGammaModel`` on the distinct rows with weights
   (``crmlens.clv.compress``), compression included in the time.

pymc-marketing is not installed here (its PyMC/PyTensor stack compiles at install time), so
its maximum-a-posteriori fit is not measured; the note in RESULTS.md says so.

    .venv/bin/python bench/clv.py                     # 100k and 1M customers, RESULTS.md
    .venv/bin/python bench/clv.py --sizes 1e5 --no-write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ingest as _ingest  # noqa: E402  (machine info, idle wait, RESULTS.md header)
import segment as _segment  # noqa: E402  (VmHWM of a worker)

SECTION = "## CLV model fits (bench/clv.py)"
TRUE_BGNBD = {"r": 0.6, "alpha": 30.0, "a": 0.8, "b": 2.5}
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 150.0}
WORKERS = ("lifetimes_bgnbd", "crmlens_bgnbd", "lifetimes_gg", "crmlens_gg")


def simulate(n: int, seed: int, path: Path) -> None:
    """BG/NBD purchase histories and Gamma-Gamma spend, saved as .npz (days, whole days)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    r, alpha, a, b = TRUE_BGNBD.values()
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.integers(30, 731, n).astype(float)
    freq = np.zeros(n)
    rec = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    t = np.zeros(n)
    # Draw purchases until each customer drops out or passes T (vectorised over customers).
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        bought = t[idx] <= T[idx]
        done = idx[~bought]
        alive[done] = False
        buy = idx[bought]
        freq[buy] += 1
        rec[buy] = np.floor(t[buy])
        alive[buy] = rng.random(len(buy)) >= p[buy]
    rec = np.minimum(rec, T)
    pg, qg, vg = TRUE_GG.values()
    nu = rng.gamma(qg, 1 / vg, n)
    spend = np.where(freq > 0, rng.gamma(pg * np.maximum(freq, 1), 1 / nu) / np.maximum(freq, 1),
                     0.0)
    np.savez(path, frequency=freq, recency=rec, T=T, monetary=np.round(spend, 2))


def run_worker(name: str, data: Path) -> dict[str, Any]:
    import warnings

    import numpy as np

    z = np.load(data)
    f, rcy, T, m = z["frequency"], z["recency"], z["T"], z["monetary"]
    rep = f > 0
    if name.startswith("lifetimes"):
        import lifetimes  # noqa: F401  (imported before timing)
    else:
        import crmlens.clv  # noqa: F401
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    if name == "lifetimes_bgnbd":
        from lifetimes import BetaGeoFitter

        params = BetaGeoFitter().fit(f, rcy, T).params_.to_dict()
    elif name == "crmlens_bgnbd":
        import pandas as pd

        from crmlens.clv import BetaGeoModel, compress

        rows, w = compress(pd.DataFrame({"frequency": f.astype(int), "recency": rcy, "T": T}))
        params = BetaGeoModel().fit(rows[:, 0], rows[:, 1], rows[:, 2], sample_weight=w).params_
    elif name == "lifetimes_gg":
        from lifetimes import GammaGammaFitter

        params = GammaGammaFitter().fit(f[rep], m[rep]).params_.to_dict()
    else:
        from crmlens.clv import GammaGammaModel

        params = GammaGammaModel().fit(f[rep], m[rep]).params_
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "params": {k: float(v) for k, v in params.items()},
            "vmhwm_kib": _segment._vmhwm_kib()}


def measure(name: str, data: Path, timeout: float) -> dict[str, Any]:
    _ingest.wait_for_idle(60)
    cmd = [sys.executable, __file__, "--worker", name, "--data", str(data)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failure": f"stopped after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"failure": (out.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(cases: list[dict[str, Any]], info: dict[str, Any], command: str) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [SECTION, "", f"Measured {now} with `{command}` (crmlens {info['crmlens']}, commit "
             f"`{info['commit']}`).", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB RAM, "
             f"{info['os']}; Python {info['python']}, numpy {info['numpy']}, lifetimes "
             f"{info['lifetimes']}.", "",
             "Simulated from BG/NBD r, α, a, b = " + ", ".join(
                 f"{v:g}" for v in TRUE_BGNBD.values()) + " (days) and Gamma-Gamma p, q, v = "
             + ", ".join(f"{v:g}" for v in TRUE_GG.values()) + ". Seconds: the fit call in "
             "a fresh process (crmlens: compression to distinct rows included); peak RSS: the "
             "process's VmHWM. lifetimes is used as users do (one row per customer). "
             "pymc-marketing is not installed here: not measured.", ""]
    for case in cases:
        lines += [f"**{case['n']:,} customers** ({case['distinct']:,} distinct "
                  "(frequency, recency, T) rows)", "",
                  "| model | lifetimes | crmlens | speed-up | parameters (crmlens) | largest "
                  "relative difference |", "|---|---:|---:|---:|---|---:|"]
        for model in ("bgnbd", "gg"):
            lt, cm = case[f"lifetimes_{model}"], case[f"crmlens_{model}"]
            if "failure" in lt or "failure" in cm:
                lines.append(f"| {model} | {lt.get('failure', '')} | {cm.get('failure', '')} "
                             "| — | — | — |")
                continue
            diff = max(abs(cm["params"][k] - lt["params"][k]) / abs(lt["params"][k])
                       for k in lt["params"] if lt["params"][k])
            label = "BG/NBD" if model == "bgnbd" else "Gamma-Gamma"
            lines.append(
                f"| {label} | {lt['seconds']:.2f} s, {lt['vmhwm_kib'] / 1024:,.0f} MiB | "
                f"{cm['seconds']:.2f} s, {cm['vmhwm_kib'] / 1024:,.0f} MiB | "
                f"**{lt['seconds'] / cm['seconds']:.1f}×** | "
                + ", ".join(f"{k} {v:.4g}" for k, v in cm["params"].items())
                + f" | {diff:.1e} |")
        lines.append("")
    big = next((c for c in cases if c["n"] >= 1_000_000), None)
    if big and "seconds" in big["crmlens_bgnbd"] and "seconds" in big["lifetimes_bgnbd"]:
        s = big["crmlens_bgnbd"]["seconds"]
        ratio = big["lifetimes_bgnbd"]["seconds"] / s
        lines += ["Targets (issue 4), BG/NBD on 1M customers: under 1 s — "
                  f"**{'met' if s < 1 else 'not met'}** ({s:.2f} s); at least 20× faster than "
                  f"lifetimes — **{'met' if ratio >= 20 else 'not met'}** ({ratio:.1f}×); 8× "
                  "faster than pymc-marketing — not measured.", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5,1e6")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, Path(args.data))))
        return 0
    import numpy as np

    import lifetimes

    info = _ingest.machine_info()
    info["lifetimes"] = lifetimes.__version__
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(float(s)) for s in args.sizes.split(",")):
            data = Path(tmp) / f"clv_{size}.npz"
            simulate(size, args.seed, data)
            z = np.load(data)
            distinct = len(np.unique(np.stack([z["frequency"], z["recency"], z["T"]]), axis=1)
                           .T)
            case = {"n": size, "distinct": distinct}
            for name in WORKERS:
                case[name] = measure(name, data, args.timeout)
                shown = (f"{case[name]['seconds']:.2f} s" if "seconds" in case[name]
                         else case[name]["failure"])
                print(f"{size:>10,} {name:16s} {shown}", flush=True)
            cases.append(case)
    command = "bench/clv.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = render(cases, info, command.strip())
    print(section)
    if args.write:
        _ingest.write_results(section, header=SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
