# Two commands for a new user: `make demo` (install + run on the bundled sample) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench notebooks slides deck clean

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
	$(BIN)/python benchmarks/picture.py
	$(BIN)/python benchmarks/cache.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/predict.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python scripts/render_docs.py

# notebooks/executed/: the five notebooks run on every fma_small picture of ../shared/data/fma_small_mel
# (training and validation; the pipeline's defaults: cnn1d, 4 epochs), outputs kept, made fit to commit
notebooks: install
	$(BIN)/fma-genre pipeline --out runs/executed --force
	$(BIN)/python -m utils.apps.notebooks runs/executed notebooks/executed

# the deck from a pipeline run (default: a fresh --quick run, a slice of fma_small, marked as a smoke test)
RUN ?= runs/sample
slides: install
	test -f $(RUN)/run.json || $(BIN)/fma-genre pipeline --quick --out $(RUN)
	$(BIN)/fma-genre slides --run $(RUN)

# the deck to present: from the full fma_small run that made notebooks/executed/ (runs/executed; run first
# when absent), with the project's reports
deck: install
	test -f runs/executed/run.json || $(MAKE) notebooks
	$(BIN)/fma-genre slides --run runs/executed

clean:
	rm -rf $(VENV) .pytest_cache
