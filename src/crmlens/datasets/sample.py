"""The bundled sample: UCI Online Retail (Chen 2015, CC BY 4.0), 541,909 invoice lines.

Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning Repository.
https://doi.org/10.24432/C5BW33
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from crmlens.errors import CrmlensError

SAMPLE_NAME = "online_retail.parquet"
SAMPLE_ROWS = 541_909


def sample_path() -> Path:
    """Path of the bundled Online Retail Parquet file."""
    path = Path(str(resources.files("crmlens.datasets") / "data" / SAMPLE_NAME))
    if not path.is_file():
        raise CrmlensError("error.sample_missing", path=str(path))
    return path
