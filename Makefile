# `make run` and `make test` work on a fresh clone: both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## The service's main job on embedded defaults: SQLite, demo trips, simulated providers on loopback.
run: $(STAMP)
	$(BIN)/violation-calls demo

## The real service: real providers from ELEVENLABS_* / VAPI_* settings, never simulated.
serve: $(STAMP)
	$(BIN)/violation-calls serve

## The whole test suite (PostgreSQL cases skip with a reason when 127.0.0.1:5432 is down).
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
