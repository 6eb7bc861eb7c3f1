"""Load-time settings: what shapes the asset graph itself, read once from the environment.

Run-time knobs (cleaning date format, training windows) are Dagster Config and resources; these
are the values that partition definitions and mappings need before any run exists, such as the
label's month on book, which offsets monitoring's partition mapping.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from loan_default.lib.gold.label_contract import LabelDefinition
from loan_default.lib.gold.lookback import ClickstreamLookback

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    path = Path(value) if value else default
    return path if path.is_absolute() else PROJECT_ROOT / path


def _env_month(name: str, default: str) -> date:
    return date.fromisoformat(os.environ.get(name, default)).replace(day=1)


RAW_DIR = _env_path("LOAN_DEFAULT_RAW_DIR", Path("data/raw"))
WAREHOUSE_PATH = _env_path("LOAN_DEFAULT_WAREHOUSE", Path("data/warehouse/loan_default.duckdb"))
ARTIFACT_DIR = _env_path("LOAN_DEFAULT_ARTIFACTS", Path("data/artifacts"))
REPORT_DIR = _env_path("LOAN_DEFAULT_REPORTS", Path("data/reports"))
RAW_DATE_FORMAT = os.environ.get("LOAN_DEFAULT_DATE_FORMAT", "%Y-%m-%d")
# The raw files a replay (python -m loan_default.replay) delivers month by month into RAW_DIR.
REPLAY_SOURCE = os.environ.get("LOAN_DEFAULT_REPLAY_SOURCE")

# Monthly partitions, first and last month inclusive.
FIRST_MONTH = _env_month("LOAN_DEFAULT_FIRST_MONTH", "2023-01-01")
LAST_MONTH = _env_month("LOAN_DEFAULT_LAST_MONTH", "2025-11-01")

# The clickstream lookback, declared once: months of clickstream averaged into a feature row,
# ending at the application month, and a second, longer average of the same clickstream (all
# history it covers, up to T). The feature store, its partition mapping and the API read it.
CLICKSTREAM_LOOKBACK = ClickstreamLookback(
    months=int(os.environ.get("LOAN_DEFAULT_CLICKSTREAM_WINDOW", "6")),
    long_months=int(os.environ.get("LOAN_DEFAULT_CLICKSTREAM_LONG_WINDOW", "24")),
)

# The label, declared once: default when days past due >= the threshold at this month on book.
# The label store, training, the gate, monitoring's offset join (label month T against the
# scores of T - mob), the reports and the API's docs all read this one definition.
LABEL = LabelDefinition(
    dpd_threshold=int(os.environ.get("LOAN_DEFAULT_LABEL_DPD", "30")),
    mob=int(os.environ.get("LOAN_DEFAULT_LABEL_MOB", "6")),
)

# DuckDB's memory cap and threads for every warehouse connection of the pipeline, so a large
# backfill spills to disk instead of growing (threads: all cores when unset).
DUCKDB_MEMORY = os.environ.get("LOAN_DEFAULT_DUCKDB_MEMORY", "3GB")
DUCKDB_THREADS = (
    int(os.environ["LOAN_DEFAULT_DUCKDB_THREADS"])
    if os.environ.get("LOAN_DEFAULT_DUCKDB_THREADS")
    else None
)

OWNERS = ["team:credit-risk"]

# The Dagster instance folder (the Makefile exports it); recovery refuses to guess one.
DAGSTER_HOME = os.environ.get("DAGSTER_HOME")

# Real-time scoring API (loan_default/serving): where `make serve` listens, and how often the
# server re-reads the registry's champion (seconds) to pick up a promotion without a restart.
API_HOST = os.environ.get("LOAN_DEFAULT_API_HOST", "127.0.0.1")
API_PORT = int(os.environ.get("LOAN_DEFAULT_API_PORT", "8000"))
API_REGISTRY_REFRESH_SECONDS = float(os.environ.get("LOAN_DEFAULT_API_REFRESH_SECONDS", "5"))
# Most applications one POST /predict may carry.
API_MAX_BATCH = int(os.environ.get("LOAN_DEFAULT_API_MAX_BATCH", "5000"))
# Largest request body in bytes (413 above it, refused before it is read): 16 KiB per
# application of a full batch, room for 24 months of clickstream each, indented.
API_MAX_BODY_BYTES = int(
    os.environ.get("LOAN_DEFAULT_API_MAX_BODY_BYTES", str(API_MAX_BATCH * 16 * 1024))
)
# Threads per scoring library (polars, OpenMP, BLAS) in the server: requests are small, and
# pools spinning up per request cost more latency than they save on a shared machine.
API_SCORING_THREADS = int(os.environ.get("LOAN_DEFAULT_API_THREADS", "1"))
# The variables those libraries size their thread pools from, each read once as it loads.
SCORING_THREAD_VARIABLES = (
    "POLARS_MAX_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
# CPUs the server runs on: "last" (one CPU, the last this process may use), "all" (no pinning)
# or a comma-separated list of CPU numbers.
API_CPUS = os.environ.get("LOAN_DEFAULT_API_CPUS", "last")


def cap_scoring_threads() -> None:
    """Caps each scoring library's threads at API_SCORING_THREADS where the environment does not
    already set them. Call it before polars, numpy or torch are imported: every thread they
    start inherits the cap, and a library imported earlier has already sized its pool."""
    for name in SCORING_THREAD_VARIABLES:
        os.environ.setdefault(name, str(API_SCORING_THREADS))


# The deployment profile, chosen by configuration alone (README, Production profile):
# "embedded" (the default: one DuckDB file with Parquet layers, a SQLite Dagster instance, every
# warehouse step in a pool of one) or "production" (a DuckLake warehouse, catalog in PostgreSQL
# and data files on S3-compatible object storage; Dagster's instance on PostgreSQL; months of a
# backfill as separate runs side by side).
PROFILE = os.environ.get("LOAN_DEFAULT_PROFILE", "embedded")
if PROFILE not in ("embedded", "production"):
    raise ValueError(f"LOAN_DEFAULT_PROFILE is {PROFILE!r}: use 'embedded' or 'production'")
PRODUCTION = PROFILE == "production"

# Months per run of a backfill: 0 is one run for the whole range (the embedded default); N splits
# a backfill into runs of N months each. The production default suits one machine, where each
# run's start-up outweighs a month's work; on a cluster, 1 (deploy/kubernetes).
BACKFILL_MONTHS_PER_RUN = int(
    os.environ.get("LOAN_DEFAULT_BACKFILL_MONTHS_PER_RUN", "6" if PRODUCTION else "0")
)

# Most runs the production instance starts at once (its queued run coordinator): months of a
# backfill run side by side up to this many.
MAX_CONCURRENT_RUNS = int(os.environ.get("LOAN_DEFAULT_MAX_CONCURRENT_RUNS", "4"))

# The production profile's services. On one machine the project starts them itself on loopback
# (`python -m loan_default.services up`): a throwaway PostgreSQL cluster initialised into
# SERVICES_DIR, and an S3-compatible server (moto). A cluster points these at its own.
SERVICES_DIR = _env_path("LOAN_DEFAULT_SERVICES_DIR", Path(".services"))
POSTGRES_BIN_DIR = Path(os.environ.get("LOAN_DEFAULT_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
# The system user the throwaway cluster runs as when started by root (initdb refuses root).
POSTGRES_OS_USER = os.environ.get("LOAN_DEFAULT_POSTGRES_OS_USER", "postgres")
POSTGRES_HOST = os.environ.get("LOAN_DEFAULT_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("LOAN_DEFAULT_PG_PORT", "55432"))
POSTGRES_USER = os.environ.get("LOAN_DEFAULT_PG_USER", "loan_default")
POSTGRES_PASSWORD = os.environ.get("LOAN_DEFAULT_PG_PASSWORD", "loan_default")
# Two databases: Dagster's instance (runs, events, schedules) and the warehouse's catalog.
POSTGRES_DAGSTER_DB = os.environ.get("LOAN_DEFAULT_PG_DAGSTER_DB", "dagster")
POSTGRES_CATALOG_DB = os.environ.get("LOAN_DEFAULT_PG_CATALOG_DB", "warehouse_catalog")
S3_ENDPOINT = os.environ.get("LOAN_DEFAULT_S3_ENDPOINT", "http://127.0.0.1:55433")
S3_BUCKET = os.environ.get("LOAN_DEFAULT_S3_BUCKET", "loan-default")
S3_REGION = os.environ.get("LOAN_DEFAULT_S3_REGION", "us-east-1")
S3_ACCESS_KEY_ID = os.environ.get("LOAN_DEFAULT_S3_ACCESS_KEY_ID", "loan-default")
S3_SECRET_ACCESS_KEY = os.environ.get("LOAN_DEFAULT_S3_SECRET_ACCESS_KEY", "loan-default")


def production_environment() -> dict[str, str]:
    """The variables the production instance (deploy/production/dagster.yaml) reads and every
    process of the profile needs, with the defaults above (Dagster's `env:` has none)."""
    return {
        "LOAN_DEFAULT_PROFILE": "production",
        "LOAN_DEFAULT_PG_HOST": POSTGRES_HOST,
        "LOAN_DEFAULT_PG_PORT": str(POSTGRES_PORT),
        "LOAN_DEFAULT_PG_USER": POSTGRES_USER,
        "LOAN_DEFAULT_PG_PASSWORD": POSTGRES_PASSWORD,
        "LOAN_DEFAULT_PG_DAGSTER_DB": POSTGRES_DAGSTER_DB,
        "LOAN_DEFAULT_PG_CATALOG_DB": POSTGRES_CATALOG_DB,
        "LOAN_DEFAULT_MAX_CONCURRENT_RUNS": str(MAX_CONCURRENT_RUNS),
        "LOAN_DEFAULT_BACKFILL_MONTHS_PER_RUN": str(BACKFILL_MONTHS_PER_RUN),
    }


def export_production_environment() -> None:
    """Puts production_environment() into this process's environment, so the Dagster instance
    it opens and every process it starts (the daemon, CLI runs) read the same values."""
    os.environ.update(production_environment())


def environment_with(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment with `overrides`: for a child process that runs with other
    settings (a replay's own folder)."""
    return {**os.environ, **overrides}
