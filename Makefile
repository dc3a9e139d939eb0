# Two commands work on a fresh machine: `make demo` and `make test`.
# Both create .venv and install what they need (idempotently: again only when pyproject changes).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.crmlens-installed

.PHONY: install demo test test-fast bench clean-venv

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

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/segment.py
	$(PY) bench/clv.py

clean-venv:
	rm -rf $(VENV)
