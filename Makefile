# MedSeg: `make demo` runs the main job on the bundled sample, `make test` runs the headless suite.
# Both set up .venv on first use (Python 3.11+; torch 2.13.0, CPU build where that is what pip finds).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medseg-installed

.PHONY: demo test bench clean-venv

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("MedSeg needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/medseg demo --output out

test: $(STAMP)
	$(BIN)/python -m pytest -q Testing

bench: $(STAMP)
	$(BIN)/python Testing/benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
