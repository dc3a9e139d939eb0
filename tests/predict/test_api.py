"""The public prediction API: importable from ``crmlens.predict``, with numpydoc docstrings."""

from __future__ import annotations

import inspect

import pytest

import crmlens.predict as predict

PUBLIC = [getattr(predict, name) for name in predict.__all__
          if callable(getattr(predict, name))]


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda o: o.__name__)
def test_has_docstring(obj):
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 20, f"{obj.__name__} has no docstring"


@pytest.mark.parametrize("func", [o for o in PUBLIC if inspect.isfunction(o)],
                         ids=lambda f: f.__name__)
def test_documents_every_parameter(func):
    doc = inspect.getdoc(func)
    assert "Parameters" in doc and "Returns" in doc, func.__name__
    for name in inspect.signature(func).parameters:
        if name == "progress":
            continue
        assert name in doc, f"{func.__name__}: parameter {name} is not documented"
