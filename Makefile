# piade — the two commands a new machine needs:
#   make demo   create .venv, install piade, train and evaluate on the built-in demo data
#   make test   create .venv, install piade with its dev extra, run lint, types and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest bench convergence clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,onnx,demo]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/piade demo --out piade-demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# One test worker per core, at most four (pytest-xdist): the suite is mostly single-threaded work
# (tiny models, subprocesses, compilers): on two cores 6.1 min against 10.6 min one at a time.
PYTEST_WORKERS ?= $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print(min(4, n or 1))")

pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/predict_e2e.py --onnx

# Loss terms per epoch against the zero-output and mean-image references, paper-literal settings
# against the defaults (docs/training.md). Needs real data, e.g.
#   make convergence ARGS="--data mvtec --root DIR --category bottle --epochs 12 --batch-size 16"
convergence: $(STAMP)
	@test -n "$(ARGS)" || { echo 'usage: make convergence ARGS="--data mvtec --root DIR --category bottle --epochs 12"'; exit 2; }
	$(BIN)/python benchmarks/convergence.py --out runs/convergence \
		--variant literal="--decoder-init orthogonal --squash-a 1" --variant default="" -- $(ARGS)

clean:
	rm -rf $(VENV) piade-demo build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
