"""The i18n catalogue: every user-facing string, in English and Chinese.

The catalogue is one mapping from keys to ``{"en": ..., "zh": ...}``; it is stored as several
TOML files under ``catalogue/`` (one per area, so features can add strings without touching
each other's files) and merged at first use. A key defined twice is an error.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "zh")

_current = contextvars.ContextVar("crmlens_lang", default="")


def normalize_lang(lang: str | None) -> str:
    """Map ``zh-CN``, ``zh_Hans``, ``EN`` ... onto a supported language code."""
    if not lang:
        return "en"
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else "en"


def get_language() -> str:
    """The language in force: set by :func:`set_language`, else ``CRMLENS_LANG``, else en."""
    return _current.get() or normalize_lang(os.environ.get("CRMLENS_LANG"))


def set_language(lang: str | None) -> None:
    """Set the language for messages in this context."""
    if lang is not None and normalize_lang(lang) != lang.strip().lower()[:2]:
        raise ValueError(f"unsupported language {lang!r}; use one of {', '.join(LANGUAGES)}")
    _current.set(normalize_lang(lang) if lang else "")


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """All entries, merged from the catalogue files."""
    merged: dict[str, dict[str, str]] = {}
    folder = resources.files("crmlens.i18n") / "catalogue"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        for key, texts in _flatten(data):
            if key in merged:
                raise ValueError(f"i18n key {key!r} is defined twice (again in {entry.name})")
            merged[key] = texts
    return merged


def _flatten(data: dict[str, Any], prefix: str = ""):
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and set(value) <= set(LANGUAGES) and value:
            yield key, value
        elif isinstance(value, dict):
            yield from _flatten(value, key + ".")
        else:
            raise ValueError(f"i18n entry {key!r} must be a table with en and zh texts")


def t(key: str, /, *, lang: str | None = None, **params: Any) -> str:
    """Translate ``key`` into ``lang`` and fill in ``params``.

    An unknown key is returned as is, so a missing string is visible rather than fatal; the test
    suite checks that every key used in the code exists in both languages.
    """
    lang = normalize_lang(lang) if lang else get_language()
    texts = catalogue().get(key)
    if texts is None:
        return key
    text = texts.get(lang) or texts["en"]
    return text.format(**params) if params else text


def has(key: str) -> bool:
    """Whether ``key`` is in the catalogue."""
    return key in catalogue()
