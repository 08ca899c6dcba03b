# `make run` and `make test` work on a fresh clone: both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install run serve test lint bench bench-smoke clean

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

## The bench extra (official ElevenLabs SDK, py-spy) and wrk (Debian's package; installed when
## possible, else the bench says how to get it).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -qq wrk; } || echo "wrk is missing: sudo apt-get install -y wrk"
	touch $(BENCH_STAMP)

## Every benchmark in one run (~10 min), one table, written to docs/performance.md.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

## The same scenarios at tiny sizes: proves the harness works (CI), measures nothing.
bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
