"""pymc-marketing's maximum-a-posteriori fit, timed in its own interpreter (bench/clv.py).

Runs in the separate virtual environment made by ``make bench-pymc-env`` (pymc-marketing's
PyMC/PyTensor stack is a heavy, compiling dependency that crmlens itself does not need), so it
imports nothing from crmlens. A fit on 1,000 customers first fills PyTensor's compile cache in
this process: the timed fit is what a user sees once the model has been compiled.

    .venv-pymc/bin/python bench/_pymc_worker.py bgnbd data.npz     # prints one JSON line
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def _vmhwm_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    import numpy as np
    import pandas as pd
    import pymc_marketing
    from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel

    warnings.filterwarnings("ignore")
    model_name, path = sys.argv[1], sys.argv[2]
    z = np.load(path)
    n = len(z["frequency"])
    frame = pd.DataFrame({"customer_id": np.arange(n), "frequency": z["frequency"],
                          "recency": z["recency"], "T": z["T"]})
    cls = BetaGeoModel if model_name == "bgnbd" else ParetoNBDModel

    def fit(data):
        model = cls(data=data)
        model.fit(method="map", progressbar=False)
        return model

    fit(frame.iloc[:1000].copy())            # compile once, outside the timing
    t0 = time.perf_counter()
    model = fit(frame)
    seconds = time.perf_counter() - t0
    posterior = model.fit_result  # the MAP point, as a one-draw posterior Dataset
    names = ("r", "alpha", "a", "b") if model_name == "bgnbd" else ("r", "alpha", "s", "beta")
    params = {k: float(posterior[k].values.ravel()[0]) for k in names if k in posterior}
    print(json.dumps({"seconds": seconds, "params": params, "vmhwm_kib": _vmhwm_kib(),
                      "version": pymc_marketing.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
