# Two commands for a new user: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Tests and the demo run on the CPU; quieter TensorFlow logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo lint test test-fast bench bench-env clean

setup: $(STAMP)

# Reinstall only when the requirement files change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(BIN)/kit demo

# ruff (lint and import order) and the stages of the data flow (pyproject.toml's import-linter
# contract: a lower stage never imports a higher one).
lint: setup
	$(BIN)/python -m ruff check kit tests bench
	$(BIN)/lint-imports

# The lint, the tests, and the examples in the package's docstrings (doctests).
test: setup lint
	$(BIN)/python -m pytest -q --doctest-modules kit tests

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" --doctest-modules kit tests

# Long runs against peers and targets; numbers go to bench/README.md and bench/RESULTS.md.
# bench/peers.py trains the whole ladder (and the peers, once `make bench-env` has run).
bench: setup
	$(BIN)/python bench/bench_prepare.py
	$(BIN)/python bench/bench_score.py
	$(BIN)/python bench/bench_siamese.py --spectra ../shared/data/massbank/massbank_positive.mgf.gz
	$(BIN)/python bench/bench_scale.py --scales 1,3,10
	$(BIN)/python bench/peers.py

# The peers' environment (ms2deepscore on PyTorch) stays apart from TensorFlow: both in one
# process can crash. Not part of `setup`. PyTorch goes in first, alone, so the CPU build
# pinned in requirements-peers.txt is what ms2deepscore finds (no CUDA build is pulled).
BENCH_VENV := $(VENV)-bench

bench-env: $(BENCH_VENV)/.installed

$(BENCH_VENV)/.installed: bench/requirements-peers.txt pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet "$$(grep -E '^torch==' bench/requirements-peers.txt)"
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements-peers.txt
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf $(VENV) $(VENV)-bench .pytest_cache
