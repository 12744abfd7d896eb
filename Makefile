# `make` sets up .venv, fetches or verifies the data, and executes every notebook with papermill
# at the default profile (quick), writing executed notebooks to build/ and outputs to figures/.
# `make test` runs the unit tests, ruff and every notebook at the smoke profile under nbval.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
N_JOBS ?= 2
NOTEBOOKS := $(shell find notebooks -name '*.ipynb' -not -path '*checkpoint*' | sort)

# Without a network, point these at local copies. A `shared/data` directory beside the
# checkout (as on the project's own machines) is used when they are unset.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/uci),)
export COMPANION_UCI_DIR ?= $(SHARED_DATA)/uci
endif
ifneq ($(wildcard $(SHARED_DATA)/cifar10-jpg.tar.gz),)
export COMPANION_CIFAR10_JPG ?= $(SHARED_DATA)/cifar10-jpg.tar.gz
endif

.PHONY: all install data notebooks test lint lab bench verify clean

all: notebooks

install: $(VENV)/.installed

# torch first and pinned: the local CPU wheel, never a CUDA build pulled in by another package.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

data: install
	$(BIN)/python -m companion.data

notebooks: data
	@mkdir -p build
	@for notebook in $(NOTEBOOKS); do \
		echo "== $$notebook ($(PROFILE))"; \
		mkdir -p build/$$(dirname $$notebook); \
		start=$$(date +%s); \
		$(BIN)/papermill --no-progress-bar --log-level ERROR $$notebook build/$$notebook \
			-p profile $(PROFILE) -p n_jobs $(N_JOBS) || exit 1; \
		echo "   done in $$(( $$(date +%s) - start )) s"; \
	done

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
	$(BIN)/jupyter lab notebooks

# Rerun the committed paper-profile records that took under a minute; report identical/differs.
verify: data
	$(BIN)/python -m companion.verify $(VERIFY_ARGS)

bench: install
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build
