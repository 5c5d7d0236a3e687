# Two commands for a new user: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Tests and the demo run on the CPU; quieter TensorFlow logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test test-fast bench bench-env clean

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

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# Long runs against peers and targets; numbers go to bench/README.md.
bench: setup
	$(BIN)/python bench/bench_prepare.py
	$(BIN)/python bench/bench_ladder.py

# The peers' environment (ms2deepscore on PyTorch) stays apart from TensorFlow.
bench-env: $(VENV)-bench/.installed

$(VENV)-bench/.installed: bench/requirements-peers.txt
	test -x $(VENV)-bench/bin/python || $(PYTHON) -m venv $(VENV)-bench
	$(VENV)-bench/bin/python -m pip install --quiet --upgrade pip
	$(VENV)-bench/bin/python -m pip install --quiet -r bench/requirements-peers.txt
	$(VENV)-bench/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf $(VENV) $(VENV)-bench .pytest_cache
