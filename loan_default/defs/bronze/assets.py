"""Bronze: each month's raw rows exactly as text, with file, line and ingestion time.

The rows are Parquet files beside the warehouse (see `lib/parquet_tables.py`); the warehouse
shows each source as a view, `bronze.<source>`.
"""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from loan_default import settings
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import monthly_partitions, single_run, window_of
from loan_default.defs.raw.assets import raw_asset_key
from loan_default.defs.resources import RawDataResource, layer_files
from loan_default.lib.raw_reader import write_bronze
from loan_default.lib.sources import SOURCES, Source
from loan_default.lib.warehouse import configure


def bronze_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["bronze", source.name])


def bronze_table(source: Source) -> str:
    """The warehouse view over the source's bronze files."""
    return f"bronze.{source.name}"


def _bronze_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=bronze_asset_key(source),
        deps=[raw_asset_key(source)],
        group_name="bronze",
        description=f"{source.description} Raw text per month plus lineage columns.",
        partitions_def=monthly_partitions,
        backfill_policy=single_run,
        kinds={"duckdb", "polars", "parquet"},
        owners=settings.OWNERS,
        pool="duckdb",
    )
    def bronze(
        context: dg.AssetExecutionContext, raw_data: RawDataResource, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        raw, window = raw_data.locate(source), window_of(context)
        store = layer_files(warehouse, "bronze")
        # Streamed in batches: memory stays flat however large the file is.
        written = write_bronze(store, raw, source, window, datetime.now(UTC), raw_data.date_format)
        with warehouse.get_connection() as connection:
            configure(connection)
            store.create_view(connection, bronze_table(source), source.name)
            metadata = table_metadata(connection, bronze_table(source), "partition_month", window)
        context.log.info(f"{source.name}: {written:,} rows from {raw.path}")
        return dg.MaterializeResult(metadata={**metadata, "source_file": str(raw.path)})

    return bronze


bronze_assets = [_bronze_asset(source) for source in SOURCES.values()]
