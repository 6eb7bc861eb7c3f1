# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
RAW_DIR ?= $(or $(LOAN_DEFAULT_RAW_DIR),data/raw)
export LOAN_DEFAULT_RAW_DIR := $(RAW_DIR)
MONTHS ?= 2023-01-01...2025-11-01
BACKTEST_MONTHS ?= 2024-07-01...2025-07-01
DATA_ASSETS := group:bronze or group:silver or group:gold
MODEL_ASSETS := group:models
REPORT_ASSET := key:monitoring/monitoring_report
MONITORING_ASSETS := group:monitoring and not $(REPORT_ASSET)
# Each run: create/migrate the instance once, fail runs whose process died (freeing their pool
# slots), wait while a live run holds the pool, then run as a child that Ctrl-C always stops
# (see README, Recovery).
RECOVER := $(BIN)/python -m loan_default.recovery
DAGSTER_CLI := $(RECOVER) --wait run -- $(BIN)/dagster asset materialize -m loan_default.definitions
SYNTHETIC_LOANS ?= 12500
UI_PORT ?= 3000
API_PORT ?= $(or $(LOAN_DEFAULT_API_PORT),8000)

.PHONY: install data-ready run backfill train predict monitor backtest ui serve run-production backfill-production ui-production serve-production services-up services-down test lint bench synthetic clean

# Re-installs only when pyproject.toml changed since the last install.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	ln -sf ../dagster.yaml $@

# The raw CSVs: the folder's own files when present, otherwise a synthetic set.
data-ready: install
	@if ls $(RAW_DIR)/lms_loan_daily.csv* >/dev/null 2>&1; then \
		echo "Using raw data in $(RAW_DIR)"; \
	else \
		echo "No raw CSVs in $(RAW_DIR): generating a synthetic set ($(SYNTHETIC_LOANS) loans)"; \
		$(BIN)/python -m loan_default.lib.synthetic --out $(RAW_DIR) --loans $(SYNTHETIC_LOANS); \
	fi

# Every data asset for every month in one run, then the models, predictions and monitoring.
run: install data-ready $(DAGSTER_HOME)/dagster.yaml
	$(MAKE) --no-print-directory backfill train predict monitor
	@$(BIN)/python -c 'from loan_default import settings as s; \
		print(f"Warehouse: {s.WAREHOUSE_PATH}\nModel artifacts: {s.ARTIFACT_DIR}\nReports: {s.REPORT_DIR}"); \
		print(f"Monitoring dashboard: {s.REPORT_DIR}/monitoring/monitoring_dashboard.html"); \
		print(f"Model documents: {s.REPORT_DIR}/model_documents/<version>.html")'
	@echo "Runs and asset history: $(DAGSTER_HOME) (see them with 'make ui')"

backfill: install $(DAGSTER_HOME)/dagster.yaml
	$(DAGSTER_CLI) --select '$(DATA_ASSETS)' --partition-range '$(MONTHS)'

# One new version of each model family, the champion/challenger gate, then the model documents.
train: install $(DAGSTER_HOME)/dagster.yaml
	$(DAGSTER_CLI) --select '$(MODEL_ASSETS)'

predict: install $(DAGSTER_HOME)/dagster.yaml
	$(DAGSTER_CLI) --select 'group:predictions' --partition-range '$(MONTHS)'

# Drift, estimated and realized performance for every month, then the report and dashboard.
monitor: install $(DAGSTER_HOME)/dagster.yaml
	$(DAGSTER_CLI) --select '$(MONITORING_ASSETS)' --partition-range '$(MONTHS)'
	$(DAGSTER_CLI) --select '$(REPORT_ASSET)'

# The walk-forward backtest (not part of `make run`): each as-of label month, then the summary.
backtest: install $(DAGSTER_HOME)/dagster.yaml
	$(DAGSTER_CLI) --select 'key:models/backtest' --partition-range '$(BACKTEST_MONTHS)'
	$(DAGSTER_CLI) --select 'key:models/backtest_summary'

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

# The scoring API for the registry's champion on 127.0.0.1 (docs at /docs).
serve: install
	LOAN_DEFAULT_API_PORT=$(API_PORT) $(BIN)/python -m loan_default.serving

# The production profile (README, Production profile): Dagster on PostgreSQL, a DuckLake
# warehouse (catalog in PostgreSQL, files on the S3 server), each month of a backfill its own
# run, MAX_CONCURRENT_RUNS at once. Its instance lives in .dagster_home_production/.
PRODUCTION := DAGSTER_HOME=$(CURDIR)/.dagster_home_production LOAN_DEFAULT_PROFILE=production \
	$(BIN)/python -m loan_default.production

# Services up, then the whole pipeline as `make run` does it, on the production profile.
run-production: install data-ready
	$(PRODUCTION) run --months '$(MONTHS)'

# One backfill on the production profile, e.g. `make backfill-production STEP=data_layers`.
STEP ?= data_layers
backfill-production: install services-up
	$(PRODUCTION) backfill $(STEP) --months '$(MONTHS)'

ui-production: install services-up
	$(PRODUCTION) ui --port $(UI_PORT)

serve-production: install services-up
	LOAN_DEFAULT_API_PORT=$(API_PORT) $(PRODUCTION) serve

# The production profile's PostgreSQL and S3 server on loopback, in .services/ (idempotent).
services-up: install
	$(BIN)/python -m loan_default.services up

# Stops both; the S3 server's objects live in memory and are gone with it.
services-down: install
	$(BIN)/python -m loan_default.services down

synthetic: install
	$(BIN)/python -m loan_default.lib.synthetic --out $(RAW_DIR) --loans $(SYNTHETIC_LOANS)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m loan_default_tests.benchmarks.data_layers
	$(BIN)/python -m loan_default_tests.benchmarks.models
	$(BIN)/python -m loan_default_tests.benchmarks.monitoring
	$(BIN)/python -m loan_default_tests.benchmarks.api
	$(BIN)/python -m loan_default_tests.benchmarks.production

# Also stops the production profile's services and removes their state.
clean:
	rm -rf data/warehouse $(DAGSTER_HOME)
	-test -x $(BIN)/python && $(BIN)/python -m loan_default.services down
	rm -rf .services .dagster_home_production
