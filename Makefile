# Two entry points, both idempotent: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test provision env-up env-down clean-runs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

provision: $(STAMP)
	$(PY) -m chaos env install
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

run: provision
	$(PY) -m chaos run experiments/quickstart.yaml

test: provision
	$(PY) -m pytest -ra

env-up: provision
	$(PY) -m chaos env up

env-down: $(STAMP)
	$(PY) -m chaos env down

clean-runs:
	rm -rf runs
