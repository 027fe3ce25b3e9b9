# Two commands: `make run` starts `fleetpulse up`; `make test` runs lint and the whole suite.
# Both create .venv and install what they need; a stamp keeps the second run fast.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test lint format bench clean vendor screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The console's charting library (uPlot, pinned in console/package-lock.json): `npm ci` when
# console/static/vendor/ is missing or stale. Without npm it says so and the console starts
# anyway, saying what is missing.
vendor:
	-$(PYTHON) tools/packaging/console_vendor.py

run: $(VENV)/.installed-run vendor
	$(BIN)/fleetpulse up $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/fleetpulse dashboards --check

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint vendor
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks print tables against peers in the same run (node_exporter, Prometheus); they
# never fail on speed. The Docker engine makes the container figures possible.
bench: $(VENV)/.installed-test
	bench/install-peers
	-.ci/start-docker >/dev/null
	for b in parse exporter collector storage alerting console; do \
		echo "== bench/$$b.py"; $(BIN)/python -m bench.$$b || exit 1; done

# PNGs of the console's pages for the README (docs/img/), from `fleetpulse up` scraping
# synthetic hosts, taken by Debian's chromium
screenshots: $(VENV)/.installed-test vendor
	$(BIN)/python -m bench.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
