# dl-course: `make course` runs the main job, `make test` runs the tests.
# Each target sets up what it needs (.venv, created once, then reused in seconds).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup course test test-fast lint lab bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

course: setup
	$(BIN)/course build

# Every test, on every core (pytest-xdist; a module's tests stay on one worker, so a module's
# shared fixture is built once), one torch thread per test process so the processes do not
# fight over the cores. The longest modules go first (tests/conftest.py's LONGEST_FIRST, not
# xdist's order by test count). It ends with the 30 slowest steps, so a CI log shows where the
# time goes.
XDIST = -n auto --dist loadscope --no-loadscope-reorder
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(XDIST) --durations=30

# The change-test loop: the tests not marked slow, the same way.
test-fast: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow" $(XDIST)

lint: setup
	$(BIN)/ruff check .

lab: setup
	$(BIN)/jupyter lab

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build
