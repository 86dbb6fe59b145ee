# Every target creates .venv on first use, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check robust_saliency experiments benchmarks tests

bench: $(STAMP)
	$(PY) -m benchmarks.lin_robustness
	$(PY) -m benchmarks.train_epoch
	$(PY) -m benchmarks.attacks

clean:
	rm -rf $(VENV) build *.egg-info
