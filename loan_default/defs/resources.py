"""Resources: where raw files are read from and the DuckDB warehouse the tables live in."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from loan_default import settings
from loan_default.lib.ingest.raw_reader import RawFile
from loan_default.lib.ingest.sources import Source
from loan_default.lib.storage.parquet_tables import ParquetTables


class RawDataResource(dg.ConfigurableResource):
    """The folder holding the four source CSVs (plain or .gz) and the date format they use."""

    raw_dir: str = str(settings.RAW_DIR)
    date_format: str = settings.RAW_DATE_FORMAT

    def locate(self, source: Source) -> RawFile:
        return RawFile.locate(Path(self.raw_dir), source)


class ModelStoreResource(dg.ConfigurableResource):
    """Where model artifacts and training reports are written."""

    artifact_dir: str = str(settings.ARTIFACT_DIR)
    report_dir: str = str(settings.REPORT_DIR)


def warehouse_resource(database: Path | None = None) -> DuckDBResource:
    """The DuckDB warehouse file: one schema per layer, one table per asset."""
    path = Path(database or settings.WAREHOUSE_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    threads = {"threads": settings.DUCKDB_THREADS} if settings.DUCKDB_THREADS else {}
    return DuckDBResource(
        database=str(path),
        connection_config={"memory_limit": settings.DUCKDB_MEMORY, **threads},
    )


def layer_files(warehouse: DuckDBResource, layer: str) -> ParquetTables:
    """The Parquet files of a layer (bronze, silver) live beside the warehouse file."""
    return ParquetTables.beside(Path(warehouse.database), layer)
