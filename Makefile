# `make demo`: set up, build sample models with the real libraries, scan them.
# `make test`: set up and run the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python samples/build_samples.py samples/out
	@echo "--- scanning the sample models (honest ones should be clean, malicious ones flagged) ---"
	$(BIN)/modelaudit scan samples/out; status=$$?; test $$status -eq 1 || { echo "unexpected exit code $$status"; exit 1; }

test: setup
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) samples/out bench/out .pytest_cache
