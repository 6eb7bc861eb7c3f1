"""Bronze: each month's raw rows exactly as text, with file, line and ingestion time.

The warehouse stores them as `bronze.<source>` (Parquet files in the embedded profile, a
DuckLake table in production: lib/storage/table_store.py). Rows dated outside the configured
months are ingested by no partition: every materialization counts them per month, in its
metadata and a WARN check, so they never vanish unmentioned.
"""

from datetime import UTC, datetime

import dagster as dg

from loan_default import settings
from loan_default.defs.checks import WARN, check_result, check_spec
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import backfill_policy, month_span, monthly_partitions
from loan_default.defs.raw.assets import raw_asset_key
from loan_default.defs.resources import RawDataResource
from loan_default.lib import data_quality
from loan_default.lib.ingest.raw_months import month_counts, outside_months
from loan_default.lib.ingest.raw_reader import write_bronze
from loan_default.lib.ingest.sources import SOURCES, Source
from loan_default.lib.months import add_months
from loan_default.lib.storage.table_store import TableStore

# The months partitions exist for, [first, end): rows dated elsewhere are not ingested.
CONFIGURED_MONTHS = (settings.FIRST_MONTH, add_months(settings.LAST_MONTH, 1))
OUTSIDE_CHECK = "rows_outside_months"


def bronze_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["bronze", source.name])


def bronze_table(source: Source) -> str:
    """The source's bronze table in the warehouse."""
    return f"bronze.{source.name}"


def _bronze_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=bronze_asset_key(source),
        deps=[raw_asset_key(source)],
        group_name="bronze",
        description=f"{source.description} Raw text per month plus lineage columns.",
        partitions_def=monthly_partitions,
        backfill_policy=backfill_policy,
        kinds={"duckdb", "polars", "parquet"},
        owners=settings.OWNERS,
        pool="duckdb",
        check_specs=[
            check_spec(
                bronze_asset_key(source),
                OUTSIDE_CHECK,
                "no raw row dated outside the configured months (such rows are not ingested)",
                blocking=False,
            )
        ],
    )
    def bronze(
        context: dg.AssetExecutionContext,
        raw_data: RawDataResource,
        warehouse: dg.ResourceParam[TableStore],
    ) -> dg.MaterializeResult:
        raw, window, table = raw_data.locate(source), month_span(context), bronze_table(source)
        # Streamed in batches: memory stays flat however large the file is.
        written = write_bronze(
            warehouse, table, raw, source, window, datetime.now(UTC), raw_data.date_format
        )
        metadata = table_metadata(warehouse.describe(table, "partition_month", *window))
        context.log.info(f"{source.name}: {written:,} rows from {raw.path}")
        outside = outside_months(
            month_counts(raw, source, raw_data.date_format), *CONFIGURED_MONTHS
        )
        outcome = data_quality.rows_outside_months(outside, *CONFIGURED_MONTHS)
        if not outcome.passed:
            context.log.warning(f"{source.name}: {outcome.description}")
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "source_file": str(raw.path),
                OUTSIDE_CHECK: dg.MetadataValue.json({str(m): n for m, n in outside.items()}),
            },
            check_results=[check_result(bronze_asset_key(source), OUTSIDE_CHECK, outcome, WARN)],
        )

    return bronze


bronze_assets = [_bronze_asset(source) for source in SOURCES.values()]
