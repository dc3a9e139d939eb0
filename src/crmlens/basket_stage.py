"""The ``basket`` stage of ``crmlens run`` (order 500, after CLV).

The useful minimum support depends on the data: a shop with a few dozen products finds
thousands of itemsets at 2 %, the Online Retail sample barely any pairs. The stage starts at
:data:`START_SUPPORT` and halves it down to :data:`FLOOR_SUPPORT` until at least
:data:`TARGET_ITEMSETS` itemsets of two or more items are found (single items give no rules),
with itemsets of at most :data:`MAX_LEN` items, then stores rules of confidence
>= :data:`MIN_CONFIDENCE`, overall and per segment of the newest RFM segmentation when there
is one. Fewer than :data:`MIN_BASKETS` orders are skipped with a reason.
"""

from __future__ import annotations

import logging
from typing import Any

from crmlens.errors import InputError
from crmlens.progress import Progress
from crmlens.runner import Stage, register_stage
from crmlens.workspace import Workspace

log = logging.getLogger(__name__)

MIN_BASKETS = 100
START_SUPPORT = 0.02
FLOOR_SUPPORT = 0.005
TARGET_ITEMSETS = 50
MAX_LEN = 3
MIN_CONFIDENCE = 0.3
# Per-segment rules come from this segmentation when it exists (readable segment names).
SEGMENT_RUN = "rfm"


def supports_to_try() -> list[float]:
    """START_SUPPORT halved down to FLOOR_SUPPORT (inclusive): 0.02, 0.01, 0.005."""
    out, value = [], START_SUPPORT
    while value >= FLOOR_SUPPORT - 1e-12:
        out.append(round(value, 10))
        value /= 2
    return out


def choose_min_support(ws: Workspace) -> tuple[float, int]:
    """The largest support of :func:`supports_to_try` giving >= TARGET_ITEMSETS itemsets
    of length >= 2 (else the floor), with that number of itemsets."""
    from crmlens.basket.data import load_baskets
    from crmlens.basket.itemsets import frequent_itemsets

    with ws.reader() as con:
        baskets = load_baskets(con)
    found = 0
    for support in supports_to_try():
        itemsets = frequent_itemsets(baskets, min_support=support, max_len=MAX_LEN)
        found = sum(1 for s in itemsets.items if len(s) >= 2)
        if found >= TARGET_ITEMSETS:
            return support, found
    return support, found


def run_basket(ws: Workspace, progress: Progress) -> dict[str, Any] | None:
    """Itemsets and rules at an automatic support, or a skip reason; None without orders."""
    from crmlens.basket.run import count_baskets

    with ws.reader() as con:
        n = count_baskets(con)
    if n == 0:
        return None
    if n < MIN_BASKETS:
        return {"skipped": "too_few_baskets", "baskets": n, "minimum": MIN_BASKETS}
    progress.stage("progress.basket_mine")
    support, pairs = choose_min_support(ws)
    has_rfm = ws.sql("SELECT count(*) FROM segment_runs WHERE name = ?", [SEGMENT_RUN])[0][0]
    try:
        result = ws.basket_rules(min_support=support, max_len=MAX_LEN,
                                 min_confidence=MIN_CONFIDENCE,
                                 segment_run=SEGMENT_RUN if has_rfm else None,
                                 progress=progress)
    except InputError as exc:
        log.warning("basket stage skipped: %s", exc.message("en"))
        return {"skipped": "mining_failed", "detail": exc.message("en")}
    return {"run_id": result.run_id, "baskets": result.n_baskets, "min_support": support,
            "itemsets": result.n_itemsets, "multi_item_itemsets": pairs,
            "rules": result.n_rules, "min_confidence": MIN_CONFIDENCE,
            "segments": len([s for s in result.segments if not s.get("skipped")])}


register_stage(Stage("basket", 500, run_basket))
