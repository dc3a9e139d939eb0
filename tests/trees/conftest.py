"""Small tables for the tree tests."""

from __future__ import annotations

import pandas as pd
import pytest

# Quinlan's 14 "play tennis" days (Quinlan 1986, Table 1; Mitchell 1997, Table 3.2)
_DAYS = """\
sunny    hot  high   weak   no
sunny    hot  high   strong no
overcast hot  high   weak   yes
rain     mild high   weak   yes
rain     cool normal weak   yes
rain     cool normal strong no
overcast cool normal strong yes
sunny    mild high   weak   no
sunny    cool normal weak   yes
rain     mild normal weak   yes
sunny    mild normal strong yes
overcast mild high   strong yes
overcast hot  normal weak   yes
rain     mild high   strong no"""


@pytest.fixture
def tennis() -> tuple[pd.DataFrame, list[str]]:
    rows = [line.split() for line in _DAYS.splitlines()]
    X = pd.DataFrame([r[:4] for r in rows], columns=["outlook", "temperature", "humidity", "wind"])
    return X, [r[4] for r in rows]
