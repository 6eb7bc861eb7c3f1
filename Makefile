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
# Each run: create/migrate the instance once, fail runs whose process died (freeing their pool
# slots), wait while a live run holds the pool, then run as a child that Ctrl-C always stops
# (see README, Recovery).
RECOVER := $(BIN)/python -m loan_default.recovery
DAGSTER_CLI := $(RECOVER) --wait run -- $(BIN)/dagster asset materialize -m loan_default.definitions
# The pipeline's steps (loan_default/pipeline.py: data, models, predictions, monitoring, report,
# backtest, backtest_summary), each a Dagster run, all in one process that loads the code location
# once; it recovers the instance as above and Ctrl-C always stops it. Dagster's events go to a
# log file under $(DAGSTER_HOME)/pipeline_logs/, the terminal gets a line per step.
PIPELINE := $(BIN)/python -m loan_default.pipeline run
SYNTHETIC_LOANS ?= 12500
UI_PORT ?= 3000
API_PORT ?= $(or $(LOAN_DEFAULT_API_PORT),8000)

.PHONY: install data-ready run backfill train predict monitor backtest replay ui-replay ui serve run-production backfill-production ui-production serve-production services-up services-down test lint bench synthetic clean promote rollback

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
	$(PIPELINE) --months '$(MONTHS)'
	@$(BIN)/python -c 'from loan_default import settings as s; \
		print(f"Warehouse: {s.WAREHOUSE_PATH}\nModel artifacts: {s.ARTIFACT_DIR}\nReports: {s.REPORT_DIR}"); \
		print(f"Monitoring dashboard: {s.REPORT_DIR}/monitoring/monitoring_dashboard.html"); \
		print(f"Model documents: {s.REPORT_DIR}/model_documents/<version>.html")'
	@echo "Runs and asset history: $(DAGSTER_HOME) (see them with 'make ui')"

backfill: install $(DAGSTER_HOME)/dagster.yaml
	$(PIPELINE) --steps data --months '$(MONTHS)'

# One new version of each model family, the champion/challenger gate, then the model documents.
train: install $(DAGSTER_HOME)/dagster.yaml
	$(PIPELINE) --steps models

predict: install $(DAGSTER_HOME)/dagster.yaml
	$(PIPELINE) --steps predictions --months '$(MONTHS)'

# Drift, estimated and realized performance for every month, then the report and dashboard.
monitor: install $(DAGSTER_HOME)/dagster.yaml
	$(PIPELINE) --steps monitoring,report --months '$(MONTHS)'

# The walk-forward backtest (not part of `make run`): each as-of label month, then the summary.
backtest: install $(DAGSTER_HOME)/dagster.yaml
	$(PIPELINE) --steps backtest,backtest_summary --months '$(BACKTEST_MONTHS)'

# The platform operated month by month on an as-of clock (README, Replay): the real data by
# default, or a synthetic scenario (REPLAY_SCENARIO=drift or stable); everything in
# data/replay/<name>/, its runs in that folder's instance (`make ui-replay` shows them).
REPLAY_SCENARIO ?=
REPLAY_MONTHS ?=
REPLAY_NAME := $(or $(REPLAY_SCENARIO),replay)
replay: install
	$(BIN)/python -m loan_default.replay --source '$(RAW_DIR)' \
		$(if $(REPLAY_SCENARIO),--scenario $(REPLAY_SCENARIO)) \
		$(if $(REPLAY_MONTHS),--months '$(REPLAY_MONTHS)')

# The webserver alone: the history as it happened, no daemon acting on it.
ui-replay: install
	DAGSTER_HOME=$(CURDIR)/data/replay/$(REPLAY_NAME)/dagster_home \
		$(BIN)/python -m loan_default.replay --dir data/replay/$(REPLAY_NAME) --ui --port $(UI_PORT)

# An operator's change of champion (README, Manual promotion and rollback), recorded with its
# reason and who ran it: `make promote VERSION=<version_id> REASON="..."`, `make rollback
# REASON="..."` (DECIDED_BY=... defaults to the OS user). The job is the gate asset with that
# config, and the same run re-scores and re-monitors $(MONTHS) (the run's partition range tags)
# and writes the model documents. The values reach the run config and tags through the
# environment and json.dumps, so any text is safe in them.
MANUAL_PROMOTION := $(RECOVER) --wait run -- $(BIN)/dagster job execute \
	-m loan_default.definitions -j manual_promotion
PROMOTION_CONFIG := $(BIN)/python -c 'import json, os; \
	names = ("action", "version", "reason", "decided_by"); \
	given = {n: os.environ.get("PROMOTION_" + n.upper(), "") for n in names}; \
	config = {n: v for n, v in given.items() if v.strip()}; \
	print(json.dumps({"ops": {"models__champion": {"config": config}}}))'
PROMOTION_TAGS := $(BIN)/python -c 'import datetime, json, os; \
	first, _, last = os.environ["PROMOTION_MONTHS"].partition("..."); \
	months = [datetime.date.fromisoformat(m.strip()).isoformat() for m in (first, last or first)]; \
	keys = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end"); \
	print(json.dumps(dict(zip(keys, months))))'
promote: export PROMOTION_ACTION = promote
rollback: export PROMOTION_ACTION = rollback
promote rollback: export PROMOTION_VERSION = $(value VERSION)
promote rollback: export PROMOTION_REASON = $(value REASON)
promote rollback: export PROMOTION_DECIDED_BY = $(value DECIDED_BY)
promote rollback: export PROMOTION_MONTHS = $(value MONTHS)

promote rollback: install $(DAGSTER_HOME)/dagster.yaml
	@test -n "$$PROMOTION_REASON" || { \
		echo 'REASON is required: make $@ $(if $(filter promote,$@),VERSION=<version_id> )REASON="why"' >&2; \
		exit 2; }
	@config=$$(mktemp --suffix=.yaml) && trap 'rm -f "$$config"' EXIT && \
		$(PROMOTION_CONFIG) > "$$config" && tags=$$($(PROMOTION_TAGS)) && \
		$(MANUAL_PROMOTION) -c "$$config" --tags "$$tags"

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

# The scoring API for the registry's champion on 127.0.0.1 (docs at /docs).
serve: install
	LOAN_DEFAULT_API_PORT=$(API_PORT) $(BIN)/python -m loan_default.serving

# The production profile (README, Production profile): Dagster on PostgreSQL, a DuckLake
# warehouse (catalog in PostgreSQL, files on the S3 server). `run-production` runs each step as
# one run, as `make run` does; a backfill splits months into runs, MAX_CONCURRENT_RUNS at once.
# Its instance lives in .dagster_home_production/.
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

# Every test, on TEST_WORKERS pytest-xdist workers: more than the two cores, since many tests
# wait on subprocesses and servers. Each module runs on one worker (--dist loadscope), the
# slowest modules first (the order loan_default_tests/conftest.py gives them); the ten slowest
# tests are listed at the end.
TEST_WORKERS ?= 4
test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=10

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m loan_default_tests.benchmarks.data_layers
	$(BIN)/python -m loan_default_tests.benchmarks.models
	$(BIN)/python -m loan_default_tests.benchmarks.monitoring
	$(BIN)/python -m loan_default_tests.benchmarks.api
	$(BIN)/python -m loan_default_tests.benchmarks.production
	$(BIN)/python -m loan_default_tests.benchmarks.production --whole-pipeline --rounds 3 --scales
	$(BIN)/python -m loan_default_tests.benchmarks.replay
	$(BIN)/python -m loan_default_tests.benchmarks.training_choices

# Also stops the production profile's services and removes their state.
clean:
	rm -rf data/warehouse $(DAGSTER_HOME)
	-test -x $(BIN)/python && $(BIN)/python -m loan_default.services down
	rm -rf .services .dagster_home_production
