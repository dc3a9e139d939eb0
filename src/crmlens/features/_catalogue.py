"""The feature catalogue: names, definitions, units, kinds and labels, read from catalogue.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from crmlens.i18n import normalize_lang

KINDS = ("numeric", "categorical")


@dataclass(frozen=True)
class FeatureDef:
    """One feature (or, with ``family``, a family of dynamic share columns).

    Attributes
    ----------
    name : str
        Column name; for a family a template such as ``share_channel_{slug}``.
    group : str
        Where the feature comes from: core, money, time, assortment, attributes, events, shares.
    kind : {"numeric", "categorical"}
    unit : str
    definition : str
        English definition (the precise rule).
    labels : dict
        ``{"en": ..., "zh": ...}``; a family's labels contain ``{value}``.
    family : bool
    """

    name: str
    group: str
    kind: str
    unit: str
    definition: str
    labels: dict[str, str]
    family: bool = False

    def label(self, lang: str | None = "en", value: str | None = None) -> str:
        """The label in ``lang``; for a family, of the column for ``value``."""
        text = self.labels[normalize_lang(lang)]
        return text.format(value=value) if self.family and value is not None else text

    def to_dict(self, lang: str | None = "en") -> dict[str, Any]:
        return {"name": self.name, "group": self.group, "kind": self.kind, "unit": self.unit,
                "definition": self.definition, "label": self.label(lang), "family": self.family}


@lru_cache(maxsize=1)
def _definitions() -> tuple[FeatureDef, ...]:
    text = (resources.files("crmlens.features") / "catalogue.toml").read_text(encoding="utf-8")
    out = []
    for name, entry in tomllib.loads(text).items():
        if entry["kind"] not in KINDS:
            raise ValueError(f"feature {name!r}: kind must be one of {KINDS}")
        out.append(FeatureDef(
            name=name, group=entry["group"], kind=entry["kind"], unit=entry["unit"],
            definition=entry["definition"], labels={"en": entry["en"], "zh": entry["zh"]},
            family=bool(entry.get("family", False))))
    return tuple(out)


def definitions() -> tuple[FeatureDef, ...]:
    """Every feature definition, in catalogue order (families last)."""
    return _definitions()


def definition(name: str) -> FeatureDef:
    """The definition of column ``name`` (a share column resolves to its family)."""
    for d in _definitions():
        if d.name == name or (d.family and name.startswith(d.name.split("{")[0])):
            return d
    raise KeyError(name)


def static_names() -> list[str]:
    """Names of the fixed (non-family) features, in catalogue order."""
    return [d.name for d in _definitions() if not d.family]


def catalogue_markdown() -> str:
    """The feature table of docs/features.md, generated from the catalogue."""
    lines = ["| name | kind | unit | definition | label (en) | label (zh) |",
             "|---|---|---|---|---|---|"]
    for d in _definitions():
        cells = [f"`{d.name}`", d.kind, d.unit or "—", d.definition, d.labels["en"],
                 d.labels["zh"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
