# `make` sets up .venv, fetches or verifies the data, executes every notebook with papermill at
# the default profile (quick) into build/notebooks/, renders every notebook at the paper profile
# from the committed records (no training) into build/notebooks/paper/, writes the scorecard
# (figures/scorecard.md and the README block), the figure gallery and an HTML site
# (build/site/index.html), and prints where to look.
# `make test` runs the unit tests, ruff and every notebook at the smoke profile under nbval.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
N_JOBS ?= 2
NOTEBOOKS := $(shell find notebooks -name '*.ipynb' -not -path '*checkpoint*' | sort)
# JupyterLab refuses to start as root unless told; containers often run as root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root)
# The kernel's debugger warns about frozen modules at every start; nothing uses the debugger.
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# Without a network, point these at local copies. A `shared/data` directory beside the
# checkout (as on the project's own machines) is used when they are unset.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/uci),)
export COMPANION_UCI_DIR ?= $(SHARED_DATA)/uci
endif
ifneq ($(wildcard $(SHARED_DATA)/cifar10-jpg.tar.gz),)
export COMPANION_CIFAR10_JPG ?= $(SHARED_DATA)/cifar10-jpg.tar.gz
endif

.PHONY: all install data notebooks paper-notebooks scorecard site test lint lab bench verify sweep sweep-missing clean

all: notebooks paper-notebooks scorecard site
	@echo ""
	@echo "Where to look:"
	@echo "  figures/scorecard.md     the verdict on every claim (also at the top of README.md)"
	@echo "  build/site/index.html    every executed notebook as HTML: paper item, runtime, verdict"
	@echo "  build/notebooks/paper/   the notebooks at the paper profile, from the committed records"
	@echo "  build/notebooks/         the notebooks at the $(PROFILE) profile"
	@echo "  figures/README.md        gallery of the paper-profile plots"

install: $(VENV)/.installed

# What the runs and notebooks import, checked once after the install: a CI run once found
# matplotlib unpacked without its compiled module, and every test module failed to import.
IMPORT_CHECK := import matplotlib.pyplot, numpy, pandas, scipy.stats, sklearn.ensemble, statsmodels.api, torch
COMPILED_PACKAGES := matplotlib contourpy kiwisolver pillow numpy pandas scipy scikit-learn statsmodels
# The same versions again (name==version from their metadata, which a broken unpack keeps).
PINNED_COMPILED := from importlib.metadata import version; print(*(f"{name}=={version(name)}" for name in "$(COMPILED_PACKAGES)".split()))

# torch first and pinned: the local CPU wheel, never a CUDA build pulled in by another package.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	@$(BIN)/python -c '$(IMPORT_CHECK)' || { \
	  echo "A compiled package did not import (a partly unpacked wheel?): reinstalling them"; \
	  $(BIN)/pip install --quiet --force-reinstall --no-deps --no-cache-dir $$($(BIN)/python -c '$(PINNED_COMPILED)'); \
	  $(BIN)/python -c '$(IMPORT_CHECK)'; }
	touch $@

data: install
	$(BIN)/python -m companion.data

notebooks: data
	$(BIN)/python -m companion.site execute --profile $(PROFILE) --n-jobs $(N_JOBS)

# From the committed records only: seconds per notebook, nothing trained.
paper-notebooks: install
	$(BIN)/python -m companion.site render-paper

scorecard: install
	$(BIN)/python -m companion.scorecard --readme README.md > /dev/null
	$(BIN)/python -m companion.site gallery

site: install
	$(BIN)/python -m companion.site html

lint: install
	$(BIN)/ruff check src tests benchmarks

# Notebooks run at smoke; records and figures of the tests go to a temporary directory.
test: lint
	@tmp=$$(mktemp -d); \
	COMPANION_PROFILE=smoke COMPANION_RESULTS_DIR=$$tmp/results \
	COMPANION_FIGURES_DIR=$$tmp/figures \
	$(BIN)/python -m pytest tests $(NOTEBOOKS) --nbval-lax -p no:cacheprovider; \
	status=$$?; rm -rf $$tmp; exit $$status

lab: install
	$(BIN)/jupyter lab $(LAB_FLAGS) notebooks

# Rerun the committed paper-profile records that took under a minute; report identical/differs.
# `make verify VERIFY_ARGS=--per-version`: the cheapest run of each earlier run-code version,
# recorded in results/verification.json, which the class-lr tables cite.
verify: data
	$(BIN)/python -m companion.verify $(VERIFY_ARGS)

# The paper-profile records Table 2 still lacks (seeds 0-4 of all six columns), resumable: on a
# GPU `make sweep DEVICE=cuda N_JOBS=4` (several runs share it), on a Dask cluster
# `make sweep SCHEDULER=tcp://host:8786`. `make sweep-missing` lists them with their compute.
# `CUTOFFS=10` (then 20, then 30) runs one class-lr cutoff per job, for machines that do not
# outlive a chess-krvk group of three (4-5 hours on one core).
DEVICE ?= cpu
SCHEDULER ?=
CUTOFFS ?=
SWEEP := $(BIN)/python -m companion.class_lr.sweep --profile paper --methods baseline class_lr \
	--seeds 0 1 2 3 4$(if $(CUTOFFS), --cutoffs $(CUTOFFS))
sweep: data
	$(SWEEP) --device $(DEVICE) --n-jobs $(N_JOBS) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

sweep-missing: install
	$(SWEEP) --missing

bench: install
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build
