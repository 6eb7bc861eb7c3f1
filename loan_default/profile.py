"""Where the configured profile (`settings.PROFILE`) keeps tables, artifacts and reports.

The code location's resources and the scoring API both build their stores here, so the API
reads the champion from the same catalog and object store the pipeline wrote it to.
"""

from __future__ import annotations

from loan_default import settings
from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.lake_tables import LakeTables
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import TableStore


def postgres_dsn(
    database: str,
    host: str = settings.POSTGRES_HOST,
    port: int = settings.POSTGRES_PORT,
    user: str = settings.POSTGRES_USER,
    password: str = settings.POSTGRES_PASSWORD,
) -> str:
    """A libpq connection string for one of the production profile's PostgreSQL databases."""
    return f"dbname={database} host={host} port={port} user={user} password={password}"


def s3_endpoint() -> S3Endpoint:
    return S3Endpoint(
        settings.S3_ENDPOINT,
        settings.S3_REGION,
        settings.S3_ACCESS_KEY_ID,
        settings.S3_SECRET_ACCESS_KEY,
    )


def object_storage() -> S3Endpoint | None:
    """The object store artifacts and reports live on; None when they are local files."""
    return s3_endpoint() if settings.PRODUCTION else None


# The production warehouse: DuckLake, its catalog in PostgreSQL, its data files on S3; model
# artifacts and reports in the same bucket.
LAKE_CATALOG = f"postgres:{postgres_dsn(settings.POSTGRES_CATALOG_DB)}"
LAKE_DATA_PATH = f"s3://{settings.S3_BUCKET}/warehouse/"
ARTIFACT_DIR = (
    f"s3://{settings.S3_BUCKET}/artifacts" if settings.PRODUCTION else str(settings.ARTIFACT_DIR)
)
REPORT_DIR = (
    f"s3://{settings.S3_BUCKET}/reports" if settings.PRODUCTION else str(settings.REPORT_DIR)
)


def duckdb_config() -> dict:
    """Every pipeline connection's DuckDB memory cap (a large backfill spills instead of
    growing) and threads."""
    config: dict = {"memory_limit": settings.DUCKDB_MEMORY}
    if settings.DUCKDB_THREADS:
        config["threads"] = settings.DUCKDB_THREADS
    return config


def warehouse() -> TableStore:
    if settings.PRODUCTION:
        return LakeTables(LAKE_CATALOG, LAKE_DATA_PATH, s3_endpoint(), duckdb_config())
    return EmbeddedTables(settings.WAREHOUSE_PATH, duckdb_config())
