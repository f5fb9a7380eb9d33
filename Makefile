# The product's front door. Both targets build their own virtualenv from nothing but Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export DO_NOT_TRACK ?= 1

.PHONY: venv test test-redshift demo lint bench screenshots clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt setup.py arm_etl/_transform_c.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

test: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(ARGS)

# Opt-in live suite on a real Redshift + S3 (README: "Running against a real Redshift"); skips with one line
# unless ARM_ETL_TEST_* are set. -p loads the AWS credentials snapshot before tests/conftest.py replaces them.
test-redshift: venv
	$(BIN)/python -m pytest -p tests.live.aws_env -q -rfEs tests/live $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: venv
	$(BIN)/arm-etl demo $(ARGS)

# The memory row's 10·N run is planned against a budget counted from make's start (a fresh clone's venv included).
BENCH_STARTED_AT := $(shell date +%s)
bench: venv
	$(BIN)/python -m bench --started-at $(BENCH_STARTED_AT) $(ARGS)

# The README's pictures of the Prefect UI (docs/screenshots/*.png) from real runs on the embedded stack. Playwright
# drives Debian's chromium (`sudo apt-get install -y chromium`); it is installed here only, and downloads no browser.
screenshots: venv
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install -q -c constraints.txt playwright==1.65.2
	$(BIN)/python docs/screenshots.py $(ARGS)

clean:
	rm -rf $(VENV) .arm-etl .pytest_cache .mypy_cache .ruff_cache
