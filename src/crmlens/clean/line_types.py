"""Classification of non-product lines (postage, fees, discounts, adjustments ...)."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@lru_cache(maxsize=1)
def default_rules() -> tuple[dict[str, Any], ...]:
    text = (resources.files("crmlens.clean") / "line_types.toml").read_text(encoding="utf-8")
    return tuple(tomllib.loads(text)["rule"])


def line_type_sql(product_id: str, product_name: str, extra: list[dict[str, Any]] | None = None) -> str:
    """A SQL ``CASE`` giving the line type from product id and cleaned name expressions."""
    rules = list(extra or []) + list(default_rules())
    whens = []
    for rule in rules:
        tests = []
        codes = [c.upper() for c in rule.get("codes", [])]
        if codes:
            tests.append(f"upper({product_id}) IN ({', '.join(_lit(c) for c in codes)})")
        if rule.get("code_pattern"):
            tests.append(f"regexp_matches({product_id}, {_lit('(?i)' + rule['code_pattern'])})")
        if rule.get("name"):
            tests.append(f"regexp_matches({product_name}, {_lit('(?i)' + rule['name'])})")
        if tests:
            whens.append(f"WHEN {' OR '.join('coalesce(' + t + ', false)' for t in tests)} "
                         f"THEN {_lit(rule['line_type'])}")
    return "CASE " + " ".join(whens) + " ELSE 'product' END"
