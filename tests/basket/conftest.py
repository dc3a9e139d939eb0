"""Shared basket fixtures: the Online Retail baskets and the Groceries data set."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmlens import Workspace
from crmlens.basket import baskets_from_lists, load_baskets
from tests.conftest import ONLINE_RETAIL

GROCERIES = Path(__file__).resolve().parents[3] / "shared/data/groceries/groceries.csv"


@pytest.fixture(scope="session")
def retail_baskets(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("retailbaskets") / "ws")
    ws.ingest("transactions", ONLINE_RETAIL)
    with ws.reader() as con:
        return load_baskets(con)


@pytest.fixture(scope="session")
def groceries():
    if not GROCERIES.exists():
        pytest.skip("the Groceries data set is not available")
    lines = GROCERIES.read_text(encoding="utf-8").splitlines()
    return baskets_from_lists(line.split(",") for line in lines)


def as_lists(baskets) -> list[list[int]]:
    """Baskets as lists of item codes (the input format of pyfim)."""
    ip, ix = baskets.indptr, baskets.indices
    return [ix[ip[i]:ip[i + 1]].tolist() for i in range(baskets.n_baskets)]
