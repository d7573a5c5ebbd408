# Two entry points, both idempotent: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test provision env-up env-down clean-runs bench bench-certify soak mutation docker-images

# The testbed, and the example plug-in (examples/postgres-connector) that its tests certify.
$(STAMP): pyproject.toml examples/postgres-connector/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet -e examples/postgres-connector
	touch $(STAMP)

# chromium renders the reports in tests; fuse3 serves a run's output through lazyfs (lost unfsynced writes);
# debootstrap makes the base of the Docker backend's local images (the Docker tests start dockerd themselves).
provision: $(STAMP)
	$(PY) -m chaos env install
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@command -v fusermount3 >/dev/null || (apt-get update -qq && apt-get install -y -qq fuse3 >/dev/null)
	@command -v debootstrap >/dev/null || (apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null)

run: provision
	$(PY) -m chaos run experiments/quickstart.yaml

# Two pytest-xdist workers, scheduled by module (conftest.py): about 25 minutes instead of 48 in one process.
# `PYTEST_WORKERS=0 make test` runs it in one process.
PYTEST_WORKERS ?= 2
test: provision
	$(PY) -m pytest -n $(PYTEST_WORKERS) -ra --durations=30

# The Docker backend's images built here from Debian's packages and our Kafka jars and Toxiproxy, with no
# registry (dockerd is started for the build if none runs); prints the CHAOS_*_IMAGE settings that use them.
docker-images: provision
	$(PY) -m chaos env images

# The benchmarks, one after another (about an hour; not part of `test`): every figure of docs/benchmarks.md's
# summary, the certification suite's and the test suite's wall times included. Figures go to bench/results/*.json.
bench: $(STAMP)
	$(PY) -m chaos env install
	$(PY) -m bench.checkers
	$(PY) -m bench.pipeline
	$(PY) -m bench.toxiproxy
	$(PY) -m bench.environment
	$(PY) -m bench.certify
	$(PY) -m bench.suite

# Wall time of `chaos certify --quick` and of the full suite (about half an hour).
bench-certify: $(STAMP)
	$(PY) -m chaos env install
	$(PY) -m bench.certify

# False alarms under load: the quick certification suite five times beside stress-ng and a
# connection churner (over half an hour; not part of `test`).
soak: provision
	@command -v stress-ng >/dev/null || (apt-get update -qq && apt-get install -y -qq stress-ng >/dev/null)
	$(PY) -m bench.soak

# Mutation testing of the checkers and the certification evidence against the unit tests (mutmut;
# minutes, not part of `test`). Fails below a 90% kill rate on chaos/checkers/.
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[mutation]'
	$(PY) -m bench.mutation

env-up: provision
	$(PY) -m chaos env up

env-down: $(STAMP)
	$(PY) -m chaos env down

clean-runs:
	rm -rf runs
