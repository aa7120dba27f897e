# Two entry points: `make run` (default scenario to a report) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= r1
ADULTS ?= 100000
OUT ?= runs/$(SCENARIO)

.PHONY: setup kernels run test bench lint

$(BIN)/xinyong: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(BIN)/xinyong

# numba caches each kernel keyed on its own file only, and a kernel's cache holds the helpers
# it calls from other files: after any source change every cache is dropped, so no kernel
# runs a stale copy of a helper; then they are compiled again on small runs (about a
# minute, saying so), so that the run or tests that follow start warm.
KERNELS_FRESH := $(VENV)/.kernels-fresh
$(KERNELS_FRESH): $(shell find src -name '*.py') | $(BIN)/xinyong
	find src -name '*.nbi' -delete -o -name '*.nbc' -delete
	$(BIN)/python -m xinyong.kernels
	touch $@

kernels: $(KERNELS_FRESH)

run: setup kernels
	$(BIN)/xinyong run $(SCENARIO) --adults $(ADULTS) --out $(OUT) --overwrite
	$(BIN)/xinyong audit $(OUT)

test: setup kernels
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -q -n 2

bench: setup kernels
	$(BIN)/python benchmarks/bench_engine.py

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
