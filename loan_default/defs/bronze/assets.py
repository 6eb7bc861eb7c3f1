"""Bronze: each month's raw rows exactly as text, with file, line and ingestion time."""

from datetime import UTC, datetime

import dagster as dg

from loan_default import settings
from loan_default.defs.metadata import table_metadata
from loan_default.defs.partitions import monthly_partitions, months_of, single_run
from loan_default.defs.raw.assets import raw_asset_key
from loan_default.defs.resources import RawDataResource
from loan_default.lib.raw_reader import read_bronze
from loan_default.lib.sources import SOURCES, Source


def bronze_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["bronze", source.name])


def _bronze_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=bronze_asset_key(source),
        deps=[raw_asset_key(source)],
        group_name="bronze",
        description=f"{source.description} Raw text per month plus lineage columns.",
        partitions_def=monthly_partitions,
        backfill_policy=single_run,
        metadata={"partition_expr": "partition_month"},
        kinds={"duckdb", "polars"},
        owners=settings.OWNERS,
        pool="duckdb",
    )
    def bronze(context: dg.AssetExecutionContext, raw_data: RawDataResource) -> dg.Output:
        raw = raw_data.locate(source)
        frame = read_bronze(
            raw, source, months_of(context), datetime.now(UTC), raw_data.date_format
        )
        context.log.info(f"{source.name}: {frame.height:,} rows from {raw.path}")
        return dg.Output(frame, metadata=table_metadata(frame, "partition_month"))

    return bronze


bronze_assets = [_bronze_asset(source) for source in SOURCES.values()]
