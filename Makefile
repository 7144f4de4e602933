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
	$(BIN)/python benchmarks/cache.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/predict.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python scripts/render_docs.py

# notebooks/executed/: the five notebooks run on the pipeline's default data (../shared/data/gtzan_mini,
# 3 epochs), outputs kept, made fit to commit
notebooks: install
	$(BIN)/fma-genre pipeline --out runs/executed --force
	$(BIN)/python -m utils.apps.notebooks runs/executed notebooks/executed

# the deck from a pipeline run (default: a fresh --quick run on ../shared/data/gtzan_mini)
RUN ?= runs/sample
slides: install
	test -f $(RUN)/run.json || $(BIN)/fma-genre pipeline --quick --out $(RUN)
	$(BIN)/fma-genre slides --run $(RUN)

# the deck to present: the pipeline on a GTZAN folder whose numbers mean something (default: the 70-clip
# set beside the repository; resumed if it stopped), then the slides from that run
GTZAN ?= ../shared/data/gtzan_mini
EPOCHS ?= 10
deck: install
	$(BIN)/fma-genre pipeline --root $(GTZAN) --epochs $(EPOCHS) --patience 3 --out runs/gtzan $$(test -f runs/gtzan/run.json && echo --resume)
	$(BIN)/fma-genre slides --run runs/gtzan

clean:
	rm -rf $(VENV) .pytest_cache
