# Two commands for a new user: `make demo` (install + run on the bundled sample) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench slides clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/fma-genre predict data/sample

test: install
	$(BIN)/python -m pytest

# each benchmark writes reports/benchmarks_<name>.json + .md; render_docs copies the tables into README.md
bench: install
	$(BIN)/python benchmarks/frontend.py
	$(BIN)/python benchmarks/cache.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/predict.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python scripts/render_docs.py

# the deck from a pipeline run (default: a fresh --quick run on the bundled sample)
RUN ?= runs/sample
slides: install
	test -f $(RUN)/run.json || $(BIN)/fma-genre pipeline --quick --out $(RUN)
	$(BIN)/fma-genre slides --run $(RUN)

clean:
	rm -rf $(VENV) .pytest_cache
