"""Rule text never prints an infinite bound."""

from __future__ import annotations

import math

from crmlens.trees import Condition, Rule
from crmlens.trees._formatting import format_rule


def test_infinite_bound_is_left_out():
    rule = Rule(conditions=(Condition("monetary", "<=", math.inf),
                            Condition("monetary", ">", 10.0)), prediction="a",
                support=5, coverage=0.5, precision=0.9)
    text = format_rule(rule, lang="en")
    assert "inf" not in text and "∞" not in text and "10" in text
