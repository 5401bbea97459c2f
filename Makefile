# Two entry points for a fresh machine (see README): `make run` and `make test`.
# Everything is installed into ./.venv from pyproject.toml; nothing is installed globally.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck clean bench wrk chromium

# One environment for running, testing and benchmarking (the tests smoke-run the benchmarks).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,bench]'
	touch $(STAMP)

install: $(STAMP)

# wrk, the HTTP load generator of the benchmarks, is a Debian package, not a Python one.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		command -v apt-get >/dev/null 2>&1 || { echo "please install wrk (the HTTP load generator)"; exit 1; }; \
		apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

# The dashboard's browser tests drive Debian's headless chromium through its chromedriver
# (Selenium); no browser is downloaded at test time.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
		command -v apt-get >/dev/null 2>&1 || { echo "please install chromium and chromium-driver"; exit 1; }; \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

run: install
	$(BIN)/bank up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: lint typecheck wrk chromium
	$(BIN)/pytest

# The benchmark suite (docs/benchmarks.md): wrk is the HTTP load generator, a Debian package.
bench: install wrk
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var
