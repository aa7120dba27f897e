# Two entry points: `make run` (default scenario to a report) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= r1
ADULTS ?= 100000
OUT ?= runs/$(SCENARIO)

.PHONY: setup run test bench lint

$(BIN)/xinyong: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(BIN)/xinyong

run: setup
	$(BIN)/xinyong run $(SCENARIO) --adults $(ADULTS) --out $(OUT) --overwrite
	$(BIN)/xinyong audit $(OUT)

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_engine.py

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
