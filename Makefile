# Two commands work on a fresh machine: `make demo` and `make test`.
# Both create .venv and install what they need (idempotently: again only when pyproject changes).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.crmlens-installed

.PHONY: install demo test test-fast bench bench-pymc-env clean-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crmlens needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/crmlens demo --workspace crmlens-demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q -m "not slow"

# pymc-marketing, the other library bench/clv.py compares with, lives in its own environment:
# its PyMC/PyTensor stack is heavy and compiles C, and crmlens does not need it.
PYMC_VENV := .venv-pymc
$(PYMC_VENV)/.installed:
	test -x $(PYMC_VENV)/bin/python || $(PYTHON) -m venv $(PYMC_VENV)
	$(PYMC_VENV)/bin/python -m pip install --quiet 'pymc-marketing==0.19.2'
	touch $@

bench-pymc-env: $(PYMC_VENV)/.installed

bench: $(STAMP) bench-pymc-env
	$(PY) bench/ingest.py
	$(PY) bench/segment.py
	$(PY) bench/clv.py
	$(PY) bench/basket.py
	$(PY) bench/churn.py

clean-venv:
	rm -rf $(VENV)
