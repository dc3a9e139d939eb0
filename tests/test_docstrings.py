"""The public API carries numpydoc docstrings."""

from __future__ import annotations

import inspect

import pytest

from crmlens import Workspace
from crmlens.datasets.generator import generate_dataset
from crmlens.report import register_section, write_report
from crmlens.runner import register_stage, run_demo, run_pipeline

PUBLIC = [generate_dataset, write_report, register_section, register_stage, run_demo,
          run_pipeline]
PUBLIC += [getattr(Workspace, name) for name in dir(Workspace)
           if not name.startswith("_") and callable(getattr(Workspace, name))]


@pytest.mark.parametrize("func", PUBLIC, ids=lambda f: f.__qualname__)
def test_has_docstring(func):
    doc = inspect.getdoc(func)
    assert doc and len(doc) > 20, f"{func.__qualname__} has no docstring"


@pytest.mark.parametrize("func", [Workspace.ingest, generate_dataset, write_report],
                         ids=lambda f: f.__qualname__)
def test_documents_every_parameter(func):
    doc = inspect.getdoc(func)
    assert "Parameters" in doc
    for name, param in inspect.signature(func).parameters.items():
        if name in ("self", "progress") or param.kind is param.VAR_KEYWORD:
            continue
        assert name in doc, f"{func.__qualname__}: parameter {name} is not documented"
