"""The i18n catalogue: both languages everywhere, no key used in code missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crmlens.i18n import LANGUAGES, catalogue, t

SRC = Path(__file__).resolve().parents[1] / "src" / "crmlens"
# Literal keys in calls such as t("cli.x"), InputError("error.y"), progress.stage("progress.z")
KEY_USE = re.compile(r"""(?:\bt|Error|stage|t_count|_print_error)\(\s*["']((?:error|cli|progress|report|quality|generator|hint|features|segment|trees|clv|basket|recommend|predict|churn)\.[\w.]+)["']""")


def test_every_entry_has_both_languages():
    for key, texts in catalogue().items():
        for lang in LANGUAGES:
            assert texts.get(lang), f"{key} has no {lang} text"


def test_placeholders_match_between_languages():
    field = re.compile(r"{(\w+)")
    for key, texts in catalogue().items():
        assert set(field.findall(texts["en"])) == set(field.findall(texts["zh"])) or \
            key.startswith("error.file_binary"), key


def test_keys_used_in_code_exist():
    missing = []
    for path in SRC.rglob("*.py"):
        for key in KEY_USE.findall(path.read_text(encoding="utf-8")):
            if key.endswith("."):
                continue
            if key not in catalogue():
                missing.append(f"{path.name}: {key}")
    assert not missing, missing


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translation_renders(lang):
    text = t("error.file_missing", lang=lang, path="x.csv")
    assert "x.csv" in text and "{" not in text
