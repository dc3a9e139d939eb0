"""Workspace settings (``crmlens.toml``): engine limits, cleaning choices, saved column maps."""

from __future__ import annotations

import copy
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from crmlens.errors import WorkspaceError

DEFAULTS: dict[str, Any] = {
    "workspace": {"lang": "en"},
    "engine": {
        # DuckDB spills to disk past this; keeps ingest of 10M rows well under 2 GB.
        "memory_limit": "1500MB",
        "threads": 0,  # 0 = all cores
    },
    "clean": {
        "dayfirst": "auto",          # "auto", true or false: how to read 9/12/2011
        "keep_duplicates": False,    # keep exact duplicate rows instead of rejecting them
        "drop_flags": [],            # flags whose rows are rejected instead of kept
        "outlier_fence": 3.0,        # Tukey far-out fence, on a log scale
    },
    "mappings": {},                  # kind -> {role: column}, saved by ingest
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_settings(path: Path) -> dict[str, Any]:
    """Read ``crmlens.toml`` over the defaults; a broken file is a clear error."""
    if not path.exists():
        return copy.deepcopy(DEFAULTS)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError("error.settings_invalid", path=str(path), detail=str(exc)) from None
    return _merge(DEFAULTS, data)


def save_settings(path: Path, settings: dict[str, Any]) -> None:
    """Write settings atomically (temp file + rename) so a crash never leaves half a file."""
    text = tomli_w.dumps(settings)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".crmlens.", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
