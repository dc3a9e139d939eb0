"""Cleaning options, from settings and command-line choices."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CleanOptions:
    """How values are read and which rows are kept.

    Attributes
    ----------
    dayfirst : bool
        Read ``9/12/2011`` as 9 December (True) or 12 September (False).
    keep_duplicates : bool
        Keep exact duplicate rows instead of rejecting them.
    drop_flags : tuple of str
        Flags whose rows are rejected (reason ``dropped_by_rule``) instead of kept.
    outlier_fence : float
        Tukey fence multiplier on log(1 + |x|); 3 is the classic "far out".
    now : datetime
        Reference time for ``future_date`` flags.
    line_type_rules : list of dict
        Extra non-product rules, tried before the built-in ones.
    """

    dayfirst: bool = False
    keep_duplicates: bool = False
    drop_flags: tuple[str, ...] = ()
    outlier_fence: float = 3.0
    now: datetime = field(default_factory=datetime.now)
    line_type_rules: list[dict[str, Any]] = field(default_factory=list)
