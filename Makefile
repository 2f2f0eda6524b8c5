# movielens-rec — every target installs what it needs first (idempotent; skipped when unchanged).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.install-stamp
# `make ui` listens on http://127.0.0.1:$(UI_PORT) (`UI_PORT=3001 make ui` when 3000 is taken)
UI_PORT ?= 3000

# Persistent Dagster instance inside the checkout (run history survives between commands).
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
override DAGSTER_HOME := $(abspath $(DAGSTER_HOME))
export DAGSTER_HOME
# Template its dagster.yaml is created from (once): config/dagster-postgres.yaml keeps the instance in PostgreSQL.
DAGSTER_YAML ?= config/dagster.yaml
# MOVIELENS_DATASET / MOVIELENS_DATA_DIR / ... pass through from the environment unchanged.

.PHONY: install demo test ui lint lock bench-ingest clean-venv dagster-home

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

dagster-home: $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: $(DAGSTER_YAML)
	@mkdir -p $(DAGSTER_HOME)
	@test -f $@ || cp $(DAGSTER_YAML) $@

demo: install dagster-home
	$(BIN)/python -m movielens_assets.demo

test: install dagster-home
	$(BIN)/python -m pytest

# ruff (pyflakes, pycodestyle, isort, pyupgrade, bugbear) and mypy on movielens_assets/ (pyproject.toml)
lint: install
	$(BIN)/ruff check movielens_assets movielens_assets_tests benchmarks scripts
	$(BIN)/mypy

ui: install dagster-home
	$(BIN)/dagster dev -h 127.0.0.1 -p $(UI_PORT)

bench-ingest: install
	$(BIN)/python benchmarks/ingest.py

lock: install
	@{ head -2 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed -E 's/^(torch==[0-9.]+)\+.*/\1/'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean-venv:
	rm -rf $(VENV)
