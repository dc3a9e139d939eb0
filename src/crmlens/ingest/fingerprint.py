"""Input fingerprints for the runs table: the same bytes give the same fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_fingerprint(path: Path, chunk: int = 4 << 20) -> str:
    """``sha256:<hex>`` of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return "sha256:" + digest.hexdigest()
